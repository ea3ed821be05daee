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

import bisect
import functools
import heapq
import hmac
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from vault import derive, privacy
from vault.canonical import canonical_json, keccak256
from vault.identity import Event, EventKind
from vault.wire import HEX32, HEX65, JSON_SAFE_MAX, MatchKind, MatchScope

SCORER = "match-v2"
CONTENT, HISTORY = "match.content", "match.history"
SCOPES = (CONTENT, HISTORY)
MIN_CANDIDATES, MAX_CANDIDATES, MAX_K = 20, 1000, 10
KINDS = ("movie", "series", "video", "track", "album", "artist", "product", "other")

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
#: Uses from which a reference counts fully, by kind: a film is watched once, an artist, a
#: track, an album, a series or a channel that the person likes comes back again and again.
SATURATION = {"title": 1, "artist": 20, "track": 20, "album": 20, "series": 20, "channel": 20}
HALF_LIFE_DAYS = 180.0
#: Scale of the Gumbel noise on match.history scores (each history reference moves a score
#: by at most 1, upwards only): ε = 1 / scale per pick, 20 for a match of 10. Chosen on
#: scripts/eval_match.py's dev seed: 92 % of a centralised item-kNN's HR@10 (0.3, ε 33.3,
#: gave 97 %); reported on its held-out seed in docs/match.md.
GUMBEL_SCALE = 0.5
#: The content tier's tie-break: far below any difference of two distinct scores' weights.
_TIE_BREAK_SCALE = 1e-6

#: History kinds, by the domain whose never-shared scope silences them.
MUSIC_REFS = ("artist", "track", "album")
VIDEO_REFS = ("title", "series", "channel")
MAX_REFS = 5_000
MAX_REF_CHARS = 200
_YEAR = re.compile(r"\s*[(\[]\s*\d{4}\s*[)\]]\s*$")
_NOT_WORD = re.compile(r"[^\w]+")
# normalise_many's: the year before each separator, runs of spaces, and ASCII's non-word
# characters (\w in ASCII: letters, digits, "_") as spaces, the separator kept.
_YEAR_EACH = re.compile(r"[(\[]\s*\d{4}\s*[)\]]\s*(?=\x00|\Z)")
# The same when no "[" opens one: a pattern that starts with one literal character is
# searched for three times faster than one that starts with a class.
_YEAR_EACH_PAREN = re.compile(r"\(\s*\d{4}\s*[)\]]\s*(?=\x00|\Z)")
_SPACES = re.compile(rb"  +")
_ASCII_NOT_WORD = bytes(
    byte if byte == 0 or chr(byte).isalnum() or byte == ord("_") else ord(" ")
    for byte in range(256)
)
_DAY = 86_400
_UNIT = float(1 << 64)


@functools.lru_cache(maxsize=1 << 16)
def normalise(text: Any) -> str:
    """A title or name as the scorer compares it: NFKC, case-folded, a trailing "(1995)"
    dropped, punctuation as spaces, whitespace collapsed ('' if not a string)."""
    if not isinstance(text, str):
        return ""
    folded = unicodedata.normalize("NFKC", text[: MAX_REF_CHARS * 2]).casefold()
    return _NOT_WORD.sub(" ", _YEAR.sub("", folded)).strip()[:MAX_REF_CHARS]


def normalise_many(texts: list[str]) -> list[str]:
    """``[normalise(t) for t in texts]``, for the strings of a whole list at once (a
    1,000-candidate list holds up to 51,000 of them): ASCII ones in a few passes over them
    all joined, the others one by one."""
    joined = "\x00".join(texts)
    if (not joined.isascii() or joined.count("\x00") != len(texts) - 1
            or max(map(len, texts), default=0) > MAX_REF_CHARS):
        return [normalise(text) for text in texts]
    # ASCII only: NFKC changes nothing and case-folding is lower-casing. The year regex
    # leaves the spaces before it; after the collapsing, the one space on either side of a
    # separator and at either end is what normalise's strip removes.
    year = _YEAR_EACH if "[" in joined else _YEAR_EACH_PAREN
    folded = year.sub("", joined.lower()).encode().translate(_ASCII_NOT_WORD)
    collapsed = _SPACES.sub(b" ", folded).replace(b" \x00", b"\x00").replace(b"\x00 ", b"\x00")
    return collapsed.strip(b" ").decode().split("\x00")


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
        """How much the person is into ``key`` as a ``kind``: 0 if never seen, else 1 from
        :data:`SATURATION` uses on, below that 0.5 for one use rising with the log of the
        uses, times a recency factor in (0.5, 1]; at most 1, the most one reference may
        move a score by (the ε's sensitivity), so a film seen last week uses all of it."""
        entry = self.refs[kind].get(key)
        if entry is None:
            return 0.0
        uses, last = entry
        full = SATURATION[kind]
        saturated = 1.0 if uses >= full else 0.5 + 0.5 * math.log(uses) / math.log(full)
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


