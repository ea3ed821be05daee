"""Pure privacy transforms applied between the raw identity and what a company receives.

Two layers. **Coarsening** happens at derivation time (:mod:`vault.derive` calls these): an
exact birth date becomes an age range, a country a world region, counts become a top-k list
with a minimum support and rounded weights, and too little data becomes
``{"status": "insufficient_data"}``. **Noise** happens at release time
(:func:`release_value`): for scopes marked noisy, each entry of a vocabulary list is kept
with probability :data:`KEEP_PROBABILITY` and otherwise replaced by another value of the
same closed vocabulary — like Chrome's Topics API — and that fate is memoised per true entry
from a secret only the vault holds, like RAPPOR's permanent randomized response: any number
of companies, colluding over any number of epochs, learn what one answer tells (THREATS
row 38). Each noisy scope states its ε (:func:`scope_privacy`), and a company's **budget**
is charged ε only for the entries it receives for the first time (:func:`revealed_entries`).

No I/O and no clock reads: callers pass ``now`` and the secret.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from vault.scopes import AGE_RANGES, HOUSEHOLD_SIZES, NOISE_KEEP_PROBABILITY, Scope, names_of
from vault.scopes import scope as scope_named

#: The period the owner's privacy report groups releases by (7 days, like Topics' epochs).
EPOCH_SECONDS = 7 * 24 * 3600
#: The probability that a noisy entry is released as it is (the catalog commits to it).
KEEP_PROBABILITY = NOISE_KEEP_PROBABILITY

INSUFFICIENT: dict[str, Any] = {"status": "insufficient_data"}

_NOISE_DOMAIN = b"vault/noise/v2"
_UNIT = float(1 << 64)
#: A revealed entry's digest: 64 bits, ample to tell apart one company's entries.
_DIGEST_BYTES = 8


def insufficient() -> dict[str, Any]:
    """A fresh "not enough data" value (fresh so callers can never share and mutate one)."""
    return dict(INSUFFICIENT)


def epoch_of(now: float) -> int:
    """The 7-day epoch containing unix time ``now`` (epoch 0 starts 1970-01-01)."""
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
def _noise_targets(name: str) -> tuple[tuple[str, str | None, tuple[str, ...], int], ...]:
    """Fields of scope ``name``'s value that noise may perturb: (field, item key, vocabulary,
    most entries).

    A target is an array whose items are a vocabulary enum, or objects whose one enum
    property is the entry (a weighted top-k list; the weight stays, the name may change).
    """
    targets: list[tuple[str, str | None, tuple[str, ...], int]] = []
    for field, schema in scope_named(name).shape.get("properties", {}).items():
        if schema.get("type") != "array":
            continue
        items, most = schema.get("items", {}), int(schema.get("maxItems", 0))
        if "enum" in items:
            targets.append((field, None, tuple(items["enum"]), most))
            continue
        for key, sub in items.get("properties", {}).items():
            if "enum" in sub:
                targets.append((field, key, tuple(sub["enum"]), most))
                break
    return tuple(targets)


def _name_of(entry: Any, key: str | None) -> Any:
    return entry.get(key) if key is not None and isinstance(entry, dict) else entry


def _is_replaced(secret: bytes, scope: str, field: str, truth: str) -> bool:
    """The entry's fate: replaced with probability 1 - :data:`KEEP_PROBABILITY`, drawn once
    per (secret, scope, field, true entry) — never per company, epoch or rank."""
    draw = _prf(secret, "fate", scope, field, truth)
    return int.from_bytes(draw[:8], "big") / _UNIT >= KEEP_PROBABILITY


def _replacements(
    secret: bytes, scope: str, field: str, truth: str, vocabulary: tuple[str, ...]
) -> list[str]:
    """The true entry's replacements in order of preference: the rest of the vocabulary
    sorted by a PRF of each value, itself fixed per (secret, scope, field, true entry)."""
    return sorted((v for v in vocabulary if v != truth),
                  key=lambda v: _prf(secret, "replacement", scope, field, truth, v))


def release_value(scope: Scope, value: dict[str, Any], *, secret: bytes) -> dict[str, Any]:
    """What every company receives for ``scope``: ``value`` itself, or for a noisy scope a
    copy where each vocabulary entry is kept with probability :data:`KEEP_PROBABILITY` and
    otherwise replaced by another value of its vocabulary (THREATS row 38).

    The noise is memoised like RAPPOR's permanent randomized response: an entry's fate and
    its replacement are functions of the vault's secret, the scope, the field and the true
    entry alone. While the truth is unchanged every company, in every epoch, gets the same
    answer, so colluding companies and years of answers learn exactly what one answer
    tells; when the truth changes only the changed entries draw new fates. The rank is
    deliberately not an input: a weight already shows it, and a fresh draw at every
    re-ranking would let time average away the noise of the entries that move.

    A replacement is the first of the entry's preferences that is neither a true entry of
    the list nor an earlier replacement, so a list never repeats a value; that choice (not
    the fate) can therefore shift when another entry of the list changes.

    ``value`` is never modified; it is returned as is (not copied) when no entry is
    replaced, so callers must treat the result as read-only.
    """
    if not scope.noisy or value.get("status") != "ok":
        return value
    released: dict[str, Any] | None = None  # copied on the first replacement only
    for field, key, vocabulary, _ in _noise_targets(scope.name):
        entries = value.get(field)
        if not isinstance(entries, list):
            continue
        taken = {_name_of(entry, key) for entry in entries}
        for position, entry in enumerate(entries):
            truth = _name_of(entry, key)
            if not isinstance(truth, str) or not _is_replaced(secret, scope.name, field, truth):
                continue
            replacement = next(
                (v for v in _replacements(secret, scope.name, field, truth, vocabulary)
                 if v not in taken),
                None,
            )
            if replacement is None:
                continue
            taken.add(replacement)
            if released is None:
                released = copy.deepcopy(value)
            target = released[field]
            if key is not None and isinstance(entry, dict):
                target[position][key] = replacement
            else:
                target[position] = replacement
    return value if released is None else released


# --- the privacy figure -----------------------------------------------------------------


def entry_epsilon(vocabulary_size: int, *, keep: float = KEEP_PROBABILITY) -> float:
    """The ε of one entry's randomized response: an entry is kept with probability ``keep``
    and otherwise becomes one of the other ``vocabulary_size - 1`` values, at most with
    probability ``(1 - keep) / (vocabulary_size - 1)`` each (fewer candidates, when the
    list's other entries are excluded, only lower the ratio), so no output is more than
    ``keep · (vocabulary_size - 1) / (1 - keep)`` times likelier under one true entry than
    under another."""
    return math.log(keep * (vocabulary_size - 1) / (1 - keep))


@dataclass(frozen=True, slots=True)
class FieldPrivacy:
    """One noisy list of a scope: its vocabulary, how many entries it holds at most, and
    the ε of each entry."""

    field: str
    vocabulary_size: int
    max_entries: int
    epsilon_per_entry: float


@dataclass(frozen=True, slots=True)
class ScopePrivacy:
    """The privacy figure of a noisy scope, from the mechanism's own parameters.

    ``epsilon_per_answer``: the ε of a whole answer, each list full, by basic composition
    over its entries — and, since the noise is memoised, of any number of answers, to any
    number of companies, while the truth is unchanged. ``best_guess_accuracy``: how often
    the best guess of a true entry from what was released is right, exactly, when every
    vocabulary value is a priori as likely: the released entry itself, right with the keep
    probability; no collusion and no number of epochs raise it.
    """

    scope: str
    keep_probability: float
    epsilon_per_answer: float
    best_guess_accuracy: float
    fields: tuple[FieldPrivacy, ...]


@functools.cache
def scope_privacy(name: str) -> ScopePrivacy | None:
    """The privacy figure of scope ``name``; None for a scope released without noise."""
    if not scope_named(name).noisy:
        return None
    fields = tuple(
        FieldPrivacy(field, len(vocabulary), most, round(entry_epsilon(len(vocabulary)), 4))
        for field, _, vocabulary, most in _noise_targets(name)
    )
    return ScopePrivacy(
        scope=name,
        keep_probability=KEEP_PROBABILITY,
        epsilon_per_answer=round(sum(f.max_entries * f.epsilon_per_entry for f in fields), 4),
        best_guess_accuracy=KEEP_PROBABILITY,
        fields=fields,
    )


@functools.cache
def worst_case_epsilon(bitmap: int) -> float:
    """The most that one answer for the scopes in ``bitmap`` can cost: the sum of their
    ``epsilon_per_answer`` (0 for scopes without noise)."""
    figures = (scope_privacy(name) for name in names_of(bitmap))
    return round(sum(f.epsilon_per_answer for f in figures if f is not None), 4)


# --- the privacy budget -----------------------------------------------------------------


def revealed_entries(
    scope: Scope, value: dict[str, Any], released: dict[str, Any], *, secret: bytes
) -> dict[str, float]:
    """The noisy entries an answer discloses, each named by a keyed digest of (scope, field,
    true entry, released entry) — opaque without the secret, so the access log can hold it
    — with the ε it costs. A company is charged for an entry the first time it receives
    it: receiving it again tells nothing new (the noise is memoised)."""
    if not scope.noisy or value.get("status") != "ok":
        return {}
    revealed: dict[str, float] = {}
    for field, key, _, _ in _noise_targets(scope.name):
        truths, shown = value.get(field), released.get(field)
        if not isinstance(truths, list) or not isinstance(shown, list):
            continue
        cost = next(f.epsilon_per_entry for f in _figure(scope.name).fields if f.field == field)
        for truth, entry in zip(truths, shown, strict=True):
            digest = _prf(secret, "revealed", scope.name, field,
                          str(_name_of(truth, key)), str(_name_of(entry, key)))
            revealed[digest[:_DIGEST_BYTES].hex()] = cost
    return revealed


def _figure(name: str) -> ScopePrivacy:
    figure = scope_privacy(name)
    assert figure is not None, name
    return figure


def legacy_charges(epoch: int, names: Iterable[str]) -> dict[str, float]:
    """What a release logged before noise was memoised is charged: it carried per-company
    noise drawn afresh each epoch, so each of its noisy scopes costs a full answer per
    epoch — every entry of every list, as if each were new."""
    charges: dict[str, float] = {}
    for name in names:
        figure = scope_privacy(name)
        for field in figure.fields if figure is not None else ():
            for slot in range(field.max_entries):
                charges[f"v1:{epoch}:{name}:{field.field}:{slot}"] = field.epsilon_per_entry
    return charges


def charges_by_company(
    disclosures: Iterable[tuple[str, Mapping[str, float] | None, int | None, Iterable[str]]],
) -> dict[str, dict[str, float]]:
    """Every company's (lower-case address) charged entries → ε, from the access log's
    disclosures: (company, entries revealed, or a legacy release's epoch, its scopes)."""
    charged: dict[str, dict[str, float]] = {}
    for company, revealed, legacy_epoch, names in disclosures:
        mine = charged.setdefault(company.lower(), {})
        if revealed is not None:
            mine.update(revealed)
        elif legacy_epoch is not None:
            mine.update(legacy_charges(legacy_epoch, names))
    return charged
