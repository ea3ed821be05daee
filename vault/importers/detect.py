"""Which importer reads a file, from its first bytes (its name only breaks ties).

The content decides: a JSON array's first record names its service by its fields
(``endTime`` + ``artistName``: Spotify account data; ``ts`` + ``ms_played``: the extended
history; ``header``/``titleUrl`` + ``time``: YouTube), a CSV by its header, an HTML page by
Takeout's "Watched" entries. A file whose content says nothing (an empty array) is known by
the name the service gives it. :func:`detect_kind` never raises: ``None`` means "not a
supported export".
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import ijson

from vault.identity import FACT_NAMES
from vault.importers.youtube_html import looks_like_html

#: How much of a file detection reads.
HEAD_BYTES = 64 * 1024
ZIP = "zip"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_BOM = b"\xef\xbb\xbf"

#: The names the services give their files (the base name, matched whole).
NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"StreamingHistory(_music_)?\d*\.json", re.IGNORECASE), "spotify"),
    (re.compile(r"Streaming_History_Audio_.*\.json", re.IGNORECASE), "spotify-extended"),
    (re.compile(r"watch-history\.(json|html)", re.IGNORECASE), "youtube"),
    (re.compile(r"ViewingActivity\.csv", re.IGNORECASE), "netflix"),
    (re.compile(r".*\.zip", re.IGNORECASE), ZIP),
)
_TOML_KEY = re.compile(r"\s*([A-Za-z_]+)\s*=")


def kind_by_name(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    return next((kind for pattern, kind in NAMES if pattern.fullmatch(base)), None)


def detect_kind(head: bytes, name: str) -> str | None:
    """The importer for a file starting with ``head`` (up to :data:`HEAD_BYTES`), or
    :data:`ZIP` for an archive, or None."""
    if head.startswith(_ZIP_MAGIC):
        return ZIP
    text = head.removeprefix(_BOM).lstrip()
    if looks_like_html(text):
        watched = re.search(rb">\s*Watched(&nbsp;|\xc2\xa0| )", text)
        return "youtube" if watched else _named(name, ("youtube",))
    if text.startswith(b"["):
        return _json_array_kind(text) or _named(name, ("spotify", "spotify-extended", "youtube"))
    if text.startswith(b"{"):
        return _jsonl_kind(text)
    return _csv_kind(text) or _toml_kind(text) or _named(name, ("netflix",))


def _named(name: str, allowed: tuple[str, ...]) -> str | None:
    kind = kind_by_name(name)
    return kind if kind in allowed else None


def _json_array_kind(text: bytes) -> str | None:
    first: Any = None
    try:
        for item in ijson.items(io.BytesIO(text), "item"):
            first = item
            break
    except (ijson.JSONError, UnicodeDecodeError):
        return None
    if not isinstance(first, dict):
        return None
    fields = set(first)
    if {"endTime", "artistName"} <= fields:
        return "spotify"
    if {"ts", "ms_played"} <= fields:
        return "spotify-extended"
    if "time" in fields and ({"header", "titleUrl"} & fields):
        return "youtube"
    return None


def _jsonl_kind(text: bytes) -> str | None:
    line = text.split(b"\n", 1)[0]
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return "jsonl" if isinstance(record, dict) and {"kind", "occurred_at"} <= set(record) else None


def _csv_kind(text: bytes) -> str | None:
    line = text.split(b"\n", 1)[0]
    try:
        header = next(csv.reader([line.decode("utf-8").rstrip("\r")]), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    if {"Profile Name", "Start Time", "Title"} <= set(header):
        return "netflix"
    if {"kind", "occurred_at"} <= set(header):
        return "csv"
    return None


def _toml_kind(text: bytes) -> str | None:
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    keys = [match.group(1) for line in lines
            if (match := _TOML_KEY.match(line)) and not line.lstrip().startswith("#")]
    return "profile" if keys and all(key in FACT_NAMES for key in keys) else None
