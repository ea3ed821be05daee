"""Spotify extended streaming history Streaming_History_Audio_*.json."""

from __future__ import annotations

import pytest

from vault.errors import MalformedExport
from vault.identity import Event, EventKind


def test_keeps_music_and_drops_podcasts_incognito_and_extra_fields(parse):
    """Podcast episodes and private-session plays are skipped; IP address, platform,
    country and the rest never reach an Event (data minimisation)."""
    events = parse("spotify-extended", "Streaming_History_Audio_2024.json")
    assert events == [
        Event(EventKind.PLAY, 1709403761, "spotify-extended",
              {"artist": "ABBA", "track": "Dancing Queen", "ms_played": 231480,
               "album": "Arrival"}),
        Event(EventKind.PLAY, 1709452800, "spotify-extended",
              {"artist": "Ludovico Einaudi", "track": "Nuvole bianche", "ms_played": 64000}),
    ]
    blob = b"".join(e.canonical() for e in events)
    for dropped in (b"203.0.113.7", b"198.51.100.23", b"android", b"spotify:track", b"FR"):
        assert dropped not in blob


def test_parsing_twice_gives_identical_canonical_bytes(parse):
    runs = [
        [e.canonical() for e in parse("spotify-extended", "Streaming_History_Audio_2024.json")]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_wrong_type_names_file_and_record(parse):
    """THREATS row 30."""
    with pytest.raises(MalformedExport) as caught:
        parse("spotify-extended", "Streaming_History_Audio_bad_type.json")
    assert caught.value.path == "Streaming_History_Audio_bad_type.json"
    assert caught.value.record == 2
    assert "'master_metadata_track_name' must be a string" in caught.value.problem
