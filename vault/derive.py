"""Pure derivations: the identity (facts + an incremental summary of events) → scope values.

The store never hands raw events to a release. On import it folds only the NEW events into
one :class:`Aggregates` (cost ∝ new events), then calls :func:`derive_all` (cost ∝ the
aggregates' bounded size) and keeps each scope's value materialised and sealed.

Every value a derivation emits is either a closed-vocabulary word from :mod:`vault.scopes`,
a number, a coarse bucket, or — only for ``shopping.gift_ideas`` — text the owner declared
as a gift wish. No string from an event ever reaches a scope value (THREATS row 29).

Bounded memory: free-text keys (artists, channels, series) are capped at the ``MAX_*``
sizes. When a map grows past twice its cap it is pruned to its cap by count (ties by name),
so an item that was pruned and seen again restarts from zero: counts of items outside the
top are approximate, counts of clearly-frequent items are exact. Pruning depends only on
the state and the next event, so folding in two halves equals folding all at once.

No I/O and no clock reads: ``now`` is a parameter.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from vault import errors, privacy
from vault.currencies import is_currency
from vault.identity import Event, EventKind
from vault.scopes import (
    CATALOG,
    COLORS,
    DAYPARTS,
    DIETS,
    MOODS,
    MUSIC_GENRES,
    PRICE_BANDS,
    PURCHASE_CATEGORIES,
    STYLES,
    TOPICS,
    VIDEO_GENRES,
)
from vault.scopes import scope as _catalog_entry

AGGREGATES_VERSION = 1
MAX_ARTISTS = 200
MAX_CHANNELS = 100
MAX_SERIES = 100
MAX_CURRENCIES = 8
MAX_MOODS = 64
MAX_KEY_CHARS = 80
#: A play counts as a listen (feeds genres) from 30 s on, as streaming services count one.
LISTEN_MS = 30_000
DAY = 86_400

#: Scopes whose value changes with ``now`` alone; the store re-derives them when it reads.
TIME_DEPENDENT: frozenset[str] = frozenset(
    {"profile.age_range", "mood.current", "mood.recent"}
)

# --- vocabularies and built-in maps -----------------------------------------------------

_GENRE_SYNONYMS: dict[str, str] = {
    "hip hop": "hip-hop", "hiphop": "hip-hop", "rap": "hip-hop", "trap": "hip-hop",
    "rnb": "r&b", "r and b": "r&b", "rhythm and blues": "r&b", "r'n'b": "r&b",
    "edm": "electronic", "house": "electronic", "techno": "electronic",
    "trance": "electronic", "dubstep": "electronic", "drum and bass": "electronic",
    "electronica": "electronic", "synthpop": "electronic",
    "alternative": "indie", "alt": "indie", "indie rock": "indie", "indie pop": "indie",
    "heavy metal": "metal", "soundtracks": "soundtrack", "score": "soundtrack",
    "film score": "soundtrack", "ost": "soundtrack", "kpop": "k-pop", "reggaeton": "latin",
    "salsa": "latin", "singer-songwriter": "folk", "lo-fi": "ambient", "lofi": "ambient",
    "chill": "ambient", "classic rock": "rock", "hard rock": "rock", "punk rock": "punk",
    "gospel": "soul", "disco": "dance", "bossa nova": "jazz", "opera": "classical",
}

#: Artist → genre for common artists, used when a play carries no ``genre`` attribute
#: (Spotify's exports do not). Keys are casefolded names.
ARTIST_GENRES: dict[str, str] = {
    **dict.fromkeys(
        ["taylor swift", "ed sheeran", "billie eilish", "dua lipa", "ariana grande",
         "harry styles", "olivia rodrigo", "lady gaga", "katy perry", "justin bieber",
         "adele", "sia", "shawn mendes", "miley cyrus", "sabrina carpenter", "lorde",
         "bruno mars", "the weeknd", "coldplay", "maroon 5", "charli xcx", "abba"], "pop"),
    **dict.fromkeys(
        ["the beatles", "queen", "the rolling stones", "led zeppelin", "pink floyd",
         "ac/dc", "nirvana", "foo fighters", "u2", "red hot chili peppers", "the who",
         "imagine dragons", "fleetwood mac", "bruce springsteen", "the killers"], "rock"),
    **dict.fromkeys(
        ["radiohead", "arctic monkeys", "tame impala", "the strokes", "vampire weekend",
         "phoebe bridgers", "the national", "bon iver", "mitski", "boygenius"], "indie"),
    **dict.fromkeys(["christine and the queens", "robyn", "carly rae jepsen"], "pop"),
    **dict.fromkeys(
        ["drake", "kendrick lamar", "eminem", "kanye west", "travis scott", "jay-z",
         "nicki minaj", "j. cole", "tyler, the creator", "post malone", "21 savage",
         "doja cat", "outkast", "snoop dogg"], "hip-hop"),
    **dict.fromkeys(
        ["beyoncé", "beyonce", "rihanna", "sza", "frank ocean", "usher", "alicia keys",
         "h.e.r.", "daniel caesar"], "r&b"),
    **dict.fromkeys(
        ["daft punk", "avicii", "calvin harris", "skrillex", "deadmau5", "aphex twin",
         "fred again..", "kraftwerk", "the chemical brothers", "disclosure", "bonobo"],
        "electronic"),
    **dict.fromkeys(
        ["miles davis", "john coltrane", "ella fitzgerald", "louis armstrong",
         "norah jones", "chet baker", "herbie hancock", "thelonious monk", "nina simone",
         "bill evans", "kamasi washington"], "jazz"),
    **dict.fromkeys(
        ["johann sebastian bach", "wolfgang amadeus mozart", "ludwig van beethoven",
         "frédéric chopin", "frederic chopin", "claude debussy", "antonio vivaldi",
         "pyotr ilyich tchaikovsky", "ludovico einaudi", "max richter", "yo-yo ma",
         "erik satie"], "classical"),
    **dict.fromkeys(
        ["metallica", "iron maiden", "black sabbath", "slayer", "megadeth", "slipknot",
         "system of a down", "rammstein", "gojira", "linkin park"], "metal"),
    **dict.fromkeys(
        ["johnny cash", "dolly parton", "luke combs", "morgan wallen", "kacey musgraves",
         "chris stapleton", "willie nelson", "zach bryan"], "country"),
    **dict.fromkeys(
        ["bob dylan", "joni mitchell", "simon & garfunkel", "mumford & sons",
         "fleet foxes", "the lumineers", "hozier", "nick drake", "laura marling"], "folk"),
    **dict.fromkeys(
        ["bad bunny", "shakira", "j balvin", "karol g", "rosalía", "rosalia",
         "daddy yankee", "peso pluma"], "latin"),
    **dict.fromkeys(["bts", "blackpink", "twice", "stray kids", "newjeans", "seventeen"],
                    "k-pop"),
    **dict.fromkeys(["bob marley", "bob marley & the wailers", "peter tosh", "sean paul"],
                    "reggae"),
    **dict.fromkeys(["hans zimmer", "john williams", "ennio morricone", "howard shore",
                     "ramin djawadi"], "soundtrack"),
    **dict.fromkeys(["aretha franklin", "marvin gaye", "otis redding", "stevie wonder",
                     "al green", "amy winehouse", "leon bridges"], "soul"),
    **dict.fromkeys(["b.b. king", "muddy waters", "john lee hooker", "gary clark jr."],
                    "blues"),
    **dict.fromkeys(["brian eno", "stars of the lid", "tycho"], "ambient"),
    **dict.fromkeys(["björk", "bjork", "massive attack", "portishead", "four tet", "jamie xx",
                     "caribou", "burial"], "electronic"),
    **dict.fromkeys(["坂本龍一", "ryuichi sakamoto", "joe hisaishi"], "soundtrack"),
    **dict.fromkeys(["ramones", "the clash", "sex pistols", "green day", "blink-182"],
                    "punk"),
    **dict.fromkeys(["james brown", "parliament", "vulfpeck", "earth, wind & fire"],
                    "funk"),
}

_VIDEO_GENRE_SYNONYMS: dict[str, str] = {
    "documentaries": "documentary", "docuseries": "documentary", "docs": "documentary",
    "dramas": "drama", "comedies": "comedy", "stand-up": "comedy", "standup": "comedy",
    "sitcom": "comedy", "science fiction": "sci-fi", "scifi": "sci-fi", "sf": "sci-fi",
    "anime": "animation", "cartoon": "animation", "cartoons": "animation",
    "romantic": "romance", "true crime": "crime", "children": "kids", "family": "kids",
    "sport": "sports", "music videos": "music", "educational": "education",
    "science": "education", "science & technology": "technology", "tech": "technology",
    "games": "gaming", "food": "cooking", "vlog": "lifestyle", "vlogs": "lifestyle",
    "howto & style": "lifestyle", "travel & events": "travel", "reality tv": "reality",
    "suspense": "thriller", "mystery": "thriller", "adventure": "action",
    "news & politics": "news", "film & animation": "animation",
}

#: Channel → genre for a few well-known channels, used when a view carries no genre.
CHANNEL_GENRES: dict[str, str] = {
    "kurzgesagt \u2013 in a nutshell": "education", "kurzgesagt": "education",
    "veritasium": "education", "vsauce": "education", "ted": "education",
    "tedx talks": "education", "crashcourse": "education", "3blue1brown": "education",
    "mkbhd": "technology", "marques brownlee": "technology",
    "linus tech tips": "technology", "gordon ramsay": "cooking",
    "binging with babish": "cooking", "babish culinary universe": "cooking",
    "joshua weissman": "cooking", "national geographic": "documentary",
    "bbc earth": "documentary", "pewdiepie": "gaming", "markiplier": "gaming",
    "ign": "gaming", "nba": "sports", "espn": "sports", "fifa": "sports",
    "vevo": "music", "nprmusic": "music", "bbc news": "news", "cnn": "news",
    "yes theory": "travel", "lost leblanc": "travel", "numberphile": "education",
    "vox": "news", "gardeners' world": "lifestyle", "florian gadsby": "lifestyle",
}

#: Channel → topic where the channel says more than its genre does.
CHANNEL_TOPICS: dict[str, str] = {
    "kurzgesagt \u2013 in a nutshell": "science", "kurzgesagt": "science",
    "veritasium": "science", "vsauce": "science", "numberphile": "science",
    "3blue1brown": "science", "gardeners' world": "home-garden", "florian gadsby": "art",
    "bbc earth": "nature", "national geographic": "nature",
}

#: Series → genre for well-known series (Netflix's export names the series, not a genre).
SERIES_GENRES: dict[str, str] = {
    "stranger things": "sci-fi", "black mirror": "sci-fi", "dark": "sci-fi",
    "the crown": "drama", "house of cards": "drama", "the queen's gambit": "drama",
    "breaking bad": "crime", "money heist": "crime", "la casa de papel": "crime",
    "narcos": "crime", "ozark": "crime", "peaky blinders": "crime", "mindhunter": "crime",
    "the office": "comedy", "friends": "comedy", "brooklyn nine-nine": "comedy",
    "bridgerton": "romance", "emily in paris": "romance", "squid game": "thriller",
    "you": "thriller", "the witcher": "fantasy", "wednesday": "fantasy",
    "our planet": "documentary", "tiger king": "documentary", "making a murderer": "crime",
    "chef's table": "cooking", "the great british baking show": "cooking",
    "formula 1: drive to survive": "sports", "formula 1": "sports",
    "the great british bake off": "cooking", "love is blind": "reality",
    "queer eye": "reality", "arcane": "animation", "bojack horseman": "animation",
    "one piece": "action", "the last kingdom": "action", "cobra kai": "action",
}

_PLATFORM_SYNONYMS: dict[str, str] = {
    "youtube": "youtube", "youtube music": "youtube", "youtube-music": "youtube",
    "netflix": "netflix",
    "prime video": "prime-video", "amazon prime video": "prime-video",
    "amazon": "prime-video", "prime": "prime-video", "disney+": "disney-plus",
    "disney plus": "disney-plus", "disney": "disney-plus",
}

_CATEGORY_SYNONYMS: dict[str, str] = {
    "book": "books", "ebooks": "books", "e-books": "books", "kindle": "books",
    "electronic": "electronics", "tech": "electronics", "computers": "electronics",
    "gadgets": "electronics", "phones": "electronics", "clothes": "clothing",
    "apparel": "clothing", "fashion": "clothing", "footwear": "shoes",
    "cosmetics": "beauty", "makeup": "beauty", "skincare": "beauty",
    "home & kitchen": "home", "furniture": "home", "decor": "home",
    "grocery": "groceries", "food": "groceries", "toy": "toys", "video games": "games",
    "board games": "games", "gaming": "games", "sport": "sports", "outdoor": "sports",
    "fitness": "sports", "film": "movies", "dvd": "movies", "jewellery": "jewelry",
    "pet supplies": "pets", "pet": "pets", "stationery": "office", "office supplies": "office",
    "crafts": "art", "arts & crafts": "art", "cookware": "kitchen", "car": "automotive",
    "auto": "automotive", "health & personal care": "health", "pharmacy": "health",
    "flights": "travel", "hotels": "travel", "baby products": "baby", "plants": "garden",
}

_VIDEO_GENRE_TOPIC: dict[str, str] = {
    "documentary": "science", "comedy": "comedy", "sports": "sports", "music": "music",
    "education": "education", "gaming": "gaming", "cooking": "cooking", "travel": "travel",
    "technology": "technology", "news": "news", "kids": "parenting", "drama": "film",
    "action": "film", "thriller": "film", "horror": "film", "sci-fi": "film",
    "fantasy": "film", "animation": "film", "romance": "film", "crime": "film",
}

_CATEGORY_TOPIC: dict[str, str] = {
    "books": "books", "electronics": "technology", "clothing": "fashion", "shoes": "fashion",
    "beauty": "beauty", "home": "home-garden", "garden": "home-garden", "toys": "parenting",
    "games": "gaming", "sports": "fitness", "music": "music", "movies": "film",
    "jewelry": "fashion", "travel": "travel", "health": "health", "pets": "pets",
    "art": "art", "kitchen": "cooking", "baby": "parenting", "automotive": "cars",
}

#: Topic → gift idea, for topping up declared wishes from what the person is into.
TOPIC_GIFTS: dict[str, str] = {
    "technology": "a gadget accessory", "science": "a popular-science book",
    "cooking": "a cookbook", "travel": "a travel voucher", "fitness": "fitness gear",
    "gaming": "a video game gift card", "music": "concert tickets", "film": "cinema tickets",
    "fashion": "a clothing voucher", "books": "a bookshop voucher", "art": "art supplies",
    "nature": "a plant", "finance": "a personal-finance book", "news": "a magazine subscription",
    "comedy": "comedy show tickets", "sports": "tickets to a match",
    "education": "an online course", "parenting": "a family day out",
    "home-garden": "something for the home", "beauty": "a beauty gift set",
    "health": "a wellness voucher", "cars": "a car-care kit", "pets": "a pet toy",
    "photography": "a photo book", "history": "a museum pass",
}

_COLOR_SYNONYMS: dict[str, str] = {
    "gray": "grey", "violet": "purple", "lilac": "purple", "lavender": "purple",
    "turquoise": "teal", "cyan": "teal", "aqua": "teal", "cream": "beige", "tan": "beige",
    "maroon": "red", "crimson": "red", "burgundy": "red", "scarlet": "red",
    "navy blue": "navy", "sky blue": "blue", "light blue": "blue", "dark blue": "navy",
    "olive": "green", "mint": "green", "emerald": "green", "magenta": "pink",
    "rose": "pink", "golden": "gold", "orange-red": "orange", "ivory": "white",
    "charcoal": "grey", "chocolate": "brown", "mustard": "yellow", "terracotta": "orange",
    "rust": "orange", "coral": "orange", "sage": "green", "khaki": "beige",
    "indigo": "navy", "fuchsia": "pink", "amber": "orange", "ochre": "yellow",
}
_STYLE_SYNONYMS: dict[str, str] = {
    "minimal": "minimalist", "minimalism": "minimalist", "classy": "classic",
    "timeless": "classic", "relaxed": "casual", "athleisure": "sporty",
    "athletic": "sporty", "boho": "bohemian", "retro": "vintage", "street": "streetwear",
    "urban": "streetwear", "chic": "elegant", "formal": "elegant", "punk": "edgy",
    "rock": "edgy", "grunge": "edgy", "outdoor": "outdoorsy", "scandi": "scandinavian",
    "nordic": "scandinavian", "colourful": "colorful", "bright": "colorful",
}
_DIET_SYNONYMS: dict[str, str] = {
    "veggie": "vegetarian", "plant-based": "vegan", "plant based": "vegan",
    "pescetarian": "pescatarian", "gluten free": "gluten-free", "coeliac": "gluten-free",
    "celiac": "gluten-free", "lactose free": "lactose-free", "dairy-free": "lactose-free",
    "dairy free": "lactose-free", "ketogenic": "keto", "low sugar": "low-sugar",
    "low-carb": "keto", "everything": "omnivore",
}

#: ISO 3166-1 alpha-2 → UN M49 sub-region (grouped as the catalog's REGIONS).
COUNTRY_REGIONS: dict[str, str] = {
    **dict.fromkeys(["DK", "EE", "FI", "IS", "IE", "LV", "LT", "NO", "SE", "GB"],
                    "Northern Europe"),
    **dict.fromkeys(["AT", "BE", "FR", "DE", "LI", "LU", "MC", "NL", "CH"], "Western Europe"),
    **dict.fromkeys(["AL", "AD", "BA", "HR", "GR", "IT", "MT", "ME", "MK", "PT", "SM", "RS",
                     "SI", "ES", "VA", "CY"], "Southern Europe"),
    **dict.fromkeys(["BY", "BG", "CZ", "HU", "MD", "PL", "RO", "RU", "SK", "UA"],
                    "Eastern Europe"),
    **dict.fromkeys(["CA", "US", "GL", "BM"], "Northern America"),
    **dict.fromkeys(["MX", "GT", "BZ", "HN", "SV", "NI", "CR", "PA"], "Central America"),
    **dict.fromkeys(["CU", "DO", "HT", "JM", "PR", "TT", "BS", "BB"], "Caribbean"),
    **dict.fromkeys(["AR", "BO", "BR", "CL", "CO", "EC", "GY", "PY", "PE", "SR", "UY", "VE"],
                    "South America"),
    **dict.fromkeys(["DZ", "EG", "LY", "MA", "SD", "TN"], "Northern Africa"),
    **dict.fromkeys(["NG", "GH", "KE", "ET", "ZA", "TZ", "UG", "SN", "CI", "CM", "AO", "RW",
                     "ZW", "ZM", "MZ", "BW", "NA", "MG", "ML"], "Sub-Saharan Africa"),
    **dict.fromkeys(["TR", "IL", "SA", "AE", "QA", "KW", "BH", "OM", "JO", "LB", "IQ", "SY",
                     "YE", "GE", "AM", "AZ", "PS"], "Western Asia"),
    **dict.fromkeys(["KZ", "UZ", "TM", "KG", "TJ"], "Central Asia"),
    **dict.fromkeys(["IN", "PK", "BD", "LK", "NP", "IR", "AF", "BT", "MV"], "Southern Asia"),
    **dict.fromkeys(["CN", "JP", "KR", "KP", "MN", "TW", "HK", "MO"], "Eastern Asia"),
    **dict.fromkeys(["ID", "MY", "PH", "SG", "TH", "VN", "MM", "KH", "LA", "BN", "TL"],
                    "South-eastern Asia"),
    **dict.fromkeys(["AU", "NZ", "FJ", "PG", "WS", "TO"], "Oceania"),
}

#: A few large cities → country, for a profile that gives a city but no country.
CITY_COUNTRIES: dict[str, str] = {
    "london": "GB", "manchester": "GB", "edinburgh": "GB", "dublin": "IE", "paris": "FR",
    "lyon": "FR", "berlin": "DE", "munich": "DE", "münchen": "DE", "hamburg": "DE",
    "vienna": "AT", "wien": "AT", "zurich": "CH", "zürich": "CH", "geneva": "CH",
    "amsterdam": "NL", "brussels": "BE", "madrid": "ES", "barcelona": "ES", "lisbon": "PT",
    "rome": "IT", "milan": "IT", "athens": "GR", "stockholm": "SE", "oslo": "NO",
    "copenhagen": "DK", "helsinki": "FI", "warsaw": "PL", "prague": "CZ", "budapest": "HU",
    "kyiv": "UA", "moscow": "RU", "istanbul": "TR", "new york": "US", "los angeles": "US",
    "chicago": "US", "san francisco": "US", "seattle": "US", "boston": "US", "toronto": "CA",
    "vancouver": "CA", "montreal": "CA", "mexico city": "MX", "são paulo": "BR",
    "sao paulo": "BR", "rio de janeiro": "BR", "buenos aires": "AR", "lagos": "NG",
    "nairobi": "KE", "cairo": "EG", "cape town": "ZA", "johannesburg": "ZA", "dubai": "AE",
    "mumbai": "IN", "delhi": "IN", "bangalore": "IN", "tokyo": "JP", "osaka": "JP",
    "seoul": "KR", "beijing": "CN", "shanghai": "CN", "singapore": "SG", "bangkok": "TH",
    "jakarta": "ID", "sydney": "AU", "melbourne": "AU", "auckland": "NZ",
}

# --- coercion of untrusted values -------------------------------------------------------

_SPACES = re.compile(r"\s+")
_LANG = re.compile(r"^[a-z]{2,3}$")


def _text(value: Any, *, limit: int = MAX_KEY_CHARS) -> str:
    """A printable, whitespace-normalised, length-capped string ('' if not a string)."""
    if not isinstance(value, str):
        return ""
    cleaned = "".join(
        ch for ch in unicodedata.normalize("NFC", value)
        if unicodedata.category(ch)[0] != "C" or ch in " \t\n"
    )
    return _SPACES.sub(" ", cleaned).strip()[:limit]


def _key(value: Any) -> str:
    return _text(value).casefold()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _words(value: Any) -> list[str]:
    """A fact that should be a list of words: a list, or one comma-separated string."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return []
    return [w for w in (_text(i) for i in items[:1000]) if w]


