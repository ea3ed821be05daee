from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault import derive, errors, privacy, scopes
from vault.identity import Event, EventKind, Fact
from vault.importers import importer_for, sample_exports

NOW = 1_735_689_600  # 2025-01-01T00:00:00Z
HOUR = 3600
DAY = 86_400
EVENING = NOW - 4 * HOUR        # 20:00 UTC the day before
AFTERNOON = NOW - 11 * HOUR     # 13:00 UTC
INSUFFICIENT = {"status": "insufficient_data"}

ADA_FACTS: dict[str, Any] = {
    "birth_date": "1990-04-12",
    "city": "Lyon",
    "country": "FR",
    "languages": ["fr", "en-GB"],
    "favourite_colors": ["teal", "Navy Blue", "chartreuse"],
    "style": ["minimal", "vintage"],
    "diet": ["vegetarian"],
    "gift_wishes": ["a pottery class", "vinyl records", "socks"],
    "dislikes": ["socks"],
    "household_size": 2,
}


def play(artist: str, *, ms: Any = 200_000, at: int = EVENING, **extra: Any) -> Event:
    return Event(EventKind.PLAY, at, "spotify",
                 {"artist": artist, "track": "t", "ms_played": ms, **extra})


def view(platform: str, *, at: int = EVENING + HOUR, **attrs: Any) -> Event:
    return Event(EventKind.VIEW, at, platform, {"title": "x", "platform": platform, **attrs})


def buy(category: str, price: Any, currency: Any = "EUR", *, at: int = AFTERNOON) -> Event:
    return Event(EventKind.PURCHASE, at, "csv",
                 {"item": "thing", "category": category, "price": price, "currency": currency})


def mood(name: str, at: int) -> Event:
    return Event(EventKind.MOOD, at, "manual", {"mood": name})


def ada_events() -> list[Event]:
    return [
        *[play("Nina Simone") for _ in range(6)],
        *[play("Miles Davis") for _ in range(4)],
        *[play("Daft Punk") for _ in range(5)],
        *[play("Radiohead") for _ in range(3)],
        *[play("Unknown Band") for _ in range(5)],
        *[play("Taylor Swift", ms=5_000) for _ in range(10)],  # skips: not listens
        *[view("youtube", channel="Binging with Babish") for _ in range(4)],
        *[view("netflix", series="Stranger Things") for _ in range(3)],
        *[view("youtube", channel="Veritasium") for _ in range(2)],
        buy("Books", 12), buy("books", 18.0), buy("Kindle", "30"),
        buy("kitchen", 45), buy("Cookware", 60),
        buy("electronics", 300),
        mood("tired", NOW - 3 * DAY), mood("happy", NOW - 2 * HOUR), mood("calm", NOW - 30 * HOUR),
    ]


def folded(events: list[Event]) -> derive.Aggregates:
    aggregates = derive.Aggregates.empty()
    aggregates.fold(events)
    return aggregates


ADA_EXPECTED: dict[str, dict[str, Any]] = {
    "profile.age_range": {"status": "ok", "range": "25-34"},
    "profile.region": {"status": "ok", "country": "FR", "region": "Western Europe"},
    "profile.languages": {"status": "ok", "languages": ["fr", "en"]},
    "preferences.colors": {"status": "ok", "colors": ["teal", "navy"]},
    "preferences.style": {"status": "ok", "styles": ["minimalist", "vintage"]},
    "preferences.music": {"status": "ok", "genres": [
        {"genre": "jazz", "weight": 0.55},
        {"genre": "electronic", "weight": 0.3},
        {"genre": "indie", "weight": 0.15},
    ]},
    "preferences.video": {"status": "ok", "genres": [
        {"genre": "cooking", "weight": 0.45},
        {"genre": "sci-fi", "weight": 0.35},
    ], "platforms": ["youtube", "netflix"]},
    "preferences.food": {"status": "ok", "diets": ["vegetarian"]},
    "interests.topics": {"status": "ok", "topics": [
        {"topic": "cooking", "weight": 0.4},
        {"topic": "books", "weight": 0.2},
        {"topic": "film", "weight": 0.2},
    ]},
    "shopping.gift_ideas": {"status": "ok", "ideas": [
        "a pottery class", "vinyl records", "a cookbook", "a bookshop voucher",
        "cinema tickets",
    ]},
    "shopping.price_band": {"status": "ok", "band": "25-50", "currency": "EUR"},
    "mood.current": {"status": "ok", "mood": "happy"},
    "activity.dayparts": {"status": "ok", "peak": "evening", "shares": {
        "night": 0.0, "morning": 0.0, "afternoon": 0.1, "evening": 0.9,
    }},
    "household.size": {"status": "ok", "size": "2"},
    "shopping.categories": {"status": "ok", "categories": [
        {"category": "books", "weight": 0.5},
        {"category": "kitchen", "weight": 0.35},
    ]},
    "mood.recent": {"status": "ok", "moods": [
        {"mood": "calm", "weight": 0.3},
        {"mood": "happy", "weight": 0.3},
        {"mood": "tired", "weight": 0.3},
    ]},
    "match.content": INSUFFICIENT,
    "match.history": INSUFFICIENT,
}


