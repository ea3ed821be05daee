"""The vault's own commands: init, import, facts, mood, stats, check, repair, passphrase,
rotate-key, export and restore.

Passphrases come from a hidden prompt, or from ``VAULT_PASSPHRASE`` (and
``VAULT_NEW_PASSPHRASE`` for `vault passphrase`) in scripts; they are never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from vault import crypto, errors
from vault.cli._common import (
    HomeOption,
    JsonOption,
    console,
    err_console,
    new_app,
    print_json,
    read_passphrase,
    settings_for,
)
from vault.identity import FACT_NAMES
from vault.scopes import MOODS

if TYPE_CHECKING:
    from vault.store import Vault

app = new_app()
facts_app = new_app("Declared facts: birth date, city, languages, colours, style, …")
app.add_typer(facts_app, name="facts")

MemoryOption = Annotated[
    int, typer.Option("--kdf-memory-kib", help="Argon2id memory in KiB (min 19456).")
]
IterationsOption = Annotated[
    int, typer.Option("--kdf-iterations", help="Argon2id passes (min 2).")
]
LanesOption = Annotated[int, typer.Option("--kdf-lanes", help="Argon2id lanes (min 1).")]


def _open(home: Path | None) -> Vault:
    # Imported when a command opens the vault: the store loads SQLAlchemy and eth-account.
    from vault.store import Vault

    return Vault.open(settings_for(home).home, read_passphrase())


@app.command("init")
def init(
    home: HomeOption = None,
    kdf_memory_kib: MemoryOption = crypto.KDF_DEFAULT.memory_kib,
    kdf_iterations: IterationsOption = crypto.KDF_DEFAULT.iterations,
    kdf_lanes: LanesOption = crypto.KDF_DEFAULT.lanes,
) -> None:
    """Create a new vault: a passphrase (asked twice), a data key and your Ethereum key."""
    from vault.store import Vault

    params = crypto.KdfParams(kdf_memory_kib, kdf_iterations, kdf_lanes).check()
    where = settings_for(home).home
    passphrase = read_passphrase(confirm=True, prompt="New passphrase")
    with Vault.create(where, passphrase, kdf=params) as vault:
        console.print(f"Created a vault in {where}")
        console.print(f"Owner address: {vault.owner_address}")


@app.command("import")
def import_file(
    kind: Annotated[str, typer.Argument(help="Export format, e.g. spotify, youtube, netflix.")],
    path: Annotated[Path, typer.Argument(help="The export file.")],
    home: HomeOption = None,
) -> None:
    """Import one export file; all of it or (on any error) nothing. Re-importing is safe."""
    import rich.progress

    from vault.importers import importer_for

    importer = importer_for(kind)
    if not path.is_file():
        raise errors.InputError(f"{path} is not a readable file")
    with (
        _open(home) as vault,
        rich.progress.open(path, "rb", description=f"Importing {path.name}",
                           console=err_console, transient=True) as stream,
    ):
        summary = vault.import_records(importer.parse(stream, filename=path.name))
    console.print(
        f"{path.name}: {summary.new_events} new events, "
        f"{summary.duplicate_events} already stored, {summary.facts} facts"
    )
    if summary.quarantined:
        err_console.print(
            f"warning: the event counts did not open and were rebuilt; "
            f"{len(summary.quarantined)} damaged event(s) quarantined — see `vault check`",
            markup=False)


def _parse_fact(name: str, text: str) -> Any:
    if name not in FACT_NAMES:
        raise errors.InputError(
            f"unknown fact {name!r}; known facts: {', '.join(sorted(FACT_NAMES))}"
        )
    try:
        return json.loads(text)
    except ValueError:
        if FACT_NAMES[name].startswith("list"):
            return [part.strip() for part in text.split(",") if part.strip()]
        return text


@facts_app.command("set")
def facts_set(
    name: Annotated[str, typer.Argument(help="One of: " + ", ".join(FACT_NAMES))],
    value: Annotated[str, typer.Argument(help="JSON, or plain text (comma-separated lists).")],
    home: HomeOption = None,
) -> None:
    """Declare a fact about yourself (stored sealed)."""
    parsed = _parse_fact(name, value)
    with _open(home) as vault:
        vault.set_fact(name, parsed)
    console.print(f"Set {name}.")


@facts_app.command("list")
def facts_list(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Show the facts you declared (to you only: they are never released raw)."""
    with _open(home) as vault:
        facts = vault.facts()
    if json_output:
        print_json(facts)
        return
    table = Table("fact", "value")
    for name, value in facts.items():
        table.add_row(name, json.dumps(value, ensure_ascii=False))
    console.print(table)


