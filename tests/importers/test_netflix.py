"""Netflix ViewingActivity.csv."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vault.errors import MalformedExport
from vault.identity import Event, EventKind
from vault.importers.netflix import NetflixImporter, series_of

FIXTURES = Path(__file__).parent / "fixtures"
VIEW = EventKind.VIEW
CROWN = Event(VIEW, 1706735112, "netflix",
              {"title": "The Crown: Season 1: Wolferton Splash (Episode 1)",
               "platform": "netflix", "seconds": 2530, "series": "The Crown"})
GLASS_ONION = Event(VIEW, 1706641200, "netflix",
                    {"title": "Glass Onion: A Knives Out Mystery", "platform": "netflix",
                     "seconds": 8370})
POKEMON = Event(VIEW, 1706551200, "netflix",
                {"title": "Pokémon: Indigo League: Pokémon - I Choose You! (Episode 1)",
                 "platform": "netflix", "seconds": 1500, "series": "Pokémon"})
DARK = Event(VIEW, 1706479200, "netflix",
             {"title": "Dark: Limited Series: Secrets", "platform": "netflix",
              "seconds": 3001, "series": "Dark"})


def test_parses_views_and_skips_trailers(parse):
    assert parse("netflix", "ViewingActivity.csv") == [CROWN, GLASS_ONION, POKEMON, DARK]


def test_profile_filter_keeps_one_profile():
    with (FIXTURES / "ViewingActivity.csv").open("rb") as stream:
        events = list(NetflixImporter(profile="Ada").parse(stream, filename="v.csv"))
    assert events == [CROWN, GLASS_ONION, DARK]


def test_leaves_the_callers_stream_open():
    stream = io.BytesIO((FIXTURES / "ViewingActivity.csv").read_bytes())
    list(NetflixImporter().parse(stream, filename="v.csv"))
    assert not stream.closed


@pytest.mark.parametrize(
    ("title", "series"),
    [
        ("Stranger Things: Season 4: Chapter One", "Stranger Things"),
        ("Chernobyl: Limited Series: 1:23:45", "Chernobyl"),
        ("Money Heist: Part 1", "Money Heist"),
        ("Glass Onion: A Knives Out Mystery", None),
        ("Roma", None),
    ],
)
def test_series_of(title, series):
    assert series_of(title) == series


def test_parsing_twice_gives_identical_canonical_bytes(parse):
    runs = [[e.canonical() for e in parse("netflix", "ViewingActivity.csv")] for _ in range(2)]
    assert runs[0] == runs[1]


def test_wrong_columns_are_refused(parse):
    """THREATS row 30: wrong columns name the file and the missing column."""
    with pytest.raises(MalformedExport) as caught:
        parse("netflix", "ViewingActivity_wrong_columns.csv")
    assert caught.value.path == "ViewingActivity_wrong_columns.csv"
    assert caught.value.record is None
    assert "'Supplemental Video Type'" in caught.value.problem


def test_negative_duration_names_file_and_record(parse):
    """THREATS row 30: negative durations."""
    with pytest.raises(MalformedExport) as caught:
        parse("netflix", "ViewingActivity_negative_duration.csv")
    assert caught.value.record == 2
    assert "'Duration'" in caught.value.problem


def test_short_row_names_record():
    """THREATS row 30."""
    data = (FIXTURES / "ViewingActivity.csv").read_bytes() + b"Ada,2024-01-31 21:05:12\r\n"
    with pytest.raises(MalformedExport) as caught:
        list(NetflixImporter().parse(io.BytesIO(data), filename="v.csv"))
    assert caught.value.record == 6
    assert "expected 10 columns, found 2" in caught.value.problem
