"""Spotify account data: ``StreamingHistory_music_*.json``.

A JSON array of ``{"endTime": "2024-01-31 21:05", "artistName", "trackName", "msPlayed"}``;
``endTime`` is when playback stopped, in UTC, to the minute. Each becomes a PLAY at that
minute. Records with an empty artist or track name carry nothing to learn from and are
skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from vault.export_kinds import KINDS
from vault.identity import Event, EventKind
from vault.importers._read import Skipped, converted, integer, iso_time, json_array, text


class SpotifyImporter:
    name = "spotify"
    description = KINDS["spotify"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        records = json_array(stream, filename=filename)
        return converted(records, lambda record: _play(record, self.name), filename=filename,
                         skipped=skipped)


def _play(record: dict[str, Any], source: str) -> Event | str:
    ended = iso_time(record.get("endTime"), "endTime")
    artist = text(record, "artistName")
    track = text(record, "trackName")
    ms_played = integer(record, "msPlayed")
    if not artist or not track:
        return "no artist or track name"
    return Event(
        EventKind.PLAY, ended, source, {"artist": artist, "track": track, "ms_played": ms_played}
    )
