"""Google Takeout YouTube history as HTML: ``watch-history.html`` (Takeout's default format).

One ``outer-cell`` block per entry::

    <div class="outer-cell ...">
      <div class="header-cell ..."><p class="mdl-typography--title">YouTube<br></p></div>
      <div class="content-cell ... mdl-typography--body-1">Watched&nbsp;<a href="…">Title</a><br>
        <a href="…">Channel</a><br>Jan 31, 2024, 9:05:12 PM GMT<br></div>
      <div class="content-cell ... mdl-typography--body-1 mdl-typography--text-right"></div>
      <div class="content-cell ... mdl-typography--caption"><b>Products:</b><br>&emsp;YouTube
        <br><b>Details:</b><br>&emsp;From Google Ads<br>…</div>
    </div>

Each entry is turned into the record Takeout's JSON format would hold (``header``, ``title``,
``subtitles``, ``time``, ``details`` for ads) and read by the JSON importer's own rules
(:func:`vault.importers.youtube.view`), so both formats give the same events. Links are not
kept. Times are written in the account's language and time zone: English dates (US
``Jan 31, 2024, 9:05:12 PM`` or UK ``31 Jan 2024, 21:05:12``) with a zone abbreviation or a
``GMT+01:00`` offset are read; anything else names the record and suggests the JSON format.

The parser is fed 64 KiB at a time and yields each entry once its block closes: a large
history is never held whole. One entry (or unparsed markup) larger than
:data:`~vault.importers._read.MAX_RECORD_BYTES` is refused.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any, BinaryIO

from vault.errors import MalformedExport
from vault.importers._read import MAX_RECORD_BYTES, RecordError

_CHUNK = 64 * 1024
_MONTHS = {name: n for n, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_US_TIME = re.compile(
    r"(?P<month>[A-Za-z]{3})[a-z]* (?P<day>\d{1,2}), (?P<year>\d{4}),? "
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<half>[AaPp][Mm]) (?P<zone>\S+)"
)
_UK_TIME = re.compile(
    r"(?P<day>\d{1,2}) (?P<month>[A-Za-z]{3})[a-z]*\.? (?P<year>\d{4}),? "
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<zone>\S+)"
)
_OFFSET = re.compile(r"(?:GMT|UTC)(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?")
#: Zone abbreviations Takeout writes, at their standard meaning (IST is left out: it is
#: both Ireland's and India's).
_ZONES_MINUTES = {
    "UTC": 0, "GMT": 0, "WET": 0, "BST": 60, "WEST": 60, "CET": 60, "CEST": 120, "EET": 120,
    "EEST": 180, "MSK": 180, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
    "MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480,
    "HST": -600, "JST": 540, "KST": 540, "SGT": 480, "HKT": 480, "AWST": 480, "ACST": 570,
    "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}


def looks_like_html(head: bytes) -> bool:
    """Whether a file's first bytes are an HTML document."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def entries(stream: BinaryIO, *, filename: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each entry of a Takeout ``watch-history.html``, numbered from 1, as the record
    Takeout's JSON would hold, its time still as written (``time_text``)."""
    head = stream.read(_CHUNK)
    if not looks_like_html(head):
        raise MalformedExport(filename, None, "expected Takeout's watch-history.html")
    # Incremental: a chunk may end inside a multi-byte character.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    parser = _TakeoutParser()
    n = 0
    chunk = head
    while True:
        try:
            parser.feed(decoder.decode(chunk, final=not chunk))
        except UnicodeDecodeError:
            raise MalformedExport(filename, n + 1, "not UTF-8 text") from None
        if not chunk:
            parser.close()
        for record in parser.take():
            n += 1
            yield n, record
        if not chunk:
            return
        if parser.buffered() > MAX_RECORD_BYTES:
            raise MalformedExport(filename, n + 1, f"entry larger than {MAX_RECORD_BYTES} bytes")
        chunk = stream.read(_CHUNK)