def test_every_scope_has_an_expected_value_in_the_fixture() -> None:
    assert set(ADA_EXPECTED) == {s.name for s in scopes.CATALOG}


@pytest.mark.parametrize("name", list(ADA_EXPECTED))
def test_each_scope_on_a_full_identity(name: str) -> None:
    values = derive.derive_all(ADA_FACTS, folded(ada_events()), now=NOW)
    assert values[name] == ADA_EXPECTED[name]
    assert derive.derive_scope(name, ADA_FACTS, folded(ada_events()), now=NOW) == values[name]


def test_empty_identity_is_insufficient_data_everywhere() -> None:
    values = derive.derive_all({}, derive.Aggregates.empty(), now=NOW)
    assert values == {s.name: INSUFFICIENT for s in scopes.CATALOG}
    for entry in scopes.CATALOG:
        assert derive.basis({}, derive.Aggregates.empty(), entry.name)["facts"] == []


def test_values_are_fresh_objects() -> None:
    values = derive.derive_all({}, derive.Aggregates.empty(), now=NOW)
    values["mood.current"]["status"] = "changed"
    assert derive.derive_all({}, derive.Aggregates.empty(), now=NOW)["mood.current"] == INSUFFICIENT


def test_values_match_their_catalog_shape() -> None:
    values = derive.derive_all(ADA_FACTS, folded(ada_events()), now=NOW)
    for entry in scopes.CATALOG:
        value = values[entry.name]
        properties = entry.shape["properties"]
        assert set(value) == set(properties)
        for field, schema in properties.items():
            if schema.get("type") == "array":
                assert len(value[field]) <= schema["maxItems"]
                items = schema["items"]
                enum = items.get("enum") or next(
                    (p["enum"] for p in items.get("properties", {}).values() if "enum" in p), None
                )
                if enum is not None:
                    for item in value[field]:
                        word = item if isinstance(item, str) else next(
                            v for v in item.values() if isinstance(v, str))
                        assert word in enum
            elif "enum" in schema:
                assert value[field] in schema["enum"]


def test_mood_current_needs_a_mood_from_the_last_day() -> None:
    stale = folded([mood("sad", NOW - DAY - 1)])
    assert derive.derive_all({}, stale, now=NOW)["mood.current"] == INSUFFICIENT
    edge = folded([mood("sad", NOW - DAY), mood("bored", NOW + HOUR)])  # future ignored
    assert derive.derive_all({}, edge, now=NOW)["mood.current"] == {"status": "ok", "mood": "sad"}
    assert derive.derive_all({}, edge, now=NOW + 2 * HOUR)["mood.current"]["mood"] == "bored"


def test_mood_keeps_only_the_latest_moods_whatever_the_order() -> None:
    moods = [mood(random.Random(i).choice(scopes.MOODS), NOW - i * 60) for i in range(500)]
    forward, backward = folded(moods), folded(list(reversed(moods)))
    assert forward == backward
    assert len(forward.moods) == derive.MAX_MOODS
    assert forward.moods[-1][0] == NOW


def test_gift_ideas_drop_dislikes_case_insensitively() -> None:
    facts = {"gift_wishes": ["Wool SOCKS", "a kite", "a kite"], "dislikes": ["socks"]}
    value = derive.derive_all(facts, derive.Aggregates.empty(), now=NOW)["shopping.gift_ideas"]
    assert value == {"status": "ok", "ideas": ["a kite"]}
    only_disliked = {"gift_wishes": ["socks"], "dislikes": "socks"}
    assert derive.derive_all(only_disliked, derive.Aggregates.empty(),
                             now=NOW)["shopping.gift_ideas"] == INSUFFICIENT


