"""Netflix account data: ``ViewingActivity.csv``.

Columns ``Profile Name, Start Time, Duration, Attributes, Title, Supplemental Video Type,
Device Type, Bookmark, Latest Bookmark, Country``; ``Start Time`` is UTC
(``2024-01-31 21:05:12``), ``Duration`` is ``H:MM:SS``. Each row becomes a VIEW with
``platform`` ``"netflix"``, the title, the seconds watched and, for an episode
(``Show: Season 1: Episode``), the series name. Device, country, bookmarks and attributes
are dropped. Trailers, hooks and other supplemental videos (a non-empty ``Supplemental
Video Type``) are skipped; so are other profiles' rows when a profile is chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from vault.export_kinds import KINDS
from vault.identity import Event, EventKind
from vault.importers._read import RecordError, Skipped, converted, csv_rows, hms, iso_time

REQUIRED_COLUMNS = ("Profile Name", "Start Time", "Duration", "Title", "Supplemental Video Type")
_EPISODIC = re.compile(
    r"(season|series|part|volume|vol\.|chapter|book|collection|limited series)\b", re.IGNORECASE
)


class NetflixImporter:
    name = "netflix"
    description = KINDS["netflix"]

    def __init__(self, *, profile: str | None = None) -> None:
        self.profile = profile

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        rows = csv_rows(stream, filename=filename, required=REQUIRED_COLUMNS)
        return converted(rows, self._view, filename=filename, skipped=skipped)

    @staticmethod
    def profiles(stream: BinaryIO, *, filename: str) -> Iterator[str]:
        """Each row's profile name (a profile chooser reads the whole file once)."""
        for _, row in csv_rows(stream, filename=filename, required=REQUIRED_COLUMNS):
            yield row["Profile Name"]

    def _view(self, row: dict[str, str]) -> Event | str:
        started = iso_time(row["Start Time"], "Start Time")
        seconds = hms(row["Duration"], "Duration")
        title = row["Title"].strip()
        if not title:
            raise RecordError("field 'Title' is empty")
        if row["Supplemental Video Type"].strip():
            return "trailer or other extra"
        if self.profile is not None and row["Profile Name"] != self.profile:
            return "another profile"
        attrs: dict[str, Any] = {"title": title, "platform": "netflix", "seconds": seconds}
        series = series_of(title)
        if series:
            attrs["series"] = series
        return Event(EventKind.VIEW, started, self.name, attrs)


def series_of(title: str) -> str | None:
    """The show's name in an episode title (``Show: Season 1: Episode``), else None.
    A film may have one colon (``Glass Onion: A Knives Out Mystery``); an episode has two or
    more, or one followed by a season-like word."""
    parts = title.split(": ")
    if len(parts) >= 3 or (len(parts) == 2 and _EPISODIC.match(parts[1])):
        return parts[0].strip() or None
    return None
