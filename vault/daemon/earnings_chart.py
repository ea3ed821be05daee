"""The overview's chart: what each grant earned over time, stacked, as SVG geometry.

Pure: grants and ``now`` in, shapes out. Earnings stream linearly (DESIGN.md "Streaming
payment"), ``price * elapsed / duration`` from ``startsAt``, so the curve of every grant
follows from its ledger fields alone — no chain reads, no history to keep. A revoked grant
stops at what its revoke split gave the owner (the ``AccessRevoked`` event's figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vault.grant import Grant, Status

WIDTH, HEIGHT = 640, 220
#: Room for the axis labels, inside the view box.
LEFT, BOTTOM, TOP, RIGHT = 116, 26, 12, 12
SAMPLES = 48
#: Series colours live in the stylesheet (``.series-0`` …); a CSP without inline styles
#: allows classes, not ``style`` attributes.
PALETTE_SIZE = 6


def earned_at(grant: Grant, when: float) -> int:
    """Wei the owner had earned from ``grant`` at unix time ``when``."""
    if not grant.starts_at or grant.duration <= 0 or when <= grant.starts_at:
        return 0
    elapsed = min(int(when) - grant.starts_at, grant.duration)
    earned = grant.price * elapsed // grant.duration
    if grant.status == Status.REVOKED and grant.owner_earned is not None:
        earned = min(earned, grant.owner_earned)
    return earned


@dataclass(frozen=True, slots=True)
class Series:
    grant_id: int
    css_class: str
    points: str  # the polygon's "x,y x,y …" (its top edge, then the one below, reversed)
    earned_wei: int


@dataclass(frozen=True, slots=True)
class Chart:
    series: tuple[Series, ...]
    start: float
    end: float
    max_wei: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    top: int = TOP
    right: int = WIDTH - RIGHT


def chart(grants: Sequence[Grant], now: float) -> Chart | None:
    """Stacked areas of earnings per approved grant from the first start to ``now``;
    ``None`` while no grant has started."""
    started = sorted((g for g in grants if g.starts_at and g.starts_at <= now),
                     key=lambda g: g.id)
    if not started:
        return None
    start = float(min(g.starts_at for g in started))
    end = max(now, start + 1.0)
    times = [start + (end - start) * i / (SAMPLES - 1) for i in range(SAMPLES)]
    # Every change of slope (a start, an end, a revoke) falls on a sample, so lines are exact.
    for g in started:
        times.extend(t for t in (g.starts_at, g.starts_at + g.duration) if start < t < end)
    times.sort()
    stacked = [[0] * len(times)]
    for g in started:
        below = stacked[-1]
        stacked.append([b + earned_at(g, t) for b, t in zip(below, times, strict=True)])
    max_wei = max(stacked[-1]) or 1

    def x(t: float) -> float:
        return LEFT + (WIDTH - RIGHT - LEFT) * (t - start) / (end - start)

    def y(wei: int) -> float:
        return (HEIGHT - BOTTOM) - (HEIGHT - BOTTOM - TOP) * wei / max_wei

    series = []
    for i, g in enumerate(started):
        upper = [f"{x(t):.1f},{y(w):.1f}" for t, w in zip(times, stacked[i + 1], strict=True)]
        lower = [f"{x(t):.1f},{y(w):.1f}" for t, w in zip(times, stacked[i], strict=True)]
        series.append(Series(
            grant_id=g.id, css_class=f"series-{i % PALETTE_SIZE}",
            points=" ".join(upper + lower[::-1]), earned_wei=earned_at(g, now),
        ))
    return Chart(tuple(series), start, end, max(stacked[-1]))