@app.command("mood")
def mood(
    feeling: Annotated[str, typer.Argument(metavar="MOOD", help=" | ".join(MOODS))],
    at: Annotated[int | None, typer.Option("--at", help="Unix time (default: now).")] = None,
    home: HomeOption = None,
) -> None:
    """Record how you feel now."""
    with _open(home) as vault:
        vault.record_mood(feeling, at=at)
    console.print(f"Recorded mood {feeling}.")


@app.command("stats")
def stats(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Counts of what the vault holds (no personal values)."""
    with _open(home) as vault:
        figures = vault.stats().to_json()
    if json_output:
        print_json(figures)
        return
    table = Table("", "", show_header=False)
    for key, value in figures.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


@app.command("check")
def check(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Open every sealed value, compare every row with the vault's keyed manifest (rolled
    back, deleted, quarantined) and verify the access log; name each problem (exit code 5
    if any)."""
    with _open(home) as vault:
        damaged = vault.check()
    if json_output:
        print_json([{"table": d.table, "row": d.row, "column": d.column, "problem": d.problem}
                    for d in damaged])
    else:
        for record in damaged:
            console.print(f"damaged: {record}", markup=False)
    if damaged:
        raise errors.IntegrityError(f"{len(damaged)} damaged record(s); the rest are intact")
    if not json_output:
        console.print("Every sealed value opens, nothing was rolled back or deleted, "
                      "and the access log verifies.")


@app.command("repair")
def repair(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Rebuild what the events determine (counts, summary, derived values, dedupe keys) and
    quarantine events that no longer open; all in one transaction. Exit code 5 if damage
    that only a backup can bring back remains."""
    from vault.store import restore_hint

    with _open(home) as vault:
        summary = vault.repair()
        hint = restore_hint(vault.home)
    if json_output:
        print_json({"rebuilt": list(summary.rebuilt), "quarantined": list(summary.quarantined),
                    "dedupe_keys_fixed": summary.dedupe_keys_fixed,
                    "still_damaged": [str(d) for d in summary.still_damaged]})
    else:
        console.print(f"Rebuilt {', '.join(summary.rebuilt)}; "
                      f"{summary.dedupe_keys_fixed} dedupe key(s) fixed.", markup=False)
        for event_id in summary.quarantined:
            console.print(f"quarantined: events {event_id} (it did not open)", markup=False)
        for record in summary.still_damaged:
            console.print(f"still damaged: {record}", markup=False)
    if summary.still_damaged:
        raise errors.IntegrityError(
            f"{len(summary.still_damaged)} record(s) cannot be rebuilt", hint=hint)


def _new_passphrase() -> str:
    from_env = os.environ.get("VAULT_NEW_PASSPHRASE")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise errors.UnlockError("no new passphrase: set VAULT_NEW_PASSPHRASE for scripts")
    value: str = typer.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
    return value


@app.command("passphrase")
def passphrase(home: HomeOption = None) -> None:
    """Change the passphrase (rewraps the data key only; your data is not re-encrypted)."""
    with _open(home) as vault:
        vault.change_passphrase(_new_passphrase())
    console.print("Passphrase changed.")


@app.command("rotate-key")
def rotate_key(home: HomeOption = None) -> None:
    """Re-encrypt every record under a new data key (resumes an interrupted rotation)."""
    import rich.progress

    with _open(home) as vault:
        total = vault.stats().events
        with rich.progress.Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("Re-encrypting", total=total or None)
            summary = vault.rotate_key(progress=lambda n: bar.advance(task, n))
    resumed = " (resumed)" if summary.resumed else ""
    console.print(f"Data key version {summary.key_version}: {summary.rows} records "
                  f"re-encrypted{resumed}.")


@app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="The backup file to create (never overwritten).")],
    home: HomeOption = None,
) -> None:
    """Write the whole vault to one encrypted backup file (opens with your passphrase)."""
    from vault import backup
    from vault.store import Vault

    secret = read_passphrase()
    with Vault.open(settings_for(home).home, secret) as vault:
        info = backup.export_backup(vault, path, secret)
    console.print(f"Backup written to {info.path} ({info.size} bytes).")


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `vault export`.")],
    home: HomeOption = None,
) -> None:
    """Restore a backup into an empty --home; verifies everything before writing."""
    from vault import backup

    where = settings_for(home).home
    info = backup.restore_backup(path, where, read_passphrase())
    console.print(f"Restored the vault into {where}.")
    if not info.carried_log:
        err_console.print(
            "warning: this backup predates backups that carry the access log: the log and "
            "replay protection start afresh, and every request issued before now is refused.",
            markup=False)
