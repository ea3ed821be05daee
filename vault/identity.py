"""The person's identity in plaintext form, as importers produce it and derivations read it.

Two kinds of record: a **fact** is something the person declared (birth date, city, …),
keyed by name; an **event** is a timestamped observation (a play, a view, a purchase, a
mood). These are the only shapes that cross from ``importers`` into ``store`` and from
``store`` into ``derive``. They never leave the vault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Declared facts the catalog knows how to derive from, with the JSON type of their value.
FACT_NAMES: dict[str, str] = {
    "birth_date": "ISO date string, YYYY-MM-DD",
    "city": "string",
    "country": "ISO 3166-1 alpha-2 code",
    "languages": "list of BCP 47 language tags",
    "favourite_colors": "list of colour names",
    "style": "list of style words",
    "diet": "list of diet words",
    "gift_wishes": "list of gift ideas",
    "dislikes": "list of things not to suggest",
    "household_size": "integer",
}


class EventKind(StrEnum):
    PLAY = "play"          # a song or podcast listened to
    VIEW = "view"          # a video, film or episode watched
    PURCHASE = "purchase"  # something bought
    MOOD = "mood"          # a mood the person recorded


@dataclass(frozen=True, slots=True)
class Event:
    """One observation. ``attrs`` holds kind-specific fields, e.g. for a play:
    ``{"artist": ..., "track": ..., "ms_played": ..., "genre": ...}``."""

    kind: EventKind
    occurred_at: int  # unix seconds, UTC
    source: str       # importer name, e.g. "spotify", "youtube", "netflix", "manual"
    attrs: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """Stable bytes identifying the record. The store keys re-imports on a keyed MAC of
        these (never a plain hash, which would let anyone test a guess against the file)."""
        return json.dumps(
            [self.kind.value, self.occurred_at, self.source, self.attrs],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    value: Any
