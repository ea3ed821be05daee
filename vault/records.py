"""The owner's own records: import, mood, facts, genres, stats, check, preview and backup.

One :class:`RecordsService` over an unlocked vault, used the same way by the daemon's owner
routes (``/v1/owner/records/…``, while `vault serve` holds the vault) and by the CLI in its
own process (when no daemon runs): the same code answers either way, so a command's output
and exit code never depend on whether a daemon is running.

``changed`` is called after every write: the daemon passes its DerivedCache's ``clear``,
so what companies receive reflects an import at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from vault import errors, privacy, scopes, wire
from vault.importers.exports import ImportReport, import_export

if TYPE_CHECKING:
    from vault.store import Vault


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


class RecordsService:
    """The owner's record operations on one unlocked vault."""

    def __init__(self, vault: Vault, *, changed: Callable[[], None] = lambda: None) -> None:
        self._vault = vault
        self._changed = changed

    def import_export(
        self, path: Path, *, kind: str | None, profile: str | None, all_profiles: bool
    ) -> ImportReport:
        report = import_export(self._vault, path, kind=kind, profile=profile,
                               all_profiles=all_profiles)
        self._changed()
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