def test_price_band_uses_the_main_currency_and_the_median() -> None:
    events = [buy("books", 5, "USD"), buy("books", 7, "USD"), buy("books", 2000, "USD"),
              buy("books", 99, "GBP"), buy("books", 80, "gbp"), buy("home", "nan", "USD"),
              buy("home", -4, "USD"), buy("home", 10, "dollars")]
    value = derive.derive_all({}, folded(events), now=NOW)["shopping.price_band"]
    assert value == {"status": "ok", "band": "0-10", "currency": "USD"}
    assert derive.derive_all({}, folded(events[:2]), now=NOW)["shopping.price_band"] == INSUFFICIENT


def test_price_band_currency_comes_from_the_closed_iso_4217_list() -> None:
    """A purchase's currency reaches a company: a three-letter string that is not an ISO 4217
    code (an export's typo, or a planted value) never counts and never appears."""
    planted = [buy("books", 20, "ZZQ") for _ in range(5)] + [buy("books", 20, "XXX")]
    value = derive.derive_all({}, folded(planted), now=NOW)["shopping.price_band"]
    assert value == INSUFFICIENT
    mixed = planted + [buy("books", 20, "CHF") for _ in range(3)]
    value = derive.derive_all({}, folded(mixed), now=NOW)["shopping.price_band"]
    assert value == {"status": "ok", "band": "10-25", "currency": "CHF"}


def test_region_falls_back_to_a_known_city_and_never_names_it() -> None:
    value = derive.derive_all({"city": "München"}, derive.Aggregates.empty(), now=NOW)
    assert value["profile.region"] == {"status": "ok", "country": "DE",
                                       "region": "Western Europe"}
    unknown = derive.derive_all({"city": "Smalltown", "country": "ZZ"},
                                derive.Aggregates.empty(), now=NOW)
    assert unknown["profile.region"] == INSUFFICIENT


ODD_FACTS: list[dict[str, Any]] = [
    {"birth_date": 19900412, "household_size": "two", "country": 49, "languages": 7},
    {"birth_date": "not a date", "household_size": True, "city": None, "languages": {}},
    {"birth_date": "2999-01-01", "household_size": 10**40, "country": "", "languages": [None]},
    {"birth_date": "", "household_size": -3, "favourite_colors": [1, None, {"x": 1}],
     "style": "", "diet": [[]], "gift_wishes": [None, 3.5], "dislikes": 12},
    {"birth_date": "1990-13-45", "household_size": float("nan"), "favourite_colors": "ultraviolet",
     "languages": ["english!", "x"], "gift_wishes": "   "},
]


@pytest.mark.parametrize("facts", ODD_FACTS)
def test_odd_facts_are_insufficient_data_never_an_error(facts: dict[str, Any]) -> None:
    values = derive.derive_all(facts, derive.Aggregates.empty(), now=NOW)
    assert all(v == INSUFFICIENT for v in values.values())


def test_odd_but_usable_facts_are_normalised() -> None:
    facts = {"birth_date": date(2001, 2, 3), "household_size": "7", "languages": "en-US, pt_BR",
             "favourite_colors": "Gray, LIGHT BLUE, gray", "diet": "Plant-Based",
             "country": " fr "}
    values = derive.derive_all(facts, derive.Aggregates.empty(), now=NOW)
    assert values["profile.age_range"]["range"] == "18-24"
    assert values["household.size"]["size"] == "5+"
    assert values["profile.languages"]["languages"] == ["en", "pt"]
    assert values["preferences.colors"]["colors"] == ["grey", "blue"]
    assert values["preferences.food"]["diets"] == ["vegan"]
    assert values["profile.region"]["country"] == "FR"