def _vocab(word: str, vocabulary: tuple[str, ...], synonyms: Mapping[str, str]) -> str | None:
    """``word`` as a vocabulary value: exact, a synonym, or its last known word."""
    key = _key(word).replace("_", " ")
    if not key:
        return None
    for candidate in (key, key.replace(" ", "-")):
        if candidate in vocabulary:
            return candidate
        if candidate in synonyms:
            return synonyms[candidate]
    for token in reversed(re.split(r"[\s/,]+", key)):
        if token in vocabulary:
            return token
        if token in synonyms:
            return synonyms[token]
    return None


def _vocab_list(
    value: Any, vocabulary: tuple[str, ...], synonyms: Mapping[str, str], *, limit: int
) -> list[str]:
    out: list[str] = []
    for word in _words(value):
        mapped = _vocab(word, vocabulary, synonyms)
        if mapped is not None and mapped not in out:
            out.append(mapped)
    return out[:limit]


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


def _prune(counts: dict[str, Any], cap: int, weight: Callable[[Any], Any]) -> None:
    """Keep the ``cap`` heaviest keys (ties by key) once the map holds twice ``cap``."""
    if len(counts) <= 2 * cap:
        return
    keep = sorted(counts, key=lambda k: (_neg(weight(counts[k])), k))[:cap]
    kept = {k: counts[k] for k in keep}
    counts.clear()
    counts.update(kept)


