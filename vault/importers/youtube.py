"""Google Takeout YouTube history: ``watch-history.json``.

A JSON array of ``{"header": "YouTube", "title": "Watched <video title>", "titleUrl",
"subtitles": [{"name": <channel>, "url"}], "time": "2024-01-31T21:05:12.345Z",
"products": ["YouTube"], "activityControls": [...]}``. Each becomes a VIEW with the video
title, the channel when there is one, and ``platform`` ``"youtube"`` (``"youtube-music"``
when the header says YouTube Music). URLs are dropped: derivations need no identifiers.

Skipped, by design: ads (entries carrying ``details``, e.g. "From Google Ads"), and videos
removed since (their title is only a URL or "a video that has been removed").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from vault.identity import Event, EventKind
from vault.importers._read import RecordError, converted, iso_time, json_array, text

_PREFIX = "Watched "
_REMOVED = "a video that has been removed"


class YouTubeImporter:
    name = "youtube"
    description = "Google Takeout YouTube history: watch-history.json"

    def parse(self, stream: BinaryIO, *, filename: str) -> Iterator[Event]:
        records = json_array(stream, filename=filename)
        return converted(records, lambda record: _view(record, self.name), filename=filename)


def _view(record: dict[str, Any], source: str) -> Event | None:
    watched = iso_time(record.get("time"), "time")
    title = text(record, "title")
    header = text(record, "header", required=False)
    if title is None or "details" in record:
        return None
    title = title.removeprefix(_PREFIX).strip()
    if not title or title == _REMOVED or title.startswith(("https://", "http://")):
        return None
    attrs: dict[str, Any] = {
        "title": title,
        "platform": "youtube-music" if header == "YouTube Music" else "youtube",
    }
    channel = _channel(record.get("subtitles"))
    if channel:
        attrs["channel"] = channel
    return Event(EventKind.VIEW, watched, source, attrs)


def _channel(subtitles: object) -> str | None:
    if subtitles is None:
        return None
    if not isinstance(subtitles, list) or not all(isinstance(s, dict) for s in subtitles):
        raise RecordError("field 'subtitles' must be a list of objects")
    if not subtitles:
        return None
    name = subtitles[0].get("name")
    if name is not None and not isinstance(name, str):
        raise RecordError("field 'subtitles[0].name' must be a string")
    return name or None
