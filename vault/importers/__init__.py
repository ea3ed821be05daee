"""Importers: one module per export format people already have.

Each importer turns a binary stream into :class:`~vault.identity.Event` and
:class:`~vault.identity.Fact` records, one at a time (a 1 GB export is never loaded whole),
keeping only the fields the derivations need. A malformed file raises
:class:`~vault.errors.MalformedExport` naming the file and the 1-based record; the store
imports a file in one transaction, so nothing from that file is committed.
Formats, field mapping and what is dropped: ``docs/importers.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from vault.errors import InputError
from vault.identity import Event, Fact
from vault.importers._read import Skipped
from vault.importers.generic import CsvImporter, JsonlImporter
from vault.importers.netflix import NetflixImporter
from vault.importers.profile import ProfileImporter
from vault.importers.spotify import SpotifyImporter
from vault.importers.spotify_extended import SpotifyExtendedImporter
from vault.importers.youtube import YouTubeImporter


class Importer(Protocol):
    name: str
    description: str

    def parse(
        self, stream: BinaryIO, *, filename: str, skipped: Skipped | None = None
    ) -> Iterator[Event | Fact]:
        """Yield records from ``stream``; raise MalformedExport on the first bad record.
        Records read but not kept are counted in ``skipped`` by reason."""
        ...


IMPORTERS: dict[str, Importer] = {
    importer.name: importer
    for importer in (
        SpotifyImporter(),
        SpotifyExtendedImporter(),
        YouTubeImporter(),
        NetflixImporter(),
        ProfileImporter(),
        JsonlImporter(),
        CsvImporter(),
    )
}

#: The bundled exports of the demo person, Ada, as (importer name, file name), in import order.
SAMPLE_EXPORTS: tuple[tuple[str, str], ...] = (
    ("profile", "profile.toml"),
    ("spotify", "StreamingHistory_music_0.json"),
    ("spotify-extended", "Streaming_History_Audio_2024.json"),
    ("youtube", "watch-history.json"),
    ("netflix", "ViewingActivity.csv"),
    ("jsonl", "purchases.jsonl"),
    ("csv", "moods.csv"),
)


def importer_for(kind: str) -> Importer:
    """The importer called ``kind``; InputError lists the known kinds."""
    try:
        return IMPORTERS[kind]
    except KeyError:
        known = ", ".join(IMPORTERS)
        raise InputError(
            f"unknown export kind {kind!r}; known kinds: {known}",
            hint="run `vault import --help` for what each kind reads",
        ) from None


def sample_exports() -> list[tuple[str, Path]]:
    """The bundled sample exports as (importer name, path), for the demo."""
    folder = Path(__file__).resolve().parent.parent / "samples"
    return [(kind, folder / name) for kind, name in SAMPLE_EXPORTS]


__all__ = [
    "IMPORTERS",
    "SAMPLE_EXPORTS",
    "Importer",
    "importer_for",
    "sample_exports",
]