def _neg(weight: Any) -> Any:
    return tuple(-w for w in weight) if isinstance(weight, tuple) else -weight


def _band_index(price: float) -> int:
    for index, upper in enumerate((10, 25, 50, 100, 250, 1000)):
        if price < upper:
            return index
    return len(PRICE_BANDS) - 1


# --- the owner's own genres -------------------------------------------------------------

#: What the owner taught the vault: {"artist" | "channel" | "series": {casefolded name:
#: genre}}; music genres for artists, video genres for channels and series.
TaughtGenres = Mapping[str, Mapping[str, str]]
TAUGHT_KINDS = ("artist", "channel", "series")


def teach_genre(
    taught: TaughtGenres, kind: str, name: str, genre: str | None
) -> dict[str, dict[str, str]]:
    """``taught`` with ``name`` (an artist, channel or series) given ``genre`` in the
    catalog's words, or forgotten when ``genre`` is None. ValueError names what is wrong."""
    if kind not in TAUGHT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(TAUGHT_KINDS)}")
    key = _key(name)
    if not key:
        raise ValueError("the name is empty")
    updated = {k: dict(v) for k, v in taught.items()}
    names = updated.setdefault(kind, {})
    if genre is None:
        names.pop(key, None)
        return updated
    vocabulary, synonyms = ((MUSIC_GENRES, _GENRE_SYNONYMS) if kind == "artist"
                            else (VIDEO_GENRES, _VIDEO_GENRE_SYNONYMS))
    word = _vocab(genre, vocabulary, synonyms)
    if word is None:
        raise ValueError(f"not a {'music' if kind == 'artist' else 'video'} genre the catalog "
                         f"knows; one of: {', '.join(vocabulary)}")
    names[key] = word
    return updated


