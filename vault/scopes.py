"""The scope catalog: every preference the vault can release, with its ledger bit.

A scope's **bit** is its position in the ledger's ``uint64`` scope bitmap. Bits are stable
forever once published: a new scope takes the next free bit, a retired one keeps its bit
unused. The catalog (names, shapes, vocabularies, transforms) is versioned and hashed;
requests on the ledger commit to :func:`catalog_hash`, so a company pays for a known recipe.

Every value a scope can hold is described by ``shape``, a small JSON-schema dict. Lists that
a noisy scope may perturb name their closed vocabulary as an ``enum``: the noise in
:mod:`vault.privacy` only ever substitutes a value from that enum, and derivations only ever
emit values from it, so no free text from a raw record can reach a company through them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Literal

from vault import errors
from vault.canonical import json_hash

#: Version 2: the noise became memoised per true entry (it was drawn per company and epoch).
#: Version 3: the match scopes (bits 16 and 17) and their scorer, match-v1.
#: Version 4: match-v2 (a title counts fully from one view; Gumbel scale 0.5, ε = k / 0.5).
CATALOG_VERSION = "4"

Sensitivity = Literal["low", "medium", "high"]

#: Closed vocabularies. Appending is a catalog change (new version and hash), never a reorder.
MUSIC_GENRES: tuple[str, ...] = (
    "pop", "rock", "hip-hop", "r&b", "electronic", "dance", "jazz", "classical", "country",
    "folk", "metal", "punk", "indie", "latin", "reggae", "blues", "soul", "funk", "k-pop",
    "soundtrack", "ambient", "world",
)
VIDEO_GENRES: tuple[str, ...] = (
    "documentary", "drama", "comedy", "action", "thriller", "horror", "sci-fi", "fantasy",
    "animation", "romance", "crime", "reality", "kids", "news", "sports", "music",
    "education", "gaming", "cooking", "travel", "technology", "lifestyle",
)
PLATFORMS: tuple[str, ...] = ("youtube", "netflix", "prime-video", "disney-plus", "other")
TOPICS: tuple[str, ...] = (
    "technology", "science", "cooking", "travel", "fitness", "gaming", "music", "film",
    "fashion", "books", "art", "nature", "finance", "news", "comedy", "sports", "education",
    "parenting", "home-garden", "beauty", "health", "cars", "pets", "photography", "history",
)
COLORS: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
    "grey", "beige", "gold", "silver", "teal", "navy",
)
STYLES: tuple[str, ...] = (
    "minimalist", "classic", "casual", "sporty", "bohemian", "vintage", "streetwear",
    "elegant", "preppy", "romantic", "edgy", "outdoorsy", "scandinavian", "industrial",
    "colorful",
)
DIETS: tuple[str, ...] = (
    "omnivore", "vegetarian", "vegan", "pescatarian", "halal", "kosher", "gluten-free",
    "lactose-free", "keto", "paleo", "low-sugar",
)
PURCHASE_CATEGORIES: tuple[str, ...] = (
    "books", "electronics", "clothing", "shoes", "beauty", "home", "garden", "groceries",
    "toys", "games", "sports", "music", "movies", "jewelry", "travel", "health", "pets",
    "office", "art", "kitchen", "baby", "automotive", "other",
)
MOODS: tuple[str, ...] = (
    "happy", "calm", "energetic", "tired", "sad", "stressed", "excited", "bored",
)
AGE_RANGES: tuple[str, ...] = ("under-18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
REGIONS: tuple[str, ...] = (
    "Northern Europe", "Western Europe", "Southern Europe", "Eastern Europe",
    "Northern America", "Central America", "Caribbean", "South America",
    "Northern Africa", "Sub-Saharan Africa", "Western Asia", "Central Asia", "Southern Asia",
    "Eastern Asia", "South-eastern Asia", "Oceania",
)
PRICE_BANDS: tuple[str, ...] = (
    "0-10", "10-25", "25-50", "50-100", "100-250", "250-1000", "1000+",
)
#: How noisy scopes are released (:mod:`vault.privacy`); part of the recipe the hash covers.
NOISE_KEEP_PROBABILITY = 0.95
NOISE_RECIPE = (
    "each vocabulary entry of a noisy scope is kept with the keep probability, else replaced "
    "by another value of its vocabulary; fate and replacement are HMAC-SHA256 draws keyed by "
    "the vault's secret over (scope, field, true entry), the same for every company and epoch"
)
DAYPARTS: tuple[str, ...] = ("night", "morning", "afternoon", "evening")
HOUSEHOLD_SIZES: tuple[str, ...] = ("1", "2", "3-4", "5+")


@dataclass(frozen=True)
class Scope:
    """One releasable preference. ``shape`` is the JSON schema of its ``"ok"`` value."""

    bit: int
    name: str
    description: str
    shape: dict[str, Any]
    sensitivity: Sensitivity
    transform: str
    noisy: bool


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _weighted(key: str, values: tuple[str, ...], k: int) -> dict[str, Any]:
    """A top-k list of ``{key: <vocabulary value>, "weight": 0..1}``."""
    return {
        "type": "array",
        "maxItems": k,
        "items": {
            "type": "object",
            "properties": {key: _enum(values), "weight": {"type": "number"}},
            "required": [key, "weight"],
        },
    }


def _tags(values: tuple[str, ...], k: int) -> dict[str, Any]:
    return {"type": "array", "maxItems": k, "items": _enum(values)}


def _ok(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"status": {"const": "ok"}, **properties},
        "required": ["status", *properties],
    }


CATALOG: tuple[Scope, ...] = (
    Scope(0, "profile.age_range", "Your age as a coarse range",
          _ok(range=_enum(AGE_RANGES)), "medium",
          "birth date → age on the day asked → 10-year range", False),
    Scope(1, "profile.region", "Your country and world region (never the city)",
          _ok(country={"type": "string", "pattern": "^[A-Z]{2}$"}, region=_enum(REGIONS)),
          "medium", "country (or a known city's country) → ISO code + UN sub-region", False),
    Scope(2, "profile.languages", "Languages you speak",
          _ok(languages={"type": "array", "maxItems": 5,
                         "items": {"type": "string", "pattern": "^[a-z]{2,3}$"}}),
          "low", "language tags → primary language subtags, at most 5", False),
    Scope(3, "preferences.colors", "Your favourite colours",
          _ok(colors=_tags(COLORS, 3)), "low",
          "declared colours → basic colour names, first 3", True),
    Scope(4, "preferences.style", "The style you love",
          _ok(styles=_tags(STYLES, 3)), "low",
          "declared style words → style vocabulary, first 3", True),
    Scope(5, "preferences.music", "What you like to listen to, as top genres",
          _ok(genres=_weighted("genre", MUSIC_GENRES, 5)), "low",
          "listens ≥ 30 s → genre counts → top 5 with ≥ 3 listens, weights to 0.05", True),
    Scope(6, "preferences.video", "What you like to watch, as top genres and platforms",
          _ok(genres=_weighted("genre", VIDEO_GENRES, 5), platforms=_tags(PLATFORMS, 3)),
          "low", "views → genre and platform counts → top k with ≥ 3 views, weights to 0.05",
          True),
    Scope(7, "preferences.food", "Your diet",
          _ok(diets=_tags(DIETS, 3)), "medium",
          "declared diet words → diet vocabulary, first 3", True),
    Scope(8, "interests.topics", "Topics you are into",
          _ok(topics=_weighted("topic", TOPICS, 5)), "low",
          "views and purchases → topic counts → top 5 with ≥ 3 signals, weights to 0.05", True),
    Scope(9, "shopping.gift_ideas", "Gifts that would make you happy",
          _ok(ideas={"type": "array", "maxItems": 8,
                     "items": {"type": "string", "maxLength": 80}}),
          "low", "declared wishes, minus dislikes, plus ideas from top interests; at most 8",
          False),
    Scope(10, "shopping.price_band", "The price band you usually buy in",
          _ok(band=_enum(PRICE_BANDS), currency={"type": "string", "pattern": "^[A-Z]{3}$"}),
          "medium", "purchase prices in the main currency → median → band; ≥ 3 purchases",
          False),
    Scope(11, "mood.current", "Your mood today",
          _ok(mood=_enum(MOODS)), "high",
          "latest recorded mood, only if within the last 24 hours", False),
    Scope(12, "activity.dayparts", "When in the day you are active",
          _ok(peak=_enum(DAYPARTS),
              shares={"type": "object",
                      "properties": {d: {"type": "number"} for d in DAYPARTS}}),
          "medium", "event hours (UTC) → 4 dayparts → shares to 0.1; ≥ 20 events", False),
    Scope(13, "household.size", "How many people live in your household",
          _ok(size=_enum(HOUSEHOLD_SIZES)), "medium",
          "declared size → 1, 2, 3-4 or 5+", False),
    Scope(14, "shopping.categories", "What kinds of things you buy",
          _ok(categories=_weighted("category", PURCHASE_CATEGORIES, 5)), "low",
          "purchases → category counts → top 5 with ≥ 2 purchases, weights to 0.05", True),
    Scope(15, "mood.recent", "Your mood over the past week",
          _ok(moods=_weighted("mood", MOODS, 3)), "high",
          "moods of the last 7 days → top 3 with weights to 0.1; ≥ 3 recorded", False),
    # The match scopes release no value (a release of one is insufficient_data): the vault
    # ranks the company's own candidates and only the ranking leaves (DESIGN.md "Match
    # protocol"). Their transforms name the
    # scorer (vault.match.SCORER), so the catalog hash commits to the approved algorithm.
    Scope(16, "match.content", "Rank a company's candidates by your tastes (genres, tags)",
          _ok(), "low",
          "match-v2: candidate genres/tags/kind vs the released (noised) music, video and "
          "topic profile, plus the company's prior; keyed tie-break; titles and similar "
          "lists ignored", False),
    Scope(17, "match.history", "Rank a company's candidates by what you played and watched",
          _ok(), "medium",
          "match-v2: match.content plus Σ weight · affinity of each similar reference and "
          "the title against your artists, tracks, albums, titles, series and channels "
          "(a title seen once 1; others one use 0.5, 20 uses 1; half-life 180 d); one-shot "
          "Gumbel top-k, scale 0.5: ε = k / 0.5 per match per history reference", False),
)

_BY_NAME: dict[str, Scope] = {s.name: s for s in CATALOG}
MAX_BITS = 64


def scope(name: str) -> Scope:
    """The catalog entry called ``name``; :class:`errors.UnknownScope` otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise errors.UnknownScope(f"unknown scope {str(name)[:64]!r}") from None


