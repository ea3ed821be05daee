"""An export as a person has it — one file or the service's ZIP — imported whole.

:func:`import_export` is what `vault import` runs, in the CLI's process or in the daemon's
(``POST /v1/owner/import``): it opens the file (a regular file, never a device or a pipe),
finds what to read (:func:`opened_export`: the kind detected from the content, or checked
against the kind the owner named; in a ZIP every supported file, the rest listed as
ignored), parses everything into the store in ONE transaction (all of it or, on any error,
nothing), and reports what happened: files read and ignored, new and already-stored
events, records skipped by reason, and how much of the listening and viewing got a genre.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, Protocol

from pydantic import BaseModel

from vault.errors import ExportKindMismatch, InputError, ProfileChoiceNeeded
from vault.identity import Event, Fact
from vault.importers import IMPORTERS, archive, importer_for
from vault.importers._read import Skipped
from vault.importers.detect import HEAD_BYTES, ZIP, detect_kind
from vault.importers.netflix import NetflixImporter

#: What each kind is, for messages: the file the service delivers.
DELIVERED_AS = {name: importer.description for name, importer in IMPORTERS.items()}
IGNORED_UNKNOWN = "not an export vault reads"
IGNORED_NESTED = "an archive inside the archive"
IGNORED_OTHER_KIND = "another kind than the one named"


class ImportedFile(BaseModel):
    name: str
    kind: str


class IgnoredFile(BaseModel):
    name: str
    reason: str


class GenreCoverage(BaseModel):
    """How much of everything imported so far fed a genre."""

    listens: int
    listens_with_genre: int
    views: int
    views_with_genre: int


class ImportReport(BaseModel):
    """What one `vault import` did (no personal value: names of files, counts, reasons)."""

    files: list[ImportedFile]
    ignored: list[IgnoredFile]
    new_events: int
    duplicate_events: int
    facts: int
    skipped: dict[str, int]
    quarantined: int
    coverage: GenreCoverage


class Sink(Protocol):
    """What an import needs of the vault (:class:`vault.store.Vault`)."""

    def import_records(self, records: Iterable[Event | Fact]) -> _Summary: ...
    def genre_coverage(self) -> dict[str, int]: ...


class _Summary(Protocol):
    @property
    def new_events(self) -> int: ...
    @property
    def duplicate_events(self) -> int: ...
    @property
    def facts(self) -> int: ...
    @property
    def quarantined(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class _Planned:
    name: str
    kind: str
    open: Callable[[], AbstractContextManager[BinaryIO]]


class Export:
    """An opened export: the files to read (:attr:`files`) and those ignored."""

    def __init__(self, planned: list[_Planned], ignored: list[IgnoredFile]) -> None:
        self._planned = planned
        self.ignored = ignored

    @property
    def files(self) -> list[ImportedFile]:
        return [ImportedFile(name=p.name, kind=p.kind) for p in self._planned]

    def netflix_profiles(self) -> list[str]:
        """The viewing profiles in the Netflix files, in order of first appearance."""
        found: dict[str, None] = {}
        for planned in self._planned:
            if planned.kind == "netflix":
                with planned.open() as stream:
                    found.update(dict.fromkeys(NetflixImporter.profiles(stream,
                                                                        filename=planned.name)))
        return list(found)

    def records(self, *, profile: str | None, skipped: Skipped) -> Iterator[Event | Fact]:
        """Every record of every file, in order; ``profile`` keeps one Netflix profile."""
        for planned in self._planned:
            importer = (NetflixImporter(profile=profile) if planned.kind == "netflix"
                        else importer_for(planned.kind))
            with planned.open() as stream:
                yield from importer.parse(stream, filename=planned.name, skipped=skipped)


@contextmanager
def opened_export(path: Path, *, kind: str | None = None) -> Iterator[Export]:
    """``path`` opened and planned: its kind detected (or ``kind`` checked against its
    content), and for a ZIP archive every member to read. ExportKindMismatch when the
    content is another kind than named, or no kind vault reads; UnsafeArchive for a
    hostile archive."""
    if kind is not None and kind != ZIP:
        importer_for(kind)  # an unknown kind is refused before the file is touched
    name = path.name
    with ExitStack() as stack:
        stream = stack.enter_context(_open_regular(path))
        head = stream.read(HEAD_BYTES)
        stream.seek(0)
        found = detect_kind(head, name)
        if found == ZIP:
            opened = stack.enter_context(archive.opened(stream, filename=name))
            yield _plan_archive(opened, kind=kind)
            return
        if found is None and kind is None:
            raise ExportKindMismatch(f"{name} is not an export vault reads")
        if kind is not None and found is not None and found != kind:
            raise ExportKindMismatch(
                f"{name} is a {found} export ({DELIVERED_AS[found]}), not {kind}")
        chosen = kind or found
        assert chosen is not None

        @contextmanager
        def reopen() -> Iterator[BinaryIO]:
            stream.seek(0)
            yield stream

        yield Export([_Planned(name, chosen, reopen)], [])


def _plan_archive(opened: archive.Archive, *, kind: str | None) -> Export:
    planned: list[_Planned] = []
    ignored: list[IgnoredFile] = []
    for info in opened.files:
        name = opened.member_name(info)
        with opened.open(info) as member:
            head = member.read(HEAD_BYTES)
        found = detect_kind(head, info.filename)
        if found == ZIP:
            ignored.append(IgnoredFile(name=name, reason=IGNORED_NESTED))
        elif found is None:
            ignored.append(IgnoredFile(name=name, reason=IGNORED_UNKNOWN))
        elif kind is not None and found != kind:
            ignored.append(IgnoredFile(name=name, reason=IGNORED_OTHER_KIND))
        else:
            planned.append(_Planned(name, found, partial(opened.open, info)))
    if not planned:
        wanted = f"{kind} export" if kind is not None else "export vault reads"
        raise ExportKindMismatch(f"{opened.filename} holds no {wanted}")
    return Export(planned, ignored)


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise InputError(f"{path} cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as stream:
        yield stream


def choose_profile(
    export: Export, *, profile: str | None, all_profiles: bool, filename: str
) -> str | None:
    """The Netflix profile to keep (None: every one). Several profiles and no choice is
    ProfileChoiceNeeded; a profile that is not in the file is InputError."""
    if all_profiles:
        return None
    profiles = export.netflix_profiles()
    if profile is not None:
        if profile not in profiles:
            raise InputError(f"{filename} has no Netflix profile by that name "
                             f"({len(profiles)} profile(s) in it)")
        return profile
    if len(profiles) > 1:
        raise ProfileChoiceNeeded(f"{filename} holds {len(profiles)} Netflix profiles")
    return None


def import_export(
    vault: Sink,
    path: Path,
    *,
    kind: str | None = None,
    profile: str | None = None,
    all_profiles: bool = False,
) -> ImportReport:
    """Import ``path`` (a file or a ZIP) into ``vault`` in one transaction; the report."""
    skipped: Skipped = Counter()
    with opened_export(path, kind=kind) as export:
        chosen = choose_profile(export, profile=profile, all_profiles=all_profiles,
                                filename=path.name)
        summary = vault.import_records(export.records(profile=chosen, skipped=skipped))
        files, ignored = export.files, export.ignored
    return ImportReport(
        files=files, ignored=ignored, new_events=summary.new_events,
        duplicate_events=summary.duplicate_events, facts=summary.facts,
        skipped=dict(skipped), quarantined=len(summary.quarantined),
        coverage=GenreCoverage(**vault.genre_coverage()),
    )
