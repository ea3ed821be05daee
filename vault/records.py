"""The owner's own records: import, mood, facts, genres, stats, check, preview, backup and
forget.

One :class:`RecordsService` over an unlocked vault, used the same way by the daemon's owner
routes (``/v1/owner/records/…``, while `vault serve` holds the vault) and by the CLI in its
own process (when no daemon runs): the same code answers either way, so a command's output
and exit code never depend on whether a daemon is running.

``changed`` is called after every write: the daemon passes its DerivedCache's ``clear``,
so what companies receive reflects an import (or a forget) at once. A forget is recorded in
the access log: the daemon passes its own log (one writer per log file); the CLI's process
opens the vault's for that entry.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from vault import audit, errors, privacy, scopes, wire
from vault.importers.exports import ImportReport, import_export, opened_export

if TYPE_CHECKING:
    from vault.store import Vault

#: What `vault forget` deletes: every event of one source, what one file stored, one fact.
ForgetTarget = Literal["source", "file", "fact"]


class BackupPublic(BaseModel):
    path: str
    size: int


class DamagePublic(BaseModel):
    table: str
    row: str
    column: str
    problem: str


class GenresPublic(BaseModel):
    """The owner's own genres and how much of the listening and viewing got one."""

    taught: dict[str, dict[str, str]]
    coverage: dict[str, int]


class ForgetPublic(BaseModel):
    """What a forget deleted, or (``done`` false) would delete: counts and fact names."""

    target: ForgetTarget
    done: bool
    events: int
    events_by_source: dict[str, int]
    facts: list[str]


class RecordsService:
    """The owner's record operations on one unlocked vault."""

    def __init__(
        self,
        vault: Vault,
        *,
        changed: Callable[[], None] = lambda: None,
        log: audit.AuditLog | None = None,
    ) -> None:
        self._vault = vault
        self._changed = changed
        self._log = log

    def import_export(
        self, path: Path, *, kind: str | None, profile: str | None, all_profiles: bool
    ) -> ImportReport:
        """Import the file or ZIP at ``path`` in one transaction, and log it (sources and
        counts only)."""
        report = import_export(self._vault, path, kind=kind, profile=profile,
                               all_profiles=all_profiles)
        self._changed()
        self._record(audit.IMPORT, {
            "sources": sorted({file.kind for file in report.files}),
            "new_events": report.new_events, "duplicate_events": report.duplicate_events,
            "facts": report.facts,
        })
        return report

    def record_mood(self, mood: str, *, at: int | None) -> None:
        self._vault.record_mood(mood, at=at)
        self._changed()

    def facts(self) -> dict[str, Any]:
        return self._vault.facts()

    def set_fact(self, name: str, value: Any) -> None:
        self._vault.set_fact(name, value)
        self._changed()

    def stats(self) -> dict[str, Any]:
        return self._vault.stats().to_json()

    def check(self) -> list[DamagePublic]:
        return [DamagePublic(table=d.table, row=str(d.row), column=d.column, problem=d.problem)
                for d in self._vault.check()]

    def genres(self) -> GenresPublic:
        return GenresPublic(taught=self._vault.taught_genres(),
                            coverage=self._vault.genre_coverage())

    def teach_genre(self, kind: str, name: str, genre: str | None) -> GenresPublic:
        self._vault.teach_genre(kind, name, genre)
        self._changed()
        return self.genres()

    def preview(self, names: Iterable[str], *, released: bool, now: int) -> dict[str, Any]:
        """What a company would receive for ``names`` now (with the release noise when
        ``released``), each with its basis (counts only), and the genre coverage."""
        wanted = [scopes.scope(name) for name in dict.fromkeys(names)]  # UnknownScope first
        values = self._vault.derived([entry.name for entry in wanted])
        secret = self._vault.secret("noise") if released else b""
        rows: list[dict[str, Any]] = []
        for entry in wanted:
            value = values[entry.name]
            if released:
                value = privacy.release_value(entry, value, secret=secret)
            rows.append({
                "scope": entry.name, "bit": entry.bit, "sensitivity": entry.sensitivity,
                "noisy": entry.noisy, "transform": entry.transform, "value": value,
                "basis": self._vault.derivation_basis(entry.name),
            })
        return {"released": released, "at": now, "scopes": rows,
                "coverage": self._vault.genre_coverage()}

    def forget(self, target: ForgetTarget, name: str, *, dry_run: bool) -> ForgetPublic:
        """Delete every event of the source ``name``, what the file at path ``name`` stored
        (read again as an import would, every Netflix profile in it), or the fact ``name``;
        with ``dry_run``, only what would go. NotFound when nothing matches. A deletion is
        logged — its target kind and counts, never a value or the file's path."""
        if target == "source":
            summary = self._vault.forget_source(name, dry_run=dry_run)
        elif target == "fact":
            summary = self._vault.forget_fact(name, dry_run=dry_run)
        else:
            path = Path(name)
            with opened_export(path) as export:
                summary = self._vault.forget_records(
                    export.records(profile=None, skipped=Counter()), what=path.name,
                    dry_run=dry_run)
        if not dry_run:
            self._changed()
            self._record(audit.FORGET, {
                "target": target, "events": summary.events,
                "events_by_source": summary.events_by_source, "facts": list(summary.facts),
            })
        return ForgetPublic(target=target, done=not dry_run, events=summary.events,
                            events_by_source=summary.events_by_source,
                            facts=list(summary.facts))

    def _record(self, kind: str, detail: dict[str, Any]) -> None:
        """Append an owner action to the access log: the daemon's own log when it runs (one
        writer per log file), else the vault's log opened for this one entry."""
        entry = audit.NewEntry(at=round(time.time(), 3), kind=kind, outcome=audit.OK,
                               detail=detail)
        if self._log is not None:
            self._log.append_sync(entry)
            return
        log = audit.AuditLog.in_home(self._vault.home, key=self._vault.access_log_key())
        try:
            log.append_sync(entry)
        finally:
            log.close()

    def export_backup(self, path: Path, passphrase: str) -> BackupPublic:
        from vault import backup  # loads the store; only a backup needs it here

        info = backup.export_backup(self._vault, path, passphrase)
        return BackupPublic(path=str(info.path), size=info.size)


def error_public(error: errors.VaultError) -> wire.ErrorPublic:
    """A records route's error body: the wire's code and sentence plus the
    :mod:`vault.errors` class and its hint."""
    return wire.ErrorPublic(error=wire.code_of(error), detail=str(error),
                            vault_error=type(error).__name__, hint=error.hint)


def error_from_public(body: Any) -> errors.VaultError | None:
    """The error a records route answered, or None for any other body."""
    try:
        public = wire.ErrorPublic.model_validate(body)
    except ValueError:
        return None
    if public.vault_error is None:
        return None
    cls = getattr(errors, public.vault_error, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.VaultError)):
        return None
    # Built without the class's own __init__ (MalformedExport takes its parts, not a
    # sentence): the message and the hint are the ones the daemon's error carried.
    error = cls.__new__(cls)
    errors.VaultError.__init__(error, public.detail, hint=public.hint or "")
    return error
