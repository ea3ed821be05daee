"""Google Takeout YouTube history: ``watch-history.json``, or ``watch-history.html``
(Takeout's default, read by :mod:`vault.importers.youtube_html` into the same records).

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

from vault.export_kinds import KINDS
from vault.identity import Event, EventKind
from vault.importers import youtube_html
from vault.importers._read import (
    RecordError,
    Skipped,
    converted,
    iso_time,
    json_array,
    peek,
    text,
)

_PREFIX = "Watched "
_SNIFF = 64
SKIP_AD = "ad"
SKIP_REMOVED = "removed video"
_REMOVED = "a video that has been removed"


class YouTubeImporter:
    name = "youtube"
    description = KINDS["youtube"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        head, stream = peek(stream, _SNIFF)
        if youtube_html.looks_like_html(head):
            entries = youtube_html.entries(stream, filename=filename)
            return converted(entries, lambda record: _html_view(record, self.name),
                             filename=filename, skipped=skipped)
        records = json_array(stream, filename=filename)
        return converted(records, lambda record: view(record, self.name), filename=filename,
                         skipped=skipped)


def view(record: dict[str, Any], source: str) -> Event | str:
    """One watch-history entry (as Takeout's JSON writes it) as a VIEW, or why it is
    skipped."""
    watched = iso_time(record.get("time"), "time")
    title = text(record, "title")
    header = text(record, "header", required=False)
    if title is None or "details" in record:
        return SKIP_AD
    title = title.replace("\xa0", " ").removeprefix(_PREFIX).strip()
    if not title or title == _REMOVED or title.startswith(("https://", "http://")):
        return SKIP_REMOVED
    attrs: dict[str, Any] = {
        "title": title,
        "platform": "youtube-music" if header == "YouTube Music" else "youtube",
    }
    channel = _channel(record.get("subtitles"))
    if channel:
        attrs["channel"] = channel
    return Event(EventKind.VIEW, watched, source, attrs)


def _html_view(record: dict[str, Any], source: str) -> Event | str:
    if "time_text" not in record:
        raise RecordError("missing field 'time'")
    record["time"] = youtube_html.takeout_time(record.pop("time_text"))
    return view(record, source)


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
