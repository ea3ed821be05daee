"""A declared profile in TOML: top-level keys named after ``vault.identity.FACT_NAMES``.

::

    birth_date = 1990-04-12          # a TOML date, or "1990-04-12"
    city = "Lyon"
    country = "FR"                   # ISO 3166-1 alpha-2
    languages = ["fr", "en-GB"]      # BCP 47 tags
    favourite_colors = ["teal"]      # likewise style, diet, gift_wishes, dislikes
    household_size = 2

Every key must be a known fact name and every value of its documented type; otherwise
MalformedExport names the key (never the value). The file is small by nature and TOML
cannot be parsed incrementally, so it is read whole, up to 1 MiB.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, BinaryIO

from vault.errors import MalformedExport
from vault.export_kinds import KINDS
from vault.identity import FACT_NAMES, Fact
from vault.importers._read import MAX_RECORD_BYTES, RecordError, Skipped

_COUNTRY = re.compile(r"[A-Za-z]{2}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_TOML_WHERE = re.compile(r"\(at line (\d+), column \d+\)|\(at end of document\)")
_MAX_ITEMS = 100
_MAX_TEXT = 200


class ProfileImporter:
    name = "profile"
    description = KINDS["profile"]

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Fact]:
        """Every declared fact; a profile has nothing to skip (``skipped`` stays as is)."""
        data = stream.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise MalformedExport(filename, None, f"larger than {MAX_RECORD_BYTES} bytes")
        try:
            document = tomllib.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise MalformedExport(filename, None, "not UTF-8 text") from None
        except tomllib.TOMLDecodeError as error:
            # Keep only the position: the message may quote the offending text.
            where = _TOML_WHERE.search(str(error))
            problem = "not valid TOML" + (f" {where.group(0)}" if where else "")
            raise MalformedExport(filename, None, problem) from None
        facts = []
        for name, value in document.items():
            check = _CHECKS.get(name)
            if check is None:
                raise MalformedExport(
                    filename, None, f"unknown key {name!r}; known: {', '.join(FACT_NAMES)}"
                )
            try:
                facts.append(Fact(name, check(value)))
            except RecordError as error:
                raise MalformedExport(filename, None, f"key {name!r}: {error}") from None
        # Validate the whole file before yielding: a profile is one declaration.
        yield from facts


def _birth_date(value: object) -> str:
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise RecordError("must be a date, YYYY-MM-DD")
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise RecordError("must be a date, YYYY-MM-DD")
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise RecordError("is not a valid calendar date") from None
    if value.year < 1900:
        raise RecordError("is before 1900")
    return value.isoformat()


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError("must be a non-empty string")
    if len(value) > _MAX_TEXT:
        raise RecordError(f"must be at most {_MAX_TEXT} characters")
    return value.strip()


def _country(value: object) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise RecordError("must be a two-letter ISO 3166-1 country code")
    return value.upper()


def _words(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise RecordError(f"must be a list of at most {_MAX_ITEMS} strings")
    return [_text(item) for item in value]


def _languages(value: object) -> list[str]:
    tags = _words(value)
    if not all(_LANGUAGE.fullmatch(tag) for tag in tags):
        raise RecordError("must be a list of BCP 47 language tags, e.g. 'en' or 'fr-CA'")
    return tags


def _household_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50:
        raise RecordError("must be an integer from 1 to 50")
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "birth_date": _birth_date,
    "city": _text,
    "country": _country,
    "languages": _languages,
    "favourite_colors": _words,
    "style": _words,
    "diet": _words,
    "gift_wishes": _words,
    "dislikes": _words,
    "household_size": _household_size,
}
