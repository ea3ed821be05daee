"""Google Takeout YouTube watch-history.json."""

from __future__ import annotations

import pytest

from vault.errors import MalformedExport
from vault.identity import Event, EventKind

VIEW = EventKind.VIEW


def test_parses_views_and_skips_ads_and_removed_videos(parse):
    assert parse("youtube", "watch-history.json") == [
        Event(VIEW, 1706735112, "youtube",
              {"title": "How to make sourdough bread at home", "platform": "youtube",
               "channel": "The Bread Channel"}),
        Event(VIEW, 1706486399, "youtube",
              {"title": "Clair de Lune", "platform": "youtube-music",
               "channel": "Claude Debussy - Topic"}),
        Event(VIEW, 1706356800, "youtube", {"title": "東京の夜景 4K", "platform": "youtube"}),
    ]


def test_urls_are_not_kept(parse):
    blob = b"".join(e.canonical() for e in parse("youtube", "watch-history.json"))
    assert b"https://" not in blob


def test_parsing_twice_gives_identical_canonical_bytes(parse):
    runs = [[e.canonical() for e in parse("youtube", "watch-history.json")] for _ in range(2)]
    assert runs[0] == runs[1]


def test_bad_time_names_file_and_record(parse):
    """THREATS row 30: a bad date names the file and record, and not the value."""
    with pytest.raises(MalformedExport) as caught:
        parse("youtube", "watch-history_bad_time.json")
    assert (caught.value.path, caught.value.record) == ("watch-history_bad_time.json", 1)
    assert "'time'" in caught.value.problem
    assert "yesterday" not in str(caught.value)