def genre_coverage(aggregates: Aggregates) -> dict[str, int]:
    """How much of the listening and viewing fed a genre: listens (plays of at least 30 s)
    and views, and how many of each got a genre."""
    return {
        "listens": aggregates.listens,
        "listens_with_genre": sum(aggregates.genres.values()),
        "views": aggregates.counts.get(EventKind.VIEW.value, 0),
        "views_with_genre": sum(aggregates.video_genres.values()),
    }


# --- the incremental summary ------------------------------------------------------------


class Aggregates:
    """A bounded summary of every event folded so far; the only event-derived input of
    :func:`derive_all`. Serialises to deterministic JSON for the store to seal."""

    __slots__ = (
        "artists", "categories", "channels", "counts", "genres", "hours", "listens",
        "moods", "platforms", "prices", "series", "topics", "video_genres",
    )

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}              # events folded, per kind
        self.listens = 0                              # plays of at least LISTEN_MS
        self.artists: dict[str, list[int]] = {}       # artist → [plays, ms], capped
        self.genres: dict[str, int] = {}              # music genre → listens
        self.channels: dict[str, int] = {}            # video channel → views, capped
        self.series: dict[str, int] = {}              # series → views, capped
        self.video_genres: dict[str, int] = {}
        self.platforms: dict[str, int] = {}
        self.categories: dict[str, int] = {}          # purchase category → purchases
        self.prices: dict[str, list[int]] = {}        # currency → purchases per price band
        self.moods: list[list[Any]] = []              # [at, mood], the latest MAX_MOODS
        self.hours: list[int] = [0] * 24              # events per UTC hour of day
        self.topics: dict[str, int] = {}

    @classmethod
    def empty(cls) -> Aggregates:
        return cls()

    def to_json(self) -> bytes:
        state = {name: getattr(self, name) for name in self.__slots__}
        state["version"] = AGGREGATES_VERSION
        return json.dumps(state, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Aggregates:
        """The summary ``to_json`` wrote; :class:`errors.CorruptFile` for anything else."""
        try:
            state = json.loads(data)
            if not isinstance(state, dict) or state.pop("version") != AGGREGATES_VERSION:
                raise ValueError("unknown version")
            if set(state) != set(cls.__slots__):
                raise ValueError("unexpected fields")
            fresh = cls()
            for name, value in state.items():
                if type(value) is not type(getattr(fresh, name)):
                    raise ValueError(name)
                setattr(fresh, name, value)
            if len(fresh.hours) != 24:
                raise ValueError("hours")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise errors.CorruptFile("the derived-preferences summary is unreadable") from None
        return fresh

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aggregates) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def fold(self, events: Iterable[Event], *, taught: TaughtGenres | None = None) -> None:
        """Add ``events`` to the summary; cost ∝ their number, memory bounded. ``taught``:
        the owner's own genres for artists, channels and series (:func:`teach_genre`),
        which win over the built-in maps but not over a genre the event carries."""
        taught = taught or {}
        for event in events:
            try:
                kind = EventKind(event.kind)
            except ValueError:
                continue
            _bump(self.counts, kind.value)
            at = _int(event.occurred_at)
            if at is not None:
                self.hours[(at // 3600) % 24] += 1
            attrs = event.attrs if isinstance(event.attrs, dict) else {}
            if kind is EventKind.PLAY:
                self._play(attrs, taught.get("artist", {}))
            elif kind is EventKind.VIEW:
                self._view(attrs, taught)
            elif kind is EventKind.PURCHASE:
                self._purchase(attrs)
            elif at is not None:
                self._mood(attrs, at)

    def _play(self, attrs: Mapping[str, Any], taught: Mapping[str, str]) -> None:
        artist = _key(attrs.get("artist"))
        ms = _int(attrs.get("ms_played"))
        ms = None if ms is None else min(max(ms, 0), DAY * 1000)
        if artist:
            entry = self.artists.setdefault(artist, [0, 0])
            entry[0] += 1
            entry[1] += ms or 0
            _prune(self.artists, MAX_ARTISTS, lambda e: (e[0], e[1]))
        if ms is not None and ms < LISTEN_MS:
            return
        self.listens += 1
        genre = _vocab(_text(attrs.get("genre")), MUSIC_GENRES, _GENRE_SYNONYMS)
        genre = genre or taught.get(artist) or ARTIST_GENRES.get(artist)
        if genre is not None:
            _bump(self.genres, genre)

    def _view(self, attrs: Mapping[str, Any], taught: TaughtGenres) -> None:
        platform = _key(attrs.get("platform"))
        _bump(self.platforms, _PLATFORM_SYNONYMS.get(platform, "other"))
        channel = _key(attrs.get("channel"))
        if channel:
            _bump(self.channels, channel)
            _prune(self.channels, MAX_CHANNELS, lambda n: n)
        series = _key(attrs.get("series"))
        if series:
            _bump(self.series, series)
            _prune(self.series, MAX_SERIES, lambda n: n)
        genre = _vocab(_text(attrs.get("genre")), VIDEO_GENRES, _VIDEO_GENRE_SYNONYMS)
        genre = (genre or taught.get("channel", {}).get(channel)
                 or taught.get("series", {}).get(series)
                 or CHANNEL_GENRES.get(channel) or SERIES_GENRES.get(series))
        if genre is not None:
            _bump(self.video_genres, genre)
        topic = CHANNEL_TOPICS.get(channel) or _VIDEO_GENRE_TOPIC.get(genre or "")
        if topic is not None:
            _bump(self.topics, topic)

    def _purchase(self, attrs: Mapping[str, Any]) -> None:
        category = _vocab(_text(attrs.get("category")), PURCHASE_CATEGORIES,
                          _CATEGORY_SYNONYMS) or "other"
        _bump(self.categories, category)
        topic = _CATEGORY_TOPIC.get(category)
        if topic is not None:
            _bump(self.topics, topic)
        price = _float(attrs.get("price"))
        currency = _text(attrs.get("currency")).upper()
        if price is None or not 0 <= price <= 1e12 or not is_currency(currency):
            return
        bands = self.prices.setdefault(currency, [0] * len(PRICE_BANDS))
        bands[_band_index(price)] += 1
        _prune(self.prices, MAX_CURRENCIES, sum)

    def _mood(self, attrs: Mapping[str, Any], at: int) -> None:
        mood = _key(attrs.get("mood"))
        if mood not in MOODS:
            return
        bisect.insort(self.moods, [at, mood])
        if len(self.moods) > MAX_MOODS:
            del self.moods[0]


# --- derivations ------------------------------------------------------------------------

Derivation = Callable[[Mapping[str, Any], Aggregates, int], dict[str, Any]]


def _ok(**fields: Any) -> dict[str, Any]:
    return {"status": "ok", **fields}


def _weighted(key: str, ranked: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{key: name, "weight": weight} for name, weight in ranked]


def _age_range(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    raw = facts.get("birth_date")
    if isinstance(raw, date):
        birth = raw
    elif isinstance(raw, str):
        try:
            birth = date.fromisoformat(raw.strip()[:10])
        except ValueError:
            return privacy.insufficient()
    else:
        return privacy.insufficient()
    bucket = privacy.age_range(birth, now=now)
    return privacy.insufficient() if bucket is None else _ok(range=bucket)


def _region(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    country = _text(facts.get("country")).upper()
    if country not in COUNTRY_REGIONS:
        country = CITY_COUNTRIES.get(_key(facts.get("city")), "")
    if country not in COUNTRY_REGIONS:
        return privacy.insufficient()
    return _ok(country=country, region=COUNTRY_REGIONS[country])


def _languages(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    languages: list[str] = []
    for tag in _words(facts.get("languages")):
        primary = re.split(r"[-_]", tag)[0].lower()
        if _LANG.match(primary) and primary not in languages:
            languages.append(primary)
    return _ok(languages=languages[:5]) if languages else privacy.insufficient()


def _fact_tags(
    fact: str, field: str, vocabulary: tuple[str, ...], synonyms: Mapping[str, str]
) -> Derivation:
    def derive(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
        tags = _vocab_list(facts.get(fact), vocabulary, synonyms, limit=3)
        return _ok(**{field: tags}) if tags else privacy.insufficient()
    return derive


def _music(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    ranked = privacy.top_k(agg.genres, k=5, min_support=3, step=0.05)
    return _ok(genres=_weighted("genre", ranked)) if ranked else privacy.insufficient()


def _video(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    genres = privacy.top_k(agg.video_genres, k=5, min_support=3, step=0.05)
    platforms = privacy.top_k(agg.platforms, k=3, min_support=3, step=0.05)
    if not genres and not platforms:
        return privacy.insufficient()
    return _ok(genres=_weighted("genre", genres), platforms=[name for name, _ in platforms])


def _topics(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    ranked = privacy.top_k(agg.topics, k=5, min_support=3, step=0.05)
    return _ok(topics=_weighted("topic", ranked)) if ranked else privacy.insufficient()


def _gift_ideas(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    dislikes = [d.casefold() for d in _words(facts.get("dislikes"))]

    def wanted(idea: str) -> bool:
        folded = idea.casefold()
        return not any(d in folded or folded in d for d in dislikes)

    ideas: list[str] = []
    candidates = _words(facts.get("gift_wishes"))
    candidates += [TOPIC_GIFTS[t] for t, _ in privacy.top_k(agg.topics, k=3, min_support=3,
                                                             step=0.05)]
    for idea in candidates:
        idea = idea[:80]
        if wanted(idea) and idea.casefold() not in {i.casefold() for i in ideas}:
            ideas.append(idea)
    return _ok(ideas=ideas[:8]) if ideas else privacy.insufficient()


def _price_band(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    if not agg.prices:
        return privacy.insufficient()
    currency = min(agg.prices, key=lambda c: (-sum(agg.prices[c]), c))
    bands = agg.prices[currency]
    total = sum(bands)
    if not privacy.meets_min_count(total, 3):
        return privacy.insufficient()
    seen = 0
    for index, count in enumerate(bands):
        seen += count
        if 2 * seen >= total:
            return _ok(band=PRICE_BANDS[index], currency=currency)
    raise AssertionError("unreachable: the bands sum to total")


def _mood_current(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    recent = [m for m in agg.moods if now - DAY <= m[0] <= now]
    return _ok(mood=recent[-1][1]) if recent else privacy.insufficient()


def _mood_recent(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for at, mood in agg.moods:
        if now - 7 * DAY <= at <= now:
            _bump(counts, mood)
    if not privacy.meets_min_count(sum(counts.values()), 3):
        return privacy.insufficient()
    return _ok(moods=_weighted("mood", privacy.top_k(counts, k=3, min_support=1, step=0.1)))


def _dayparts(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    parts = [sum(agg.hours[6 * i: 6 * i + 6]) for i in range(4)]
    total = sum(parts)
    if not privacy.meets_min_count(total, 20):
        return privacy.insufficient()
    peak = DAYPARTS[max(range(4), key=lambda i: (parts[i], -i))]
    shares = {d: privacy.round_to(n / total, 0.1) for d, n in zip(DAYPARTS, parts, strict=True)}
    return _ok(peak=peak, shares=shares)


def _household(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    size = _int(facts.get("household_size"))
    bucket = None if size is None else privacy.household_bucket(size)
    return privacy.insufficient() if bucket is None else _ok(size=bucket)


def _ranked_on_request(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    """The match scopes hold no value: a ranking exists only for a company's list
    (:mod:`vault.match`, ``POST /v1/match``)."""
    return privacy.insufficient()


def _categories(facts: Mapping[str, Any], agg: Aggregates, now: int) -> dict[str, Any]:
    ranked = privacy.top_k(agg.categories, k=5, min_support=2, step=0.05)
    return _ok(categories=_weighted("category", ranked)) if ranked else privacy.insufficient()


#: scope → (derivation, fact names it reads, event kinds it reads).
_DERIVATIONS: dict[str, tuple[Derivation, tuple[str, ...], tuple[EventKind, ...]]] = {
    "profile.age_range": (_age_range, ("birth_date",), ()),
    "profile.region": (_region, ("country", "city"), ()),
    "profile.languages": (_languages, ("languages",), ()),
    "preferences.colors": (_fact_tags("favourite_colors", "colors", COLORS, _COLOR_SYNONYMS),
                           ("favourite_colors",), ()),
    "preferences.style": (_fact_tags("style", "styles", STYLES, _STYLE_SYNONYMS),
                          ("style",), ()),
    "preferences.music": (_music, (), (EventKind.PLAY,)),
    "preferences.video": (_video, (), (EventKind.VIEW,)),
    "preferences.food": (_fact_tags("diet", "diets", DIETS, _DIET_SYNONYMS), ("diet",), ()),
    "interests.topics": (_topics, (), (EventKind.VIEW, EventKind.PURCHASE)),
    "shopping.gift_ideas": (_gift_ideas, ("gift_wishes", "dislikes"),
                            (EventKind.VIEW, EventKind.PURCHASE)),
    "shopping.price_band": (_price_band, (), (EventKind.PURCHASE,)),
    "mood.current": (_mood_current, (), (EventKind.MOOD,)),
    "activity.dayparts": (_dayparts, (), tuple(EventKind)),
    "household.size": (_household, ("household_size",), ()),
    "shopping.categories": (_categories, (), (EventKind.PURCHASE,)),
    "mood.recent": (_mood_recent, (), (EventKind.MOOD,)),
    "match.content": (_ranked_on_request, (), (EventKind.PLAY, EventKind.VIEW)),
    "match.history": (_ranked_on_request, (), (EventKind.PLAY, EventKind.VIEW)),
}
assert set(_DERIVATIONS) == {s.name for s in CATALOG}, "every scope needs a derivation"


def derive_scope(
    name: str, facts: Mapping[str, Any], aggregates: Aggregates, *, now: int
) -> dict[str, Any]:
    """One scope's value; :class:`errors.UnknownScope` for a name not in the catalog."""
    _catalog_entry(name)
    return _DERIVATIONS[name][0](facts, aggregates, now)


def derive_all(
    facts: Mapping[str, Any], aggregates: Aggregates, *, now: int
) -> dict[str, dict[str, Any]]:
    """Every catalog scope's value at unix time ``now``; "insufficient_data", never an
    error, where the identity holds too little."""
    return {s.name: _DERIVATIONS[s.name][0](facts, aggregates, now) for s in CATALOG}


def basis(facts: Mapping[str, Any], aggregates: Aggregates, scope: str) -> dict[str, Any]:
    """What a scope is derived from, as counts only: the names of the facts it read that
    are present, and how many events of each kind it can draw on (never a value)."""
    _catalog_entry(scope)
    _, fact_names, kinds = _DERIVATIONS[scope]
    return {
        "facts": [name for name in fact_names if facts.get(name) not in (None, "", [])],
        "events": {kind.value: aggregates.counts.get(kind.value, 0) for kind in kinds},
    }


def catalog_terms(word: Any) -> dict[str, str]:
    """A free-text genre or tag in the catalog's words, by profile: ``{"music": genre,
    "video": genre, "topic": topic}`` for those it maps to (the match scorer reads a
    company's candidate genres and tags through the same synonyms as the derivations)."""
    text = _text(word)
    terms: dict[str, str] = {}
    music = _vocab(text, MUSIC_GENRES, _GENRE_SYNONYMS)
    if music is not None:
        terms["music"] = music
    video = _vocab(text, VIDEO_GENRES, _VIDEO_GENRE_SYNONYMS)
    if video is not None:
        terms["video"] = video
    topic = _vocab(text, TOPICS, {}) or _VIDEO_GENRE_TOPIC.get(video or "")
    if topic is not None:
        terms["topic"] = topic
    return terms
