"""Pure privacy transforms applied between the raw identity and what a company receives.

Two layers. **Coarsening** happens at derivation time (:mod:`vault.derive` calls these): an
exact birth date becomes an age range, a country a world region, counts become a top-k list
with a minimum support and rounded weights, and too little data becomes
``{"status": "insufficient_data"}``. **Noise** happens at release time
(:func:`release_value`): for scopes marked noisy, each entry of a vocabulary list is
replaced with probability :data:`NOISE_PROBABILITY` by another value of the same closed
vocabulary, chosen deterministically per (company, scope, epoch) from a secret only the
vault holds — like Chrome's Topics API. Within an epoch a company always gets the same
answer, so asking a thousand times and averaging reveals nothing one answer does not.

No I/O and no clock reads: callers pass ``now`` and the secret.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any

from vault.scopes import AGE_RANGES, HOUSEHOLD_SIZES, Scope
from vault.scopes import scope as scope_named

EPOCH_SECONDS = 7 * 24 * 3600
NOISE_PROBABILITY = 0.05
#: How many distinct epochs of noisy answers one company may collect by default.
#: Each epoch's answer is an independent noise draw; capping the epochs caps how far
#: a company can average the noise away across epochs.
DEFAULT_EPOCH_BUDGET = 12

INSUFFICIENT: dict[str, Any] = {"status": "insufficient_data"}

_NOISE_DOMAIN = b"vault/noise/v1"
_UNIT = float(1 << 64)


def insufficient() -> dict[str, Any]:
    """A fresh "not enough data" value (fresh so callers can never share and mutate one)."""
    return dict(INSUFFICIENT)


def epoch_of(now: int) -> int:
    """The 7-day noise epoch containing unix time ``now`` (epoch 0 starts 1970-01-01)."""
    return int(now) // EPOCH_SECONDS


# --- coarsening -------------------------------------------------------------------------


def age_on(birth: date, today: date) -> int:
    """Whole years between ``birth`` and ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def age_range(birth: date, *, now: int) -> str | None:
    """The catalog's age range at unix time ``now``; None for an impossible age."""
    today = datetime.fromtimestamp(now, UTC).date()
    age = age_on(birth, today)
    if not 0 <= age <= 130:
        return None
    if age < 18:
        return AGE_RANGES[0]
    if age < 25:
        return AGE_RANGES[1]
    if age >= 65:
        return AGE_RANGES[-1]
    return AGE_RANGES[2 + (age - 25) // 10]


def household_bucket(size: int) -> str | None:
    """1, 2, 3-4 or 5+; None for a size that is not a plausible household."""
    if not 1 <= size <= 100:
        return None
    if size <= 2:
        return HOUSEHOLD_SIZES[size - 1]
    return HOUSEHOLD_SIZES[2] if size <= 4 else HOUSEHOLD_SIZES[3]


def round_to(value: float, step: float) -> float:
    """``value`` rounded to the nearest multiple of ``step`` (printed without float dust)."""
    return round(round(value / step) * step, 6)


def meets_min_count(count: int, minimum: int) -> bool:
    """Whether a scope has enough observations to answer at all."""
    return count >= minimum


def top_k(
    counts: Mapping[str, float], *, k: int, min_support: float, step: float
) -> list[tuple[str, float]]:
    """The ``k`` most frequent items with at least ``min_support`` observations each.

    Weights are each item's share of ALL observations (so a long tail of rare items still
    lowers the weights), rounded to ``step``; items whose weight rounds to zero are dropped.
    Ties break by name, so the answer is a function of the counts alone.
    """
    total = sum(c for c in counts.values() if c > 0)
    if total <= 0:
        return []
    ranked = sorted(
        ((name, c) for name, c in counts.items() if c >= min_support and c > 0),
        key=lambda item: (-item[1], item[0]),
    )
    result: list[tuple[str, float]] = []
    for name, count in ranked[:k]:
        weight = round_to(count / total, step)
        if weight > 0:
            result.append((name, weight))
    return result


# --- noise ------------------------------------------------------------------------------


def _prf(secret: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 keyed by the vault's noise secret: the pseudo-random function."""
    message = _NOISE_DOMAIN + b"".join(b"\x00" + p.encode() for p in parts)
    return hmac.new(secret, message, hashlib.sha256).digest()


@functools.cache
def _noise_targets(name: str) -> tuple[tuple[str, str | None, tuple[str, ...]], ...]:
    """Fields of scope ``name``'s value that noise may perturb: (field, item key, vocabulary).

    A target is an array whose items are a vocabulary enum, or objects whose one enum
    property is the entry (a weighted top-k list; the weight stays, the name may change).
    """
    targets: list[tuple[str, str | None, tuple[str, ...]]] = []
    for field, schema in scope_named(name).shape.get("properties", {}).items():
        if schema.get("type") != "array":
            continue
        items = schema.get("items", {})
        if "enum" in items:
            targets.append((field, None, tuple(items["enum"])))
            continue
        for key, sub in items.get("properties", {}).items():
            if "enum" in sub:
                targets.append((field, key, tuple(sub["enum"])))
                break
    return tuple(targets)


def release_value(
    scope: Scope, value: dict[str, Any], *, company: str, now: int, secret: bytes
) -> dict[str, Any]:
    """What ``company`` receives for ``scope`` at ``now``: ``value`` itself, or for a noisy
    scope a copy where each vocabulary entry was replaced with probability 5 % by another
    vocabulary value. Every draw comes from HMAC(secret, company, scope, epoch, field,
    position), so the answer is fixed within an epoch and independent across companies
    and epochs. ``value`` is never modified; it is returned as is (not copied) when no
    entry is replaced, so callers must treat the result as read-only."""
    if not scope.noisy or value.get("status") != "ok":
        return value
    who = company.strip().lower()
    epoch = str(epoch_of(now))
    released: dict[str, Any] | None = None  # copied on the first replacement only
    for field, key, vocabulary in _noise_targets(scope.name):
        entries = (value if released is None else released).get(field)
        if not isinstance(entries, list):
            continue
        for position in range(len(entries)):
            draw = _prf(secret, who, scope.name, epoch, field, str(position))
            if int.from_bytes(draw[:8], "big") / _UNIT >= NOISE_PROBABILITY:
                continue
            if released is None:
                released = copy.deepcopy(value)
                entries = released[field]
            entry = entries[position]
            current = entry.get(key) if key is not None and isinstance(entry, dict) else entry
            present = {e.get(key) if key is not None and isinstance(e, dict) else e
                       for e in entries}
            choices = [v for v in vocabulary if v not in present] or [
                v for v in vocabulary if v != current
            ]
            if not choices:
                continue
            replacement = choices[int.from_bytes(draw[8:16], "big") % len(choices)]
            if key is not None and isinstance(entry, dict):
                entry[key] = replacement
            else:
                entries[position] = replacement
    return value if released is None else released


# --- disclosure budget ------------------------------------------------------------------


def budget_allows(disclosed_epochs: Collection[int], epoch: int, *, limit: int) -> bool:
    """Whether a company that already received noisy answers in ``disclosed_epochs`` may
    receive one in ``epoch``: always within an epoch it already has (the answer is the
    same), and in a new epoch only while it holds fewer than ``limit`` epochs."""
    return epoch in disclosed_epochs or len(set(disclosed_epochs)) < limit