def _odd_events() -> list[Event]:
    huge = "x" * 1_000_000
    return [
        play("Beyonce\u0301", ms=10**30), play("BEYONCÉ"), play("beyoncé", ms="45000"),
        play(huge, ms=float("nan")), play("", ms=None, genre="Hip Hop"),
        play("🎸🎸", ms=-5), play("Ghost", genre=["rock"]), play("Ghost", genre="Post-Rock"),
        Event(EventKind.PLAY, -10**12, "spotify", {}),
        Event(EventKind.PLAY, 2**62, "spotify", {"artist": None, "ms_played": True}),
        Event(EventKind.VIEW, NOW, "x", {"platform": None, "channel": huge, "series": 5}),
        Event(EventKind.VIEW, NOW, "x", {"platform": "Disney+", "genre": "Science Fiction"}),
        Event(EventKind.PURCHASE, NOW, "x", {"price": float("inf"), "currency": "€"}),
        Event(EventKind.PURCHASE, NOW, "x", {"price": 1e308}),
        Event(EventKind.MOOD, NOW, "x", {"mood": "ecstatic"}),
        Event(EventKind.MOOD, NOW, "x", {"mood": "  Happy "}),
        Event(EventKind.MOOD, NOW, "x", {}),
        Event("nonsense", NOW, "x", {}),  # type: ignore[arg-type]
        Event(EventKind.PLAY, "yesterday", "x", {"artist": "Queen"}),  # type: ignore[arg-type]
        Event(EventKind.VIEW, NOW, "x", "not a dict"),  # type: ignore[arg-type]
    ]


def test_unicode_huge_and_odd_events_fold_without_error() -> None:
    aggregates = folded(_odd_events())
    assert aggregates.artists["beyoncé"][0] == 3  # NFC + casefold join the spellings
    assert all(len(k) <= derive.MAX_KEY_CHARS for k in aggregates.artists)
    assert all(len(k) <= derive.MAX_KEY_CHARS for k in aggregates.channels)
    assert aggregates.genres == {"r&b": 3, "hip-hop": 1, "rock": 1}  # a list is no genre
    assert aggregates.video_genres == {"sci-fi": 1}
    assert aggregates.platforms == {"other": 2, "disney-plus": 1}
    assert aggregates.prices == {}
    assert aggregates.moods == [[NOW, "happy"]]
    assert aggregates.counts == {"play": 11, "view": 3, "purchase": 2, "mood": 3}
    assert len(aggregates.to_json()) < 10_000
    values = derive.derive_all({}, aggregates, now=NOW)
    assert values["preferences.music"]["genres"][0] == {"genre": "r&b", "weight": 0.6}
    json.dumps(values, allow_nan=False)  # every value is strict JSON


CANARY = "CANARY-7f3a-raw-track"


def test_a_canary_in_raw_records_never_reaches_a_derived_value() -> None:
    """THREATS row 29: a raw value planted in the vault never appears in a response."""
    planted = [
        play("Nina Simone", track=CANARY),
        *[play(CANARY, genre=CANARY, album=CANARY) for _ in range(50)],
        *[view("youtube", channel=CANARY, series=CANARY, title=CANARY, genre=CANARY)
          for _ in range(50)],
        *[buy(CANARY, 20, CANARY) for _ in range(50)],
        *[Event(EventKind.MOOD, NOW, CANARY, {"mood": CANARY}) for _ in range(5)],
        *[Event(EventKind.PURCHASE, NOW, "x",
                {"item": CANARY, "category": "books", "price": 20, "currency": "EUR"})
          for _ in range(5)],
    ]
    aggregates = folded(ada_events() + planted)
    facts = {k: v for k, v in ADA_FACTS.items() if k != "gift_wishes"}  # declared free text
    facts["city"] = CANARY
    facts["favourite_colors"] = [CANARY, "teal"]
    facts["style"] = [CANARY]
    facts["languages"] = [CANARY, "fr"]
    values = derive.derive_all(facts, aggregates, now=NOW)
    released = [privacy.release_value(scopes.scope(n), v, secret=i.to_bytes(32, "big"))
                for n, v in values.items() for i in range(50)]
    basis = [derive.basis(facts, aggregates, s.name) for s in scopes.CATALOG]
    for blob in (values, released, basis):
        text = json.dumps(blob, ensure_ascii=False).casefold()
        assert "canary" not in text and "7f3a" not in text


def _random_events(seed: int, n: int) -> list[Event]:
    rng = random.Random(seed)
    kinds = list(EventKind)
    artists = [f"artist {i}" for i in range(3 * derive.MAX_ARTISTS)] + list(derive.ARTIST_GENRES)
    events = []
    for _ in range(n):
        kind = rng.choice(kinds)
        at = NOW - rng.randrange(30 * DAY)
        if kind is EventKind.PLAY:
            events.append(play(rng.choice(artists), ms=rng.randrange(60_000), at=at))
        elif kind is EventKind.VIEW:
            events.append(view(rng.choice(["youtube", "netflix"]), at=at,
                               channel=f"ch {rng.randrange(1000)}",
                               series=rng.choice(list(derive.SERIES_GENRES))))
        elif kind is EventKind.PURCHASE:
            events.append(buy(rng.choice(scopes.PURCHASE_CATEGORIES), rng.uniform(0, 500),
                              rng.choice(["EUR", "USD", "GBP"]), at=at))
        else:
            events.append(mood(rng.choice(scopes.MOODS), at))
    return events


