"""Spotify account-data StreamingHistory_music_*.json (THREATS row 30 for the bad files)."""

from __future__ import annotations

import pytest

from vault.errors import MalformedExport
from vault.identity import Event, EventKind

PLAY = EventKind.PLAY


def test_parses_fixture_into_exact_plays(parse):
    assert parse("spotify", "StreamingHistory_music_0.json") == [
        Event(PLAY, 1706735100, "spotify",
              {"artist": "Nina Simone", "track": "Feeling Good", "ms_played": 173000}),
        Event(PLAY, 1706735340, "spotify",
              {"artist": "Björk", "track": "Jóga", "ms_played": 305213}),
        # the record with an empty track name is skipped
        Event(PLAY, 1706772840, "spotify",
              {"artist": "坂本龍一", "track": "Merry Christmas Mr. Lawrence", "ms_played": 0}),
    ]


def test_parsing_twice_gives_identical_canonical_bytes(parse):
    first = [e.canonical() for e in parse("spotify", "StreamingHistory_music_0.json")]
    second = [e.canonical() for e in parse("spotify", "StreamingHistory_music_0.json")]
    assert first == second


@pytest.mark.parametrize(
    ("name", "record", "problem"),
    [
        ("StreamingHistory_music_truncated.json", 2, "not valid JSON"),
        ("StreamingHistory_music_bad_date.json", 2, "'endTime' is not an ISO 8601"),
        ("StreamingHistory_music_negative.json", 3, "'msPlayed' must not be negative"),
        ("StreamingHistory_music_wrong_type.json", 1, "'msPlayed' must be an integer"),
    ],
)
def test_malformed_file_names_file_and_record(parse, name, record, problem):
    """THREATS row 30: bad JSON, bad dates, wrong types, negative durations."""
    with pytest.raises(MalformedExport) as caught:
        parse("spotify", name)
    assert caught.value.path == name
    assert caught.value.record == record
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{name}, record {record}: ")