def takeout_time(text: str) -> str:
    """Takeout's English date-time with its zone → ISO 8601 with the offset."""
    clean = " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())
    match = _US_TIME.fullmatch(clean) or _UK_TIME.fullmatch(clean)
    if match is None:
        raise RecordError("field 'time' is not an English Takeout date; "
                          "choose the JSON format in Takeout, or English as its language")
    fields = match.groupdict()
    month = _MONTHS.get(fields["month"][:3].lower())
    hour = int(fields["hour"])
    half = fields.get("half")
    if half is not None:
        if not 1 <= hour <= 12:
            raise RecordError("field 'time' has an hour out of range")
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    zone = _zone(fields["zone"])
    if month is None:
        raise RecordError("field 'time' has an unknown month")
    try:
        moment = datetime(int(fields["year"]), month, int(fields["day"]), hour,
                          int(fields["minute"]), int(fields["second"]), tzinfo=zone)
    except ValueError:
        raise RecordError("field 'time' is not a valid date") from None
    return moment.astimezone(UTC).isoformat()


def _zone(name: str) -> timezone:
    offset = _OFFSET.fullmatch(name)
    if offset is not None:
        minutes = int(offset["hours"]) * 60 + int(offset["minutes"] or 0)
        if minutes > 14 * 60:
            raise RecordError("field 'time' has an offset out of range")
        return timezone(timedelta(minutes=-minutes if offset["sign"] == "-" else minutes))
    if name.upper() in _ZONES_MINUTES:
        return timezone(timedelta(minutes=_ZONES_MINUTES[name.upper()]))
    raise RecordError("field 'time' has a time zone this importer does not know; "
                      "choose the JSON format in Takeout")


class _TakeoutParser(HTMLParser):
    """Collects each ``outer-cell`` block's header, body lines (split at ``<br>``) and
    caption, and turns a closed block into a record."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._done: list[dict[str, Any]] = []
        self._depth = 0          # open <div>s inside the current entry; 0: outside any
        self._cell: str | None = None   # "header", "body", "caption" or None
        self._cell_depth = 0
        self._seen_body = False
        self._header: list[str] = []
        self._lines: list[list[str]] = [[]]
        self._caption: list[str] = []
        self._size = 0

    def buffered(self) -> int:
        """Characters held for the entry being read plus markup not yet parsed."""
        return self._size + len(self.rawdata)

    def take(self) -> list[dict[str, Any]]:
        done, self._done = self._done, []
        return done

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            if self._cell == "body":
                self._lines.append([])
            elif self._cell == "caption":
                self._caption.append("\n")
            return
        if tag != "div":
            return
        classes = (dict(attrs).get("class") or "").split()
        if self._depth == 0:
            if "outer-cell" in classes:
                self._start_entry()
            return
        self._depth += 1
        if self._cell is not None:
            return
        if "header-cell" in classes:
            self._cell = "header"
        elif "content-cell" in classes and "mdl-typography--caption" in classes:
            self._cell = "caption"
        elif ("content-cell" in classes and "mdl-typography--body-1" in classes
              and not self._seen_body):
            self._cell, self._seen_body = "body", True
        if self._cell is not None:
            self._cell_depth = self._depth

    def handle_endtag(self, tag: str) -> None:
        if tag != "div" or self._depth == 0:
            return
        if self._cell is not None and self._depth == self._cell_depth:
            self._cell = None
        self._depth -= 1
        if self._depth == 0:
            self._done.append(self._record())

    def handle_data(self, data: str) -> None:
        if self._cell is None:
            return
        self._size += len(data)
        if self._cell == "header":
            self._header.append(data)
        elif self._cell == "body":
            self._lines[-1].append(data)
        else:
            self._caption.append(data)

    def _start_entry(self) -> None:
        self._depth = 1
        self._cell = None
        self._seen_body = False
        self._header, self._lines, self._caption = [], [[]], []
        self._size = 0

    def _record(self) -> dict[str, Any]:
        lines = [" ".join("".join(parts).replace("\xa0", " ").split()) for parts in self._lines]
        lines = [line for line in lines if line]
        record: dict[str, Any] = {"header": "".join(self._header).strip()}
        if lines:
            record["title"] = lines[0]
        if len(lines) > 1:
            record["time_text"] = lines[-1]
        if len(lines) > 2:
            record["subtitles"] = [{"name": lines[1]}]
        caption = "".join(self._caption)
        if "Details:" in caption:
            record["details"] = [{"name": "From Google Ads"}]
        return record