@pytest.mark.parametrize("split", [0, 1, 2500, 7000, 9999])
def test_folding_in_two_halves_equals_folding_all_at_once(split: int) -> None:
    events = _random_events(7, 10_000)
    whole = folded(events)
    first = folded(events[:split])
    resumed = derive.Aggregates.from_json(first.to_json())  # as the store keeps it
    resumed.fold(events[split:])
    assert resumed.to_json() == whole.to_json()
    assert derive.derive_all(ADA_FACTS, resumed, now=NOW) == derive.derive_all(
        ADA_FACTS, whole, now=NOW)


def test_the_summary_stays_bounded() -> None:
    events = _random_events(11, 20_000)
    events += [view("youtube", channel=f"c{i}", series=f"s{i}") for i in range(5000)]
    events += [buy("books", 10, f"C{i:02d}".replace("0", "Q")[:3].upper()) for i in range(99)]
    aggregates = folded(events)
    assert len(aggregates.artists) <= 2 * derive.MAX_ARTISTS
    assert len(aggregates.channels) <= 2 * derive.MAX_CHANNELS
    assert len(aggregates.series) <= 2 * derive.MAX_SERIES
    assert len(aggregates.prices) <= 2 * derive.MAX_CURRENCIES
    size = len(aggregates.to_json())
    aggregates.fold(_random_events(12, 20_000))
    assert len(aggregates.to_json()) < 2 * size


def test_frequent_items_survive_pruning_exactly() -> None:
    events = [play("Nina Simone") for _ in range(100)]
    events += [play(f"one-off {i}") for i in range(5 * derive.MAX_ARTISTS)]
    assert folded(events).artists["nina simone"] == [100, 100 * 200_000]


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"version": 99}', b"\xff\xfe",
                                  b'{"version": 1}'])
def test_unreadable_summaries_raise_corrupt_file(data: bytes) -> None:
    with pytest.raises(errors.CorruptFile):
        derive.Aggregates.from_json(data)


def test_summary_with_a_wrong_field_type_is_corrupt() -> None:
    state = json.loads(folded(ada_events()).to_json())
    state["hours"] = {"0": 1}
    with pytest.raises(errors.CorruptFile):
        derive.Aggregates.from_json(json.dumps(state).encode())


def test_basis_gives_fact_names_and_event_counts_only() -> None:
    aggregates = folded(ada_events())
    assert derive.basis(ADA_FACTS, aggregates, "preferences.music") == {
        "facts": [], "events": {"play": 33}}
    assert derive.basis(ADA_FACTS, aggregates, "shopping.gift_ideas") == {
        "facts": ["gift_wishes", "dislikes"], "events": {"view": 9, "purchase": 6}}
    assert derive.basis({"city": "Lyon"}, aggregates, "profile.region") == {
        "facts": ["city"], "events": {}}
    with pytest.raises(errors.UnknownScope):
        derive.basis({}, aggregates, "profile.city")
    with pytest.raises(errors.UnknownScope):
        derive.derive_scope("profile.city", {}, aggregates, now=NOW)


@pytest.mark.parametrize(
    ("synonyms", "vocabulary"),
    [
        (derive._GENRE_SYNONYMS, scopes.MUSIC_GENRES),
        (derive.ARTIST_GENRES, scopes.MUSIC_GENRES),
        (derive._VIDEO_GENRE_SYNONYMS, scopes.VIDEO_GENRES),
        (derive.CHANNEL_GENRES, scopes.VIDEO_GENRES),
        (derive.CHANNEL_TOPICS, scopes.TOPICS),
        (derive.SERIES_GENRES, scopes.VIDEO_GENRES),
        (derive._PLATFORM_SYNONYMS, scopes.PLATFORMS),
        (derive._CATEGORY_SYNONYMS, scopes.PURCHASE_CATEGORIES),
        (derive._VIDEO_GENRE_TOPIC, scopes.TOPICS),
        (derive._CATEGORY_TOPIC, scopes.TOPICS),
        (derive._COLOR_SYNONYMS, scopes.COLORS),
        (derive._STYLE_SYNONYMS, scopes.STYLES),
        (derive._DIET_SYNONYMS, scopes.DIETS),
        (derive.COUNTRY_REGIONS, scopes.REGIONS),
    ],
)
def test_built_in_maps_only_map_into_the_catalog_vocabularies(
    synonyms: dict[str, str], vocabulary: tuple[str, ...]
) -> None:
    assert set(synonyms.values()) <= set(vocabulary)
    assert all(key == key.casefold().strip() for key in synonyms if synonyms is not
               derive.COUNTRY_REGIONS)


