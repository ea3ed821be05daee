"""What a company was sent, for the owner's eyes: recomputed, then proven by the log's hash.

The access log keeps a release's scopes and the keccak-256 of the RFC 8785 bytes that were
sent (its ``content_hash``, also the owner's receipt) and never a value. Rather than keep a
second copy of every answer on disk — one more place where derived data about the owner
sits, and one more file to seal, back up and bound — the dashboard recomputes the answer
the same way the release path does (:class:`vault.daemon.release.AnswerCache`: today's
derived values, the memoised noise) and hashes it again:

* the hash matches → these are exactly the bytes the company received (``verified``);
* it does not → the owner's data changed since (a new import, a time-dependent scope such
  as the current mood): the page says so and shows nothing as "sent" that cannot be proven.

Noise is memoised per true entry, so a recomputed answer marks which entries the company
saw replaced by noise: a released entry that differs from the true one at its position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from vault import audit, scopes
from vault.canonical import json_hash
from vault.daemon.release import AnswerCache


class DerivedValues(Protocol):
    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class FieldShown:
    """One field of a released scope value: its entries as text, and which were noise."""

    name: str
    entries: tuple[str, ...]
    noise: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class ScopeShown:
    name: str
    description: str
    fields: tuple[FieldShown, ...]


@dataclass(frozen=True, slots=True)
class MatchShown:
    """A match from the log: the list it ranked and what the company got back. The log keeps
    the ranking itself (ids of the company's own list), so it is shown as sent once it hashes
    to the receipt; a household member's part keeps no ranking (its scores went to the
    coordinating vault, which ranked for the household)."""

    candidates_hash: str
    k: int
    ranking: tuple[str, ...]
    coordinator: str | None


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One release or match from the log, with what was sent when it can be proven."""

    entry: audit.Entry
    verified: bool
    sent: tuple[ScopeShown, ...]
    match: MatchShown | None = None


def _text(item: Any) -> str:
    """A value entry in words: ``{"genre": "jazz", "weight": 0.4}`` → ``jazz (0.4)``."""
    if isinstance(item, dict):
        named = [str(v) for v in item.values() if isinstance(v, str)]
        numbers = [str(v) for v in item.values() if isinstance(v, int | float)
                   and not isinstance(v, bool)]
        head = ", ".join(named) or ", ".join(f"{k}: {v}" for k, v in item.items())
        return f"{head} ({', '.join(numbers)})" if named and numbers else head
    return str(item)


def shown(name: str, released: dict[str, Any], truth: dict[str, Any]) -> ScopeShown:
    """A released scope value as the page lists it, with noise marked by position (the
    noise replaces an entry where it stands)."""
    fields = []
    for field, value in released.items():
        if field == "status":
            continue
        items = value if isinstance(value, list) else [value]
        true_items = truth.get(field)
        true_list = true_items if isinstance(true_items, list) else [true_items]
        noise = tuple(
            isinstance(value, list) and (i >= len(true_list) or true_list[i] != item)
            for i, item in enumerate(items)
        )
        fields.append(FieldShown(field, tuple(_text(i) for i in items), noise))
    return ScopeShown(name, scopes.scope(name).description, tuple(fields))


class Recomputer:
    """Recomputes answers for the dashboard with its own :class:`AnswerCache` (the release
    path's cache and timing are untouched)."""

    def __init__(self, values: DerivedValues, *, noise_secret: bytes) -> None:
        self._values = values
        self._answers = AnswerCache(noise_secret=noise_secret)

    def __repr__(self) -> str:
        return "Recomputer()"

    def disclosures(self, releases: Iterable[audit.Entry]) -> list[Disclosure]:
        """Each logged release with what was sent, where today's values reproduce its hash.
        Values are read once per distinct scope set."""
        found: dict[tuple[str, ...], tuple[str, tuple[ScopeShown, ...]]] = {}
        result = []
        for entry in releases:
            if "candidates_hash" in entry.detail:
                result.append(_match_disclosure(entry))
                continue
            names = entry.scopes
            if names not in found:
                truth = self._values.derived(names)
                answer = self._answers.answer(names, truth)
                found[names] = (
                    answer.content_hash_hex,
                    tuple(shown(n, answer.preferences[n], truth[n]) for n in names),
                )
            content_hash, sent = found[names]
            verified = entry.content_hash is not None and entry.content_hash == content_hash
            result.append(Disclosure(entry, verified, sent if verified else ()))
        return result


def _match_disclosure(entry: audit.Entry) -> Disclosure:
    detail = entry.detail
    ranking = tuple(str(i) for i in detail.get("ranking", ()))
    household = detail.get("household")
    coordinator = household.get("coordinator") if isinstance(household, dict) else None
    shown = MatchShown(str(detail["candidates_hash"]), int(detail.get("k", 0)), ranking,
                       coordinator if isinstance(coordinator, str) else None)
    # What the receipt covers when this vault answered the company itself.
    answered = "0x" + json_hash(
        {"candidates_hash": shown.candidates_hash, "ranking": list(ranking)}
    ).hex()
    verified = "ranking" in detail and entry.content_hash == answered
    return Disclosure(entry, verified, (), shown)