def bitmap(names: Iterable[str]) -> int:
    """The ledger's ``uint64`` bitmap of ``names`` (bit i = catalog entry with bit i)."""
    bits = 0
    for name in names:
        bits |= 1 << scope(name).bit
    return bits


def names_of(bitmap: int) -> list[str]:
    """The scope names set in ``bitmap``, in bit order; unknown bits raise UnknownScope."""
    if not 0 <= bitmap < 1 << MAX_BITS:
        raise errors.UnknownScope("a scope bitmap must be a uint64")
    known = {s.bit: s.name for s in CATALOG}
    names: list[str] = []
    for bit in range(MAX_BITS):
        if bitmap >> bit & 1:
            if bit not in known:
                raise errors.UnknownScope(f"scope bit {bit} is not in catalog v{CATALOG_VERSION}")
            names.append(known[bit])
    return names


def catalog_json() -> dict[str, Any]:
    """The catalog as the JSON document that :func:`catalog_hash` commits to."""
    return {
        "version": CATALOG_VERSION,
        "noise": {"recipe": NOISE_RECIPE, "keep_probability": NOISE_KEEP_PROBABILITY},
        "scopes": [asdict(s) for s in CATALOG],
    }


@cache
def catalog_hash() -> bytes:
    """keccak256 of the RFC 8785 canonical JSON of :func:`catalog_json` (32 bytes)."""
    return json_hash(catalog_json())
