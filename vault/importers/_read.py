"""Streaming readers and field checks shared by the importers.

Every reader takes a binary stream and yields ``(record_no, record)`` one record at a time,
so a 1 GB export is never held in memory, and refuses any single record larger than
:data:`MAX_RECORD_BYTES`. Every problem becomes :class:`~vault.errors.MalformedExport`
naming the file and the 1-based record number. No message quotes a value from the file:
exports are personal data, and error messages end up in terminals and logs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

import ijson

from vault.errors import MalformedExport
from vault.identity import Event

R = TypeVar("R")

#: The largest single record (JSON object, CSV line, JSONL line) an importer accepts.
MAX_RECORD_BYTES = 1 << 20
_CHUNK = 64 * 1024
#: 9999-12-31T23:59:59Z; also keeps datetime arithmetic in range.
_MAX_UNIX = 253_402_300_799
_BOM = b"\xef\xbb\xbf"
#: Deepest JSON nesting accepted in a JSONL record. The json module's C scanner recurses on
#: the C stack, and py-evm raises the interpreter's recursion limit to 100,000 at import: a
#: line of 100,000 "[" would then overflow the stack instead of raising RecursionError.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


class RecordError(Exception):
    """A problem inside one record; the caller adds the file name and record number."""


#: Counts of records an importer read but did not keep, by reason ("podcast episode").
Skipped = Counter[str]


def converted(
    numbered: Iterable[tuple[int, R]],
    convert: Callable[[R], Event | str],
    *,
    filename: str,
    skipped: Skipped | None = None,
) -> Iterator[Event]:
    """Each numbered record turned into an event by ``convert``, which returns a reason
    instead of an event for a record it skips (counted in ``skipped``); a
    :class:`RecordError` becomes a MalformedExport naming the file and the record."""
    for n, record in numbered:
        try:
            event = convert(record)
        except RecordError as error:
            raise MalformedExport(filename, n, str(error)) from None
        if isinstance(event, str):
            if skipped is not None:
                skipped[event] += 1
        else:
            yield event


class _Replay(io.RawIOBase):
    """``head`` (already read from ``rest``) followed by the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def peek(stream: BinaryIO, size: int) -> tuple[bytes, BinaryIO]:
    """The first ``size`` bytes of ``stream``, and a stream that reads them again."""
    head = stream.read(size)
    return head, io.BufferedReader(_Replay(head, stream))


# --- JSON array ----------------------------------------------------------------------------


class _BoundedReader:
    """The file object ijson reads from: replays the bytes already peeked, and refuses to
    read on once the record being parsed has grown past the cap (ijson would otherwise
    buffer a multi-gigabyte string whole)."""

    def __init__(self, stream: BinaryIO, prefix: bytes, *, filename: str, cap: int) -> None:
        self._stream = stream
        self._prefix = prefix
        self._filename = filename
        self._cap = cap
        self.total = 0
        self.mark = 0
        self.record_no = 1

    def read(self, size: int = -1) -> bytes:
        if self.total - self.mark > self._cap:
            raise MalformedExport(
                self._filename, self.record_no, f"record larger than {self._cap} bytes"
            )
        if size < 0:
            size = _CHUNK
        if self._prefix:
            data, self._prefix = self._prefix[:size], self._prefix[size:]
        else:
            data = self._stream.read(size)
        self.total += len(data)
        return data


