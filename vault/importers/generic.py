"""Generic events, for anything without an importer of its own: JSON lines or CSV.

Both carry the same flat fields per record: ``kind`` (``play``, ``view``, ``purchase``,
``mood``), ``occurred_at`` (ISO 8601, UTC when no offset is given, or unix seconds) and the
kind's attributes (:data:`FIELDS`). A field that is not an attribute of the record's kind
is refused, so a typo never silently drops data. In CSV an empty cell is an absent field,
and numbers are written as text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from vault.currencies import is_currency
from vault.export_kinds import KINDS
from vault.identity import Event, EventKind
from vault.importers._read import (
    RecordError,
    Skipped,
    converted,
    csv_rows,
    iso_time,
    jsonl,
    number,
    unix_time,
)

#: The moods a person can record.
MOODS = ("happy", "calm", "energetic", "tired", "sad", "stressed", "excited", "bored")
_MAX_TEXT = 1000


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"field {key!r} must be a non-empty string")
    if len(value) > _MAX_TEXT:
        raise RecordError(f"field {key!r} must be at most {_MAX_TEXT} characters")
    return value


def _count(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"field {key!r} must be an integer")
    if value < 0:
        raise RecordError(f"field {key!r} must not be negative")
    return value


def _currency(value: object, key: str) -> str:
    if not isinstance(value, str) or not is_currency(value):
        raise RecordError(f"field {key!r} must be an ISO 4217 code such as 'EUR'")
    return value


def _mood(value: object, key: str) -> str:
    if value not in MOODS:
        raise RecordError(f"field {key!r} must be one of {', '.join(MOODS)}")
    return str(value)


_Check = Callable[[object, str], Any]

#: Per kind: attribute name → (required, check). Mirrors STORE_API.md's attrs conventions.
FIELDS: dict[EventKind, dict[str, tuple[bool, _Check]]] = {
    EventKind.PLAY: {
        "artist": (True, _text),
        "track": (True, _text),
        "ms_played": (True, _count),
        "album": (False, _text),
        "genre": (False, _text),
    },
    EventKind.VIEW: {
        "title": (True, _text),
        "platform": (True, _text),
        "channel": (False, _text),
        "seconds": (False, _count),
        "series": (False, _text),
        "genre": (False, _text),
    },
    EventKind.PURCHASE: {
        "item": (True, _text),
        "category": (True, _text),
        "price": (True, number),
        "currency": (True, _currency),
    },
    EventKind.MOOD: {"mood": (True, _mood)},
}
_NUMERIC = {"ms_played", "seconds", "price"}
_KINDS = ", ".join(kind.value for kind in EventKind)


def event_from(record: Mapping[str, Any], source: str) -> Event:
    """Validate one flat record (JSON types already) into an Event."""
    kind_name = record.get("kind")
    try:
        if not isinstance(kind_name, str):
            raise ValueError(kind_name)
        kind = EventKind(kind_name)
    except ValueError:
        raise RecordError(f"field 'kind' must be one of {_KINDS}") from None
    when = record.get("occurred_at")
    if when is None:
        raise RecordError("missing field 'occurred_at'")
    if isinstance(when, str):
        occurred_at = iso_time(when, "occurred_at")
    else:
        occurred_at = unix_time(when, "occurred_at")
    fields = FIELDS[kind]
    extra = sorted(set(record) - set(fields) - {"kind", "occurred_at"})
    if extra:
        raise RecordError(f"field(s) {', '.join(map(repr, extra))} are not attributes of a {kind}")
    attrs: dict[str, Any] = {}
    for key, (required, check) in fields.items():
        value = record.get(key)
        if value is None:
            if required:
                raise RecordError(f"missing field {key!r}")
            continue
        attrs[key] = check(value, key)
    return Event(kind, occurred_at, source, attrs)


class JsonlImporter:
    name = "jsonl"
    description = KINDS["jsonl"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        records = jsonl(stream, filename=filename)
        return converted(records, lambda record: event_from(record, self.name),
                         filename=filename, skipped=skipped)


class CsvImporter:
    name = "csv"
    description = KINDS["csv"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event]:
        rows = csv_rows(stream, filename=filename, required=("kind", "occurred_at"))
        return converted(rows, lambda row: event_from(_typed(row), self.name),
                         filename=filename, skipped=skipped)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text: drop empty ones, turn numeric fields into numbers."""
    record: dict[str, Any] = {}
    for key, cell in row.items():
        if cell == "":
            continue
        if key in _NUMERIC or (key == "occurred_at" and cell.isascii() and cell.isdigit()):
            record[key] = _parse_number(cell, key)
        else:
            record[key] = cell
    return record


def _parse_number(cell: str, key: str) -> int | float:
    try:
        return int(cell)
    except ValueError:
        pass
    if key != "price":
        raise RecordError(f"field {key!r} must be an integer")
    try:
        return float(cell)
    except ValueError:
        raise RecordError(f"field {key!r} must be a number") from None