def test_every_topic_has_a_gift_idea_and_every_city_a_known_country() -> None:
    assert set(derive.TOPIC_GIFTS) == set(scopes.TOPICS)
    assert set(derive.CITY_COUNTRIES.values()) <= set(derive.COUNTRY_REGIONS)


def _sample_identity() -> tuple[dict[str, Any], derive.Aggregates]:
    facts: dict[str, Any] = {}
    aggregates = derive.Aggregates.empty()
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            records = list(importer_for(kind).parse(stream, filename=path.name))
        aggregates.fold(r for r in records if isinstance(r, Event))
        facts.update({r.name: r.value for r in records if isinstance(r, Fact)})
    return facts, aggregates


def test_sample_exports_produce_sensible_preferences() -> None:
    """End to end: Ada's bundled sample exports through their importers into derive."""
    facts, aggregates = _sample_identity()
    at = aggregates.moods[-1][0] + HOUR  # an hour after her last recorded mood
    values = derive.derive_all(facts, aggregates, now=at)
    assert values["profile.age_range"] == {"status": "ok", "range": "25-34"}
    assert values["profile.region"] == {"status": "ok", "country": "GB",
                                        "region": "Northern Europe"}
    assert values["preferences.colors"]["colors"] == ["green", "yellow", "orange"]
    genres = [g["genre"] for g in values["preferences.music"]["genres"]]
    assert genres[:2] == ["jazz", "indie"] and "folk" in genres
    assert values["preferences.video"]["platforms"] == ["youtube", "netflix"]
    assert values["interests.topics"]["status"] == "ok"
    assert "pottery class" in values["shopping.gift_ideas"]["ideas"]
    assert values["shopping.price_band"]["currency"] == "GBP"
    assert values["mood.current"]["status"] == "ok"
    assert values["household.size"] == {"status": "ok", "size": "2"}
    assert all(v["status"] == "ok" for k, v in values.items() if not k.startswith("match."))


def test_the_sample_canary_track_never_reaches_a_derived_value() -> None:
    """THREATS row 29: the sample Spotify export plays CANARY-7f3a-raw-track once."""
    facts, aggregates = _sample_identity()
    values = derive.derive_all(facts, aggregates, now=NOW)
    text = json.dumps([values, [derive.basis(facts, aggregates, s.name)
                                for s in scopes.CATALOG]], ensure_ascii=False)
    assert CANARY not in text and "canary" not in text.casefold()


_ODD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["Radiohead", "jazz", "EUR", "happy", "netflix", "books", "Beyoncé"]),
    st.lists(st.text(max_size=5), max_size=3),
)
_EVENT = st.builds(
    Event,
    kind=st.sampled_from(list(EventKind)),
    occurred_at=st.integers(min_value=-(2**40), max_value=2**40),
    source=st.text(max_size=10),
    attrs=st.dictionaries(
        st.sampled_from(["artist", "track", "ms_played", "genre", "platform", "channel",
                         "series", "category", "price", "currency", "mood", "title"]),
        _ODD, max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(events=st.lists(_EVENT, max_size=60), split=st.integers(min_value=0, max_value=60),
       facts=st.dictionaries(st.sampled_from(sorted(ADA_FACTS)), _ODD, max_size=10))
def test_any_events_and_facts_fold_incrementally_and_derive_strict_json(
    events: list[Event], split: int, facts: dict[str, Any]
) -> None:
    whole = folded(events)
    resumed = derive.Aggregates.from_json(folded(events[:split]).to_json())
    resumed.fold(events[split:])
    assert resumed == whole
    values = derive.derive_all(facts, whole, now=NOW)
    json.dumps(values, allow_nan=False)
    for entry in scopes.CATALOG:
        assert values[entry.name]["status"] in ("ok", "insufficient_data")
