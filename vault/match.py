"""Pure: the vault's own scorer for ``POST /v1/match`` — rank a company's candidates for the
person, so that only the ranking leaves (DESIGN.md "Match protocol").

The company sends data, never code; the algorithm is this module, named :data:`SCORER` in
the catalog entries of ``match.content`` and ``match.history`` and so covered by the
catalog hash every grant commits to. Two tiers:

* **match.content** — a candidate's genres and tags (read through the derivations' own
  synonyms, :func:`vault.derive.catalog_terms`) against the person's music, video and topic
  profile *as a release of those scopes shows it* (memoised noise included), plus the
  company's own ``prior``. Titles and ``similar`` lists are ignored. The ranking is a
  function of that released profile, the fields this tier reads and a keyed tie-break, so
  it tells a company nothing a release of the profile would not; in particular nothing
  about any one item the person consumed (THREATS row 39).
* **match.history** — also each ``similar`` reference and the candidate's own title
  against the person's history (:class:`History`: artists, tracks, albums, titles, series,
  channels) as ``Σ weight · affinity``, affinity ∈ (0, 1] from the plays or views
  (saturating at :data:`SATURATION`) and recency (half-life :data:`HALF_LIFE_DAYS`). This
  is item-kNN computed inside the vault from the neighbour lists the company sends.
  The top k are picked by the one-shot Gumbel mechanism (Durfee & Rogers 2019: the same
  distribution as k rounds of the exponential mechanism). Adding one history reference
  (an artist, a track, a title, … with all its uses) raises the history score of the
  candidates that name it by at most 1 and lowers none — a monotone score of sensitivity
  1 — so each pick is ``1 / GUMBEL_SCALE``-DP and a match costs ``ε = k / GUMBEL_SCALE``
  (:func:`epsilon`; the content part is a function of the already released profile),
  charged to the company's privacy budget once per distinct list and epoch.

The noise (and the tie-break) is drawn from the vault's secret over (company, epoch, the
hash of the fields the tier reads, candidate id): the same list from the same company in
one epoch gets the same ranking, so asking again reveals nothing new.

Never-shared scopes contribute nothing: a profile scope the owner never shares is left out
of the content score, and with ``preferences.music`` / ``preferences.video`` never shared
so are the plays / views. A word the owner dislikes contributes nothing as a genre, a tag or
a history reference.

No I/O and no clock reads: ``now`` is a parameter.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vault import derive, privacy
from vault.canonical import canonical_json, keccak256
from vault.identity import Event, EventKind

SCORER = "match-v1"
CONTENT, HISTORY = "match.content", "match.history"
SCOPES = (CONTENT, HISTORY)
MIN_CANDIDATES, MAX_CANDIDATES, MAX_K = 20, 1000, 10
KINDS = ("movie", "series", "video", "track", "album", "artist", "product", "other")
#: The fields each tier reads; the noise seed is the hash of exactly these.
CONTENT_FIELDS = ("id", "kind", "genres", "tags", "prior")
HISTORY_FIELDS = (*CONTENT_FIELDS, "title", "similar")

#: The profile scopes match.content reads, by the candidate kinds they speak to.
PROFILE_SCOPES = ("preferences.music", "preferences.video", "interests.topics")
_MUSIC_KINDS = frozenset({"track", "album", "artist"})
_VIDEO_KINDS = frozenset({"movie", "series", "video"})
_PROFILE_OF_KIND = {
    **dict.fromkeys(_MUSIC_KINDS, ("music", "topic")),
    **dict.fromkeys(_VIDEO_KINDS, ("video", "topic")),
}
_ALL_PROFILES = ("music", "video", "topic")

CONTENT_WEIGHT = 1.0
PRIOR_WEIGHT = 0.5
SATURATION = 20
HALF_LIFE_DAYS = 180.0
#: Scale of the Gumbel noise on match.history scores (each history reference moves a score
#: by at most 1, upwards only): ε = 1 / scale per pick. 0.3 keeps HR@10 above 90 % of a
#: centralised item-kNN's in scripts/eval_match.py; 0.5 fell to 72 %.
GUMBEL_SCALE = 0.3
#: The content tier's tie-break: far below any difference of two distinct scores' weights.
_TIE_BREAK_SCALE = 1e-6

#: History kinds, by the domain whose never-shared scope silences them.
MUSIC_REFS = ("artist", "track", "album")
VIDEO_REFS = ("title", "series", "channel")
MAX_REFS = 5_000
MAX_REF_CHARS = 200
_YEAR = re.compile(r"\s*[(\[]\s*\d{4}\s*[)\]]\s*$")
_NOT_WORD = re.compile(r"[^\w]+")
_DAY = 86_400
_UNIT = float(1 << 64)
_SAFE_INTEGER = (1 << 53) - 1


@functools.lru_cache(maxsize=1 << 16)
def normalise(text: Any) -> str:
    """A title or name as the scorer compares it: NFKC, case-folded, a trailing "(1995)"
    dropped, punctuation as spaces, whitespace collapsed ('' if not a string)."""
    if not isinstance(text, str):
        return ""
    folded = unicodedata.normalize("NFKC", text[: MAX_REF_CHARS * 2]).casefold()
    return _NOT_WORD.sub(" ", _YEAR.sub("", folded)).strip()[:MAX_REF_CHARS]


# --- the person's history -----------------------------------------------------------------


@dataclass
class History:
    """What the scorer knows of the person's history: per reference kind, the normalised
    name → ``[uses, last used at]``, each kind capped at :data:`MAX_REFS` (the most used
    kept). Built inside the vault from the events; never leaves it."""

    refs: dict[str, dict[str, list[int]]] = field(
        default_factory=lambda: {kind: {} for kind in (*MUSIC_REFS, *VIDEO_REFS)}
    )

    def fold(self, events: Iterable[Event]) -> None:
        for event in events:
            attrs = event.attrs if isinstance(event.attrs, dict) else {}
            if event.kind is EventKind.PLAY:
                ms = attrs.get("ms_played")
                if isinstance(ms, int) and ms < derive.LISTEN_MS:
                    continue
                kinds = MUSIC_REFS
            elif event.kind is EventKind.VIEW:
                kinds = VIDEO_REFS
            else:
                continue
            for kind in kinds:
                key = normalise(attrs.get(kind))
                if key:
                    self._use(kind, key, event.occurred_at)

    def _use(self, kind: str, key: str, at: int) -> None:
        table = self.refs[kind]
        entry = table.setdefault(key, [0, at])
        entry[0] += 1
        entry[1] = max(entry[1], at)
        if len(table) > 2 * MAX_REFS:
            kept = sorted(table.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
            table.clear()
            table.update(kept[:MAX_REFS])

    def affinity(self, kind: str, key: str, *, now: float) -> float:
        """How much the person is into ``key`` as a ``kind``: 0 if never seen, else 0.5
        for one use rising to 1 at :data:`SATURATION` uses, times a recency factor in
        (0.5, 1]; at most 1."""
        entry = self.refs[kind].get(key)
        if entry is None:
            return 0.0
        uses, last = entry
        # One use counts half, :data:`SATURATION` uses fully: a film is watched once, a
        # favourite song played a hundred times.
        saturated = min(1.0, 0.5 + 0.5 * math.log(uses) / math.log(SATURATION))
        age_days = max(0.0, now - last) / _DAY
        recency: float = 0.5 + 0.5 * math.exp2(-age_days / HALF_LIFE_DAYS)
        return saturated * recency


# --- what the scorer reads of the owner ---------------------------------------------------


@dataclass(frozen=True)
class Person:
    """The scorer's view of the owner at one moment: the released profile per domain
    (term → weight); per history reference its best affinity over the kinds the owner
    shares, with that kind and its uses; the disliked words (normalised)."""

    profile: Mapping[str, Mapping[str, float]]
    affinities: Mapping[str, tuple[float, str, int]]
    dislikes: frozenset[str]


def person(
    released: Mapping[str, Mapping[str, Any]],
    history: History,
    *,
    never_shared: Iterable[str],
    dislikes: Iterable[str],
    now: float,
) -> Person:
    """The :class:`Person` from the released (noised) profile scopes, the history, the
    never-shared scopes and the ``dislikes`` fact, at ``now``."""
    never = set(never_shared)
    profile: dict[str, dict[str, float]] = {}
    for scope, domain, field_name, key in (
        ("preferences.music", "music", "genres", "genre"),
        ("preferences.video", "video", "genres", "genre"),
        ("interests.topics", "topic", "topics", "topic"),
    ):
        value = released.get(scope)
        if scope in never or not value or value.get("status") != "ok":
            continue
        profile[domain] = {
            entry[key]: float(entry["weight"]) for entry in value.get(field_name, [])
        }
    kinds = (*(() if "preferences.music" in never else MUSIC_REFS),
             *(() if "preferences.video" in never else VIDEO_REFS))
    disliked = frozenset(normalise(w) for w in dislikes) - {""}
    affinities: dict[str, tuple[float, str, int]] = {}
    for kind in kinds:
        for key, (uses, _) in history.refs[kind].items():
            found = history.affinity(kind, key, now=now)
            if key not in disliked and found > affinities.get(key, (0.0, "", 0))[0]:
                affinities[key] = (found, kind, uses)
    return Person(profile, affinities, disliked)


# --- scoring --------------------------------------------------------------------------------


def candidates_hash(candidates: Sequence[Mapping[str, Any]]) -> bytes:
    """keccak256 of the RFC 8785 JSON of the candidates as sent (the ``Match`` type's
    ``candidatesHash``); ``candidates`` as :class:`vault.wire.MatchCandidate` validates
    them."""
    # An RFC 8785 array is its canonical items joined by commas. A validated candidate's
    # keys are ASCII and its only numbers are ``prior`` and the weights, so when those are
    # written alike (canonical_json's rule) json.dumps gives its RFC 8785 bytes; any other
    # item takes the exact encoder.
    parts = []
    for candidate in candidates:
        encoded = None
        if _numbers_written_alike(candidate):
            with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate
                encoded = json.dumps(candidate, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False, allow_nan=False).encode()
        parts.append(encoded if encoded is not None else canonical_json(candidate))
    return keccak256(b"[" + b",".join(parts) + b"]")


def _number_written_alike(value: Any) -> bool:
    if value is None or type(value) is str:
        return True
    if type(value) is int:
        return bool(-_SAFE_INTEGER <= value <= _SAFE_INTEGER)
    return type(value) is float and not value.is_integer() and 1e-4 <= abs(value) < 1e16


def _numbers_written_alike(candidate: Mapping[str, Any]) -> bool:
    if not _number_written_alike(candidate.get("prior")):
        return False
    return all(
        type(item) is not dict or _number_written_alike(item.get("weight"))
        for item in candidate.get("similar") or ()
    )


def _seed(candidates: Sequence[Mapping[str, Any]], tier: str, listed: bytes | None) -> bytes:
    """The hash of the fields ``tier`` reads: a list that differs only in what the tier
    ignores draws the same noise, so it gets the same ranking. match.history reads every
    field there is, so its seed is the candidates hash itself (``listed`` when known)."""
    if tier == HISTORY:
        return listed if listed is not None else candidates_hash(candidates)
    return candidates_hash([{k: c[k] for k in CONTENT_FIELDS if k in c} for c in candidates])


def _known_references(
    candidate: Mapping[str, Any], affinities: Mapping[str, tuple[float, str, int]]
) -> dict[str, float]:
    """The candidate's title (weight 1) and ``similar`` references that the history knows,
    normalised, each once with its largest weight (most references are unknown to it, so
    only the known ones are kept)."""
    known: dict[str, float] = {}
    title = candidate.get("title")
    if title is not None and normalise(title) in affinities:
        known[normalise(title)] = 1.0
    for item in candidate.get("similar") or ():
        ref, weight = (item, 1.0) if type(item) is str else (item["ref"], item["weight"])
        key = normalise(ref)
        if key in affinities and weight > known.get(key, 0.0):
            known[key] = float(weight)
    return known


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate's score, by part (the preview explains them)."""

    id: str
    content: float
    prior: float
    history: float
    terms: tuple[str, ...]
    history_refs: tuple[tuple[str, int], ...]  # (reference kind, uses) of each match

    @property
    def total(self) -> float:
        return CONTENT_WEIGHT * self.content + PRIOR_WEIGHT * self.prior + self.history


