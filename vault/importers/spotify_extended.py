"""Spotify extended streaming history: ``Streaming_History_Audio_*.json``.

A JSON array of objects with ``ts`` (when playback stopped, UTC), ``ms_played``,
``master_metadata_track_name``, ``master_metadata_album_artist_name``,
``master_metadata_album_album_name`` and some twenty more fields (IP address, platform,
country, user agent, shuffle, skip reasons...). Only track, artist, album, ``ms_played``
and ``ts`` are kept: the rest is never read into an Event (data minimisation).

Skipped, by design: podcast episodes and audiobook chapters (no track/artist; podcast
listening can reveal health, religion or politics and no scope needs it), plays made in a
private session (``incognito_mode: true`` - the person asked not to be profiled), and
records whose track metadata is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from vault.export_kinds import KINDS
from vault.identity import Event, EventKind
from vault.importers._read import (
    RecordError,
    Skipped,
    converted,
    integer,
    iso_time,
    json_array,
    text,
)

SKIP_PRIVATE = "private session"
SKIP_SPOKEN = "podcast episode or audiobook"
SKIP_NO_METADATA = "no track metadata"
#: Fields that only a podcast episode or an audiobook chapter fills.
_SPOKEN_WORD = ("episode_name", "episode_show_name", "spotify_episode_uri", "audiobook_title",
                "audiobook_chapter_title", "audiobook_uri", "audiobook_chapter_uri")


class SpotifyExtendedImporter:
    name = "spotify-extended"
    description = KINDS["spotify-extended"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        records = json_array(stream, filename=filename)
        return converted(records, lambda record: _play(record, self.name), filename=filename,
                         skipped=skipped)


def _play(record: dict[str, Any], source: str) -> Event | str:
    ended = iso_time(record.get("ts"), "ts")
    ms_played = integer(record, "ms_played")
    track = text(record, "master_metadata_track_name", required=False)
    artist = text(record, "master_metadata_album_artist_name", required=False)
    album = text(record, "master_metadata_album_album_name", required=False)
    incognito = record.get("incognito_mode")
    if incognito is not None and not isinstance(incognito, bool):
        raise RecordError("field 'incognito_mode' must be true, false or null")
    if incognito:
        return SKIP_PRIVATE
    if any(record.get(key) for key in _SPOKEN_WORD):
        return SKIP_SPOKEN
    if not track or not artist:
        return SKIP_NO_METADATA
    attrs: dict[str, Any] = {"artist": artist, "track": track, "ms_played": ms_played}
    if album:
        attrs["album"] = album
    return Event(EventKind.PLAY, ended, source, attrs)