# --- the request as the scorer reads it ------------------------------------------------
#
# msgspec, not pydantic: a 1,000-candidate body (about 1 MB) is parsed and validated into
# these structs in 2.8 ms, where pydantic-core took 21 ms to build plain dicts of it
# (scripts/bench_match.py; issue 16's 50 ms budget). vault.wire.MatchRequest stays the
# published model; tests/test_match.py checks that the two accept and refuse alike.

_Ref = Annotated[str, Meta(min_length=1, max_length=MAX_REF_CHARS)]
_Unit = Annotated[float, Meta(ge=0, le=1)]
_Word = Annotated[str, Meta(max_length=40)]


class Reference(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """A ``similar`` reference with its weight (a bare string means weight 1)."""

    ref: _Ref
    weight: _Unit


# Its fields are declared in sorted order, which is the order they are written in, and a
# field that was not sent stays UNSET and is not written: a validated list is written as
# the JSON value that was sent, in RFC 8785's key order (:func:`candidates_hash`).
class Candidate(
    msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True, gc=False
):
    """One of a company's candidates, holding exactly the fields sent (strict, so the vault
    scores the JSON the company hashed and signed); the same constraints as
    :class:`vault.wire.MatchCandidate`, which documents them."""

    genres: Annotated[list[_Word], Meta(max_length=10)] | UnsetType = UNSET
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    kind: MatchKind | UnsetType | None = UNSET
    prior: _Unit | UnsetType | None = UNSET
    similar: Annotated[list[_Ref | Reference], Meta(max_length=50)] | UnsetType = UNSET
    tags: Annotated[list[_Word], Meta(max_length=20)] | UnsetType = UNSET
    title: Annotated[str, Meta(max_length=MAX_REF_CHARS)] | UnsetType | None = UNSET


class Request(msgspec.Struct, frozen=True):
    """A ``POST /v1/match`` body (:class:`vault.wire.MatchRequest`, whose schema the route
    publishes), as :func:`read_request` validates it. The list's size and ``k`` are the
    service's checks (400 ``list_size``)."""

    grant_id: int
    scopes: list[MatchScope]
    k: int
    candidates: list[Candidate]
    nonce: str
    issued_at: int
    signature: str


_Integer = int | float  # JSON Schema's integer: 6 or 6.0, not 6.5 (refused by _request)
_Bounded = Annotated[int, Meta(ge=0, le=JSON_SAFE_MAX)] | Annotated[
    float, Meta(ge=0, le=JSON_SAFE_MAX)
]


class _Sent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A body as it is read: a :class:`Request` whose integers may be written 6.0."""

    grant_id: _Bounded
    scopes: Annotated[list[MatchScope], Meta(min_length=1, max_length=2)]
    k: _Integer
    candidates: list[Candidate]
    nonce: Annotated[str, Meta(pattern=HEX32)]
    issued_at: _Bounded
    signature: Annotated[str, Meta(pattern=HEX65)]


#: What :func:`read_request`, :func:`request_of` and :func:`read_candidates` raise for what
#: is not one.
Malformed = msgspec.DecodeError  # a ValidationError is one too

_READER = msgspec.json.Decoder(_Sent)
_WRITER = msgspec.json.Encoder()


def read_request(raw: bytes) -> Request:
    """The validated body (:data:`Malformed` when it is not one)."""
    return _request(_READER.decode(raw))


def request_of(value: Any) -> Request:
    """A body already parsed from JSON, validated (:data:`Malformed` when it is not one)."""
    return _request(msgspec.convert(value, _Sent))


def _request(sent: _Sent) -> Request:
    numbers = (sent.grant_id, sent.k, sent.issued_at)
    if not all(isinstance(n, int) or n.is_integer() for n in numbers):
        raise msgspec.ValidationError("grant_id, k and issued_at are integers")
    return Request(int(sent.grant_id), sent.scopes, int(sent.k), sent.candidates, sent.nonce,
                   int(sent.issued_at), sent.signature)


def read_candidates(values: Any) -> list[Candidate]:
    """A list already parsed from JSON, validated (:data:`Malformed` when it is not one)."""
    return msgspec.convert(values, list[Candidate])


def as_json_value(value: Request | Sequence[Candidate]) -> Any:
    """The JSON value that was sent (dicts and lists), as it was read."""
    return msgspec.to_builtins(value)


def candidates_hash(candidates: Sequence[Candidate]) -> bytes:
    """keccak256 of the RFC 8785 JSON of the candidates as sent (the ``Match`` type's
    ``candidatesHash``)."""
    # Written in sorted key order (see Candidate). msgspec writes strings as RFC 8785 does
    # (UTF-8, the same escapes; the parser refuses lone surrogates), and numbers, priors and
    # weights in [0, 1], too but for two kinds of form, rewritten here: a whole number
    # ("0.0", "-0.0", "1.0", which RFC 8785 writes "0", "0", "1") and an exponent ("5e-05",
    # where it may write "0.00005"). Inside a string a quote is always escaped, so
    # '"weight":' is only ever a key, and what follows it a number.
    written = _WRITER.encode(candidates)
    for number in _NOT_RFC8785:
        written = number.sub(_as_rfc8785, written)
    return keccak256(written)


#: A weight is its struct's last field; a prior is followed by another field or ends it.
#: (Each pattern opens with its key: the regex engine then skips ahead to it.)
_NOT_RFC8785 = tuple(
    re.compile(rb'("' + name + rb'":)(-?0\.0|1\.0|[0-9.]+e-[0-9]+)(?=' + after + rb")")
    for name, after in ((b"weight", b"}"), (b"prior", b"[,}]"))
)


def _as_rfc8785(number: re.Match[bytes]) -> bytes:
    return number[1] + canonical_json(float(number[2]))


# --- scoring --------------------------------------------------------------------------------


def _seed(candidates: Sequence[Candidate], tier: str, listed: bytes | None) -> bytes:
    """The hash of the fields ``tier`` reads: a list that differs only in what the tier
    ignores draws the same noise, so it gets the same ranking. match.history reads every
    field there is, so its seed is the candidates hash itself (``listed`` when known)."""
    if tier == HISTORY:
        return listed if listed is not None else candidates_hash(candidates)
    return candidates_hash([msgspec.structs.replace(c, title=UNSET, similar=UNSET)
                            for c in candidates])


def _known_references(
    candidates: Sequence[Candidate], affinities: Mapping[str, tuple[float, str, int]]
) -> dict[int, dict[str, float]]:
    """Per candidate (by index) that has any, its title (weight 1) and ``similar``
    references that the history knows, normalised, each once with its largest weight. Most
    references are unknown to it, so the whole list's are normalised at once and only the
    known ones looked at."""
    texts: list[str] = []
    starts: list[int] = []  # where each candidate's texts begin: its title, then `similar`
    for candidate in candidates:
        starts.append(len(texts))
        title = candidate.title
        texts.append(title if isinstance(title, str) else "")
        if candidate.similar:
            texts.extend([item if isinstance(item, str) else item.ref
                          for item in candidate.similar])
    keys = normalise_many(texts)
    known: dict[int, dict[str, float]] = {}
    for at in [at for at, key in enumerate(keys) if key in affinities]:
        index = bisect.bisect_right(starts, at) - 1
        offset = at - starts[index]
        if offset == 0:
            weight = 1.0
        else:
            similar = candidates[index].similar
            assert similar  # a text after the title is one of its references
            item = similar[offset - 1]
            weight = 1.0 if isinstance(item, str) else item.weight
        found = known.setdefault(index, {})
        if weight > found.get(keys[at], 0.0):
            found[keys[at]] = weight
    return known


class Scored(msgspec.Struct, frozen=True, gc=False):
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


def score(candidate: Candidate, who: Person, *, tier: str) -> Scored:
    """One candidate's score under ``tier``."""
    [scored] = scores([candidate], who, tier=tier)
    return scored


def scores(candidates: Sequence[Candidate], who: Person, *, tier: str) -> list[Scored]:
    """Every candidate's score under ``tier``, in order. A whole list's references are
    normalised together, and each genre and tag combination is scored once (lists repeat
    them)."""
    known = _known_references(candidates, who.affinities) if tier == HISTORY else {}
    contents: dict[_ContentKey, tuple[float, tuple[str, ...]]] = {}
    scored: list[Scored] = []
    for index, candidate in enumerate(candidates):
        key = (candidate.kind or "", (*(candidate.genres or ()), *(candidate.tags or ())))
        content = contents.get(key)
        if content is None:
            content = contents[key] = _content(*key, who)
        history = 0.0
        refs: list[tuple[str, int]] = []
        for reference, weight in known.get(index, {}).items():
            found = who.affinities[reference]
            history += weight * found[0]
            refs.append((found[1], found[2]))
        scored.append(Scored(candidate.id, content[0], candidate.prior or 0.0, history,
                             content[1], tuple(refs)))
    return scored


#: What the content score reads of a candidate: its kind, genres and tags.
_ContentKey = tuple[str, tuple[str, ...]]


def _content(kind: str, words: tuple[str, ...], who: Person) -> tuple[float, tuple[str, ...]]:
    """The content score of a candidate of ``kind`` with these genres and tags, and the
    profile terms it matched."""
    domains = _PROFILE_OF_KIND.get(kind, _ALL_PROFILES)
    matched: dict[str, float] = {}
    for word in words:
        if who.dislikes and normalise(word) in who.dislikes:
            continue
        for domain, term in _terms(word):
            if domain in domains and term not in who.dislikes:
                weight = who.profile.get(domain, {}).get(term, 0.0)
                if weight > matched.get(term, 0.0):
                    matched[term] = weight
    return min(1.0, sum(matched.values())), tuple(t for t, w in matched.items() if w > 0)


def epsilon(tier: str, k: int) -> float:
    """The ε a match of ``k`` picks costs under ``tier``, per history reference: 0 for
    match.content (its profile's entries are charged as a release of them would be)."""
    return round(k / GUMBEL_SCALE, 4) if tier == HISTORY else 0.0


def gumbels(secret: bytes, seed: bytes, ids: Iterable[str]) -> list[float]:
    """A standard Gumbel draw for each id, keyed by (secret, seed, id): each from the
    HMAC-SHA256 of ``seed + id`` under ``secret`` (the keyed state over ``seed`` is taken
    once and copied)."""
    keyed = hmac.new(secret, seed, "sha256")
    draws: list[float] = []
    for candidate_id in ids:
        mac = keyed.copy()
        mac.update(candidate_id.encode())
        uniform = (int.from_bytes(mac.digest()[:8], "big") + 0.5) / _UNIT
        draws.append(-math.log(-math.log(uniform)))
    return draws


def noise_scale(tier: str) -> float:
    """The Gumbel scale of ``tier``'s picks: the ε's under match.history, a tie-break else."""
    return GUMBEL_SCALE if tier == HISTORY else _TIE_BREAK_SCALE


def noise_seed(
    candidates: Sequence[Candidate],
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
    candidates: Sequence[Candidate],
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
    scored = scores(candidates, who, tier=tier)
    ids = [s.id for s in scored]
    order = [(-(s.total + scale * draw), s.id)
             for s, draw in zip(scored, gumbels(secret, seed, ids), strict=True)]
    picks = tuple(scored[i] for i in heapq.nsmallest(k, range(len(scored)),
                                                     key=order.__getitem__))
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