@functools.lru_cache(maxsize=1 << 14)
def _terms(word: str) -> tuple[tuple[str, str], ...]:
    return tuple(derive.catalog_terms(word).items())


def score(candidate: Mapping[str, Any], who: Person, *, tier: str) -> Scored:
    """One candidate's score under ``tier``."""
    domains = _PROFILE_OF_KIND.get(candidate.get("kind") or "", _ALL_PROFILES)
    matched: dict[str, float] = {}
    for word in [*(candidate.get("genres") or ()), *(candidate.get("tags") or ())]:
        if who.dislikes and normalise(word) in who.dislikes:
            continue
        for domain, term in _terms(word):
            if domain in domains and term not in who.dislikes:
                weight = who.profile.get(domain, {}).get(term, 0.0)
                if weight > matched.get(term, 0.0):
                    matched[term] = weight
    content = min(1.0, sum(matched.values()))
    history = 0.0
    refs: list[tuple[str, int]] = []
    if tier == HISTORY:
        for key, weight in _known_references(candidate, who.affinities).items():
            found = who.affinities[key]
            history += weight * found[0]
            refs.append((found[1], found[2]))
    prior = float(candidate.get("prior") or 0.0)
    return Scored(str(candidate["id"]), content, prior, history,
                  tuple(t for t, w in matched.items() if w > 0), tuple(refs))