def json_array(
    stream: BinaryIO, *, filename: str, cap: int = MAX_RECORD_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield each object of a top-level JSON array, streaming."""
    head = stream.read(_CHUNK).removeprefix(_BOM).lstrip()
    skipped = 0
    while not head:
        more = stream.read(_CHUNK)
        if not more:
            raise MalformedExport(filename, None, "empty file: expected a JSON array of records")
        skipped += len(more)
        if skipped > cap:
            raise MalformedExport(filename, None, "no JSON array in the first megabyte")
        head = more.lstrip()
    if not head.startswith(b"["):
        raise MalformedExport(filename, None, "expected a JSON array of records")
    reader = _BoundedReader(stream, head, filename=filename, cap=cap)
    n = 0
    try:
        for item in ijson.items(reader, "item", use_float=True):
            n += 1
            reader.mark = reader.total
            reader.record_no = n + 1
            if not isinstance(item, dict):
                raise MalformedExport(filename, n, "record is not a JSON object")
            yield n, item
    except (ijson.JSONError, UnicodeDecodeError):
        # ijson's message quotes the surrounding bytes of the file: never pass it on.
        raise MalformedExport(filename, n + 1, "not valid JSON (or not UTF-8)") from None


# --- JSON lines ----------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(name)


def _nested_too_deep(line: bytes) -> bool:
    """Whether a JSON text nests brackets deeper than MAX_JSON_DEPTH, strings ignored. Cheap
    for ordinary lines: the exact scan runs only when the line holds more brackets than that."""
    if line.count(b"[") + line.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", line):
        if byte in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


def jsonl(
    stream: BinaryIO, *, filename: str, cap: int = MAX_RECORD_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield each JSON object of a JSON-lines file; the record number is the line number.
    Blank lines are skipped (and still counted)."""
    n = 0
    while line := stream.readline(cap + 1):
        n += 1
        if len(line) > cap:
            raise MalformedExport(filename, n, f"line longer than {cap} bytes")
        if n == 1:
            line = line.removeprefix(_BOM)
        if not line.strip():
            continue
        if _nested_too_deep(line):
            raise MalformedExport(filename, n, f"nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise MalformedExport(filename, n, "not valid JSON (or not UTF-8)") from None
        if not isinstance(obj, dict):
            raise MalformedExport(filename, n, "line is not a JSON object")
        yield n, obj


# --- CSV -----------------------------------------------------------------------------------


class _LineTooLong(Exception):
    """A CSV line longer than the record cap (turned into MalformedExport by the caller)."""


def _text_lines(stream: BinaryIO, cap: int) -> Iterator[str]:
    """Lines decoded one at a time, so a decoding error points at its own record and a line
    without an end is never read past the cap."""
    first = True
    while line := stream.readline(cap + 1):
        if len(line) > cap:
            raise _LineTooLong
        if first:
            line, first = line.removeprefix(_BOM), False
        yield line.decode("utf-8")


def csv_rows(
    stream: BinaryIO,
    *,
    filename: str,
    required: Sequence[str],
    cap: int = MAX_RECORD_BYTES,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield each data row of a UTF-8 CSV file as ``{column: cell}``.

    The header must name every column in ``required`` (others are allowed and ignored by
    callers); it is record 0, data rows count from 1. Blank lines are skipped (and still
    counted).
    """
    n = 0
    try:
        reader = csv.reader(_text_lines(stream, cap), strict=True)
        header = next(reader, None)
        if header is None:
            raise MalformedExport(filename, None, "empty file: expected a CSV header")
        missing = [c for c in required if c not in header]
        if missing:
            raise MalformedExport(
                filename, None, f"header lacks column(s) {', '.join(map(repr, missing))}"
            )
        if len(set(header)) != len(header):
            raise MalformedExport(filename, None, "header names a column twice")
        for row in reader:
            n += 1
            if not row:
                continue
            if len(row) != len(header):
                raise MalformedExport(
                    filename, n, f"expected {len(header)} columns, found {len(row)}"
                )
            yield n, dict(zip(header, row, strict=True))
    except _LineTooLong:
        raise MalformedExport(filename, n + 1, f"line longer than {cap} bytes") from None
    except UnicodeDecodeError:
        raise MalformedExport(filename, n + 1, "not UTF-8 text") from None
    except csv.Error:
        # csv's messages do not quote cells, but say nothing useful either.
        problem = "not valid CSV (bad quoting or a huge field)"
        raise MalformedExport(filename, n + 1, problem) from None


# --- field checks --------------------------------------------------------------------------


def text(record: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    """A string field. Missing or null is allowed only when not ``required``."""
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return None
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be a string")
    return value


def integer(record: Mapping[str, Any], key: str, *, required: bool = True) -> int | None:
    """A non-negative integer field (JSON booleans are not integers)."""
    value = record.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"field {key!r} must be an integer")
    if value < 0:
        raise RecordError(f"field {key!r} must not be negative")
    return value


def number(value: object, key: str) -> float:
    """A finite, non-negative JSON number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"field {key!r} must be a number")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise RecordError(f"field {key!r} must be a finite, non-negative number")
    return result


def iso_time(value: object, key: str) -> int:
    """ISO 8601 date-time → unix seconds UTC. A time without an offset is UTC (every
    export this package reads writes UTC)."""
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"field {key!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        seconds = int(moment.timestamp())
    except (OverflowError, ValueError, OSError):
        raise RecordError(f"field {key!r} is out of range") from None
    return unix_time(seconds, key)


def unix_time(value: object, key: str) -> int:
    """Unix seconds (an integer, or a float that is floored) within 1970..9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"field {key!r} must be unix seconds")
    if not math.isfinite(value) or not 0 <= value <= _MAX_UNIX:
        raise RecordError(f"field {key!r} is out of range (1970..9999)")
    return math.floor(value)


def hms(value: str, key: str) -> int:
    """``H:MM:SS`` → seconds."""
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise RecordError(f"field {key!r} is not a duration H:MM:SS")
    hours, minutes, seconds = (int(p) for p in parts)
    if minutes > 59 or seconds > 59:
        raise RecordError(f"field {key!r} is not a duration H:MM:SS")
    return hours * 3600 + minutes * 60 + seconds
