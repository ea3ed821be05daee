"""How the record commands (import, mood, facts, genres, stats, check, preview, export,
forget) reach the vault: through the running daemon's owner routes when `vault serve` holds
it, else by unlocking it in this process. Both are :class:`vault.records.RecordsService`
underneath, so the output and the exit code do not depend on which one answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vault.cli._common import read_passphrase, settings_for

if TYPE_CHECKING:
    from vault.importers.exports import ImportReport
    from vault.records import (
        BackupPublic,
        DamagePublic,
        ForgetPublic,
        ForgetTarget,
        GenresPublic,
    )


class RecordsBackend(Protocol):
    """:class:`vault.records.RecordsService`'s operations."""

    def import_export(
        self, path: Path, *, kind: str | None, profile: str | None, all_profiles: bool
    ) -> ImportReport: ...
    def record_mood(self, mood: str, *, at: int | None) -> None: ...
    def facts(self) -> dict[str, Any]: ...
    def set_fact(self, name: str, value: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def check(self) -> list[DamagePublic]: ...
    def genres(self) -> GenresPublic: ...
    def teach_genre(self, kind: str, name: str, genre: str | None) -> GenresPublic: ...
    def preview(self, names: list[str], *, released: bool, now: int) -> dict[str, Any]: ...
    def forget(self, target: ForgetTarget, name: str, *, dry_run: bool) -> ForgetPublic: ...
    def export_backup(self, path: Path, passphrase: str) -> BackupPublic: ...


@contextmanager
def open_records(
    home: Path | None, *, passphrase: Callable[[], str] = read_passphrase
) -> Iterator[RecordsBackend]:
    """The daemon serving ``home`` if one runs (no passphrase asked), else the vault
    unlocked here with ``passphrase()``."""
    # Imported here: the daemon's discovery and the store are what `--help` must not load.
    from vault.cli.backend import running_daemon

    settings = settings_for(home)
    daemon = running_daemon(settings)
    if daemon is not None:
        try:
            yield daemon
        finally:
            daemon.close()
        return
    from vault.records import RecordsService
    from vault.store import Vault

    with Vault.open(Path(settings.home), passphrase()) as vault:
        yield RecordsService(vault)