def epsilon(tier: str, k: int) -> float:
    """The ε a match of ``k`` picks costs under ``tier``, per history reference: 0 for
    match.content (its profile's entries are charged as a release of them would be)."""
    return round(k / GUMBEL_SCALE, 4) if tier == HISTORY else 0.0


def _uniform(secret: bytes, seed: bytes, candidate_id: str) -> float:
    digest = hmac.new(secret, seed + candidate_id.encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / _UNIT


def gumbel(secret: bytes, seed: bytes, candidate_id: str) -> float:
    """A standard Gumbel draw keyed by (secret, seed, candidate id)."""
    return -math.log(-math.log(_uniform(secret, seed, candidate_id)))


def noise_scale(tier: str) -> float:
    """The Gumbel scale of ``tier``'s picks: the ε's under match.history, a tie-break else."""
    return GUMBEL_SCALE if tier == HISTORY else _TIE_BREAK_SCALE


def noise_seed(
    candidates: Sequence[Mapping[str, Any]],
    *,
    tier: str,
    company: str,
    now: float,
    listed: bytes | None = None,
) -> bytes:
    """What a list's noise is drawn from: (company, epoch, the fields ``tier`` reads)."""
    return keccak256(
        b"vault/match/v1" + company.lower().encode()
        + privacy.epoch_of(now).to_bytes(8, "big") + _seed(candidates, tier, listed)
    )


@dataclass(frozen=True, slots=True)
class Ranking:
    """The picks, best first, with their scores (for the owner's preview only), and the
    seed the noise was drawn from (it names the match in the privacy budget)."""

    ids: tuple[str, ...]
    picks: tuple[Scored, ...]
    seed: bytes


def tier_of(scopes: Iterable[str]) -> str:
    """The tier a request's scopes ask for: history when it is among them."""
    return HISTORY if HISTORY in set(scopes) else CONTENT


def rank(
    candidates: Sequence[Mapping[str, Any]],
    who: Person,
    *,
    k: int,
    tier: str,
    company: str,
    secret: bytes,
    now: float,
    listed: bytes | None = None,
) -> Ranking:
    """The top ``k`` candidates for the person under ``tier``: Gumbel noise keyed by
    (secret, company, epoch, the tier's fields) added to each score, the k largest kept.
    ``listed``: the list's :func:`candidates_hash`, when the caller has it already."""
    seed = noise_seed(candidates, tier=tier, company=company, now=now, listed=listed)
    scale = noise_scale(tier)
    noisy: list[tuple[float, Scored]] = []
    for candidate in candidates:
        scored = score(candidate, who, tier=tier)
        noisy.append((scored.total + scale * gumbel(secret, seed, scored.id), scored))
    noisy.sort(key=lambda pair: (-pair[0], pair[1].id))
    picks = tuple(scored for _, scored in noisy[:k])
    return Ranking(tuple(p.id for p in picks), picks, seed)


def reason(picked: Scored) -> str:
    """Why a candidate was picked, in words for the owner."""
    parts: list[str] = []
    for kind in (*MUSIC_REFS, *VIDEO_REFS):
        uses = [n for found, n in picked.history_refs if found == kind]
        if uses:
            verb = "played" if kind in MUSIC_REFS else "watched"
            parts.append(f"{len(uses)} related {kind}{'s' if len(uses) != 1 else ''} you "
                         f"{verb} {sum(uses)} time{'s' if sum(uses) != 1 else ''}")
    if picked.terms:
        parts.append("you like " + ", ".join(picked.terms))
    if picked.prior:
        parts.append(f"the company rates it {picked.prior:.2f}")
    return "; ".join(parts) or "nothing of yours matched; picked by chance among equals"
