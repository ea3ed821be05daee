"""The vault's own commands: init, import, facts, forget, mood, stats, check, repair,
passphrase, rotate-key, export and restore.

Passphrases come from a hidden prompt, or from ``VAULT_PASSPHRASE`` (and
``VAULT_NEW_PASSPHRASE`` for `vault passphrase`) in scripts; they are never printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from vault import errors
from vault.cli import _format
from vault.cli._common import (
    HomeOption,
    JsonOption,
    YesOption,
    console,
    err_console,
    new_app,
    print_json,
    read_passphrase,
    settings_for,
)
from vault.cli._records import open_records
from vault.export_kinds import KINDS
from vault.identity import FACT_NAMES
from vault.scopes import MOODS

if TYPE_CHECKING:
    from vault.importers.exports import ImportReport
    from vault.records import ForgetPublic, ForgetTarget
    from vault.store import Vault

app = new_app()
facts_app = new_app("Declared facts: birth date, city, languages, colours, style, …")
app.add_typer(facts_app, name="facts")
forget_app = new_app(
    "Delete records for good: a source, what one file stored, or a fact; re-derives what "
    "companies receive and logs the deletion (counts only). Works while `vault serve` runs.")
app.add_typer(forget_app, name="forget")

# The defaults are written out in the help rather than read from vault.crypto, which loads
# the cryptography package: every `vault` command would pay for it (tests/cli/test_help.py
# checks that they match crypto.KDF_DEFAULT).
MemoryOption = Annotated[
    int | None,
    typer.Option("--kdf-memory-kib", help="Argon2id memory in KiB (default 65536, min 19456)."),
]
IterationsOption = Annotated[
    int | None, typer.Option("--kdf-iterations", help="Argon2id passes (default 3, min 2).")
]
LanesOption = Annotated[
    int | None, typer.Option("--kdf-lanes", help="Argon2id lanes (default 4, min 1).")
]


def _open(home: Path | None) -> Vault:
    # Imported when a command opens the vault: the store loads SQLAlchemy and eth-account.
    from vault.store import Vault

    return Vault.open(settings_for(home).home, read_passphrase())


@app.command("init")
def init(
    home: HomeOption = None,
    kdf_memory_kib: MemoryOption = None,
    kdf_iterations: IterationsOption = None,
    kdf_lanes: LanesOption = None,
) -> None:
    """Create a new vault: a passphrase (asked twice), a data key and your Ethereum key."""
    from vault import crypto
    from vault.store import Vault

    default = crypto.KDF_DEFAULT
    params = crypto.KdfParams(
        default.memory_kib if kdf_memory_kib is None else kdf_memory_kib,
        default.iterations if kdf_iterations is None else kdf_iterations,
        default.lanes if kdf_lanes is None else kdf_lanes,
    ).check()
    where = settings_for(home).home
    passphrase = read_passphrase(confirm=True, prompt="New passphrase")
    with Vault.create(where, passphrase, kdf=params) as vault:
        console.print(f"Created a vault in {where}")
        console.print(f"Owner address: {vault.owner_address}")
        address = vault.owner_address
    from vault.cli.devnet_commands import fund_new_owner

    funded = fund_new_owner(where, address)
    if funded is not None:
        console.print(f"The devnet's faucet sent it {_format.format_eth(funded)} for gas.")


_IMPORT_HELP = """Import an export as the service delivered it: one file, or its ZIP archive
(my_spotify_data.zip, a Google Takeout archive, Netflix's report), every supported file
inside. The kind is detected from the content; naming it (vault import KIND FILE) checks it
and, for an archive, imports only that kind. All of it or (on any error) nothing;
re-importing is safe. Works while `vault serve` runs.

\b
Kinds:
""" + "\n".join(f"  {name:<17}{description}" for name, description in KINDS.items())


@app.command("import", help=_IMPORT_HELP)
def import_file(
    arguments: Annotated[list[str], typer.Argument(
        metavar="[KIND] FILE", show_default=False,
        help="The export file or ZIP, after its kind if you name it.")],
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Netflix: import only this viewing profile.")] = None,
    all_profiles: Annotated[bool, typer.Option(
        "--all-profiles", help="Netflix: import every profile in the file.")] = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    if len(arguments) > 2:
        raise errors.InputError("give one FILE, after its KIND if you name it")
    kind, path = (arguments[0], Path(arguments[1])) if len(arguments) == 2 else (
        None, Path(arguments[0]))
    if kind is not None:
        from vault.importers import importer_for

        importer_for(kind)  # an unknown kind: the one message listing the known kinds
    if profile is not None and all_profiles:
        raise errors.InputError("choose --profile NAME or --all-profiles, not both")
    if profile is None and not all_profiles:
        profile = _ask_profile(path, kind)
    with open_records(home) as records:
        report = records.import_export(path, kind=kind, profile=profile,
                                       all_profiles=all_profiles)
    if json_output:
        print_json(report.model_dump())
        return
    _print_report(path, report)


def _ask_profile(path: Path, kind: str | None) -> str | None:
    """In a terminal, the Netflix profile chosen from those the export holds (None when
    there is one or none, or no terminal: the import then refuses several profiles)."""
    if not sys.stdin.isatty():
        return None
    from vault.importers.exports import opened_export

    with opened_export(path, kind=kind) as export:
        profiles = export.netflix_profiles()
    if len(profiles) < 2:
        return None
    console.print(f"{path.name} holds {len(profiles)} Netflix viewing profiles:")
    for number, name in enumerate(profiles, 1):
        console.print(f"  {number}. {name}", markup=False)
    choice: int = typer.prompt("Import which one (its number; 0 for all)", type=int)
    if choice == 0:
        return None
    if not 1 <= choice <= len(profiles):
        raise errors.InputError(f"choose a number from 0 to {len(profiles)}")
    return profiles[choice - 1]


def _print_report(path: Path, report: ImportReport) -> None:
    for read in report.files:
        console.print(f"Read {read.name} ({read.kind}).", markup=False, soft_wrap=True)
    console.print(f"{report.new_events} new events, {report.duplicate_events} already stored, "
                  f"{report.facts} facts.")
    if report.skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
        console.print(f"Skipped records: {reasons}.", markup=False)
    if report.ignored:
        console.print(f"Ignored {len(report.ignored)} other file(s) in {path.name}:",
                      markup=False)
        for ignored in report.ignored:
            console.print(f"  {ignored.name}: {ignored.reason}", markup=False, soft_wrap=True)
    coverage = report.coverage
    console.print(_format.coverage_line(coverage.model_dump()), markup=False)
    if report.quarantined:
        err_console.print(
            f"warning: the event counts did not open and were rebuilt; "
            f"{report.quarantined} damaged event(s) quarantined — see `vault check`",
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
    with open_records(home) as records:
        records.set_fact(name, parsed)
    console.print(f"Set {name}.")


@facts_app.command("list")
def facts_list(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Show the facts you declared (to you only: they are never released raw)."""
    with open_records(home) as records:
        facts = records.facts()
    if json_output:
        print_json(facts)
        return
    table = Table("fact", "value")
    for name, value in facts.items():
        table.add_row(name, json.dumps(value, ensure_ascii=False))
    console.print(table)


@forget_app.command("source")
def forget_source(
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="An export kind (spotify, youtube, netflix, …) or manual (moods); "
                             "`vault stats` lists the sources stored.")],
    yes: YesOption = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete every event imported from one source."""
    _forget("source", name, f"every event from {name}", yes=yes, home=home,
            json_output=json_output)


@forget_app.command("file")
def forget_file(
    path: Annotated[Path, typer.Argument(help="An export file or ZIP you imported.")],
    yes: YesOption = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete what importing one file stored (its events, and its facts you have not
    changed since); the file is read again to find them. Importing it again brings them
    back."""
    _forget("file", str(path.resolve()), f"what {path.name} stored", yes=yes, home=home,
            json_output=json_output)


@forget_app.command("fact")
def forget_fact(
    name: Annotated[str, typer.Argument(help="One of: " + ", ".join(FACT_NAMES))],
    yes: YesOption = False,
    home: HomeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete one declared fact."""
    _forget("fact", name, f"the fact {name}", yes=yes, home=home, json_output=json_output)


def _forget(
    target: ForgetTarget, name: str, what: str, *, yes: bool, home: Path | None,
    json_output: bool,
) -> None:
    """Count what would go, ask (unless ``yes``), then delete it."""
    from vault.cli._owner import confirm

    with open_records(home) as records:
        if not yes:
            plan = records.forget(target, name, dry_run=True)
            console.print(f"Forgetting {what} deletes {_deleted(plan)} for good. Backups made "
                          "before now still hold them.", markup=False)
            confirm("Forget them?", yes)
        done = records.forget(target, name, dry_run=False)
    if json_output:
        print_json(done.model_dump())
        return
    console.print(f"Forgot {_deleted(done)}. Companies' next releases no longer reflect "
                  "them; what was released before cannot be taken back.", markup=False)


def _deleted(summary: ForgetPublic) -> str:
    """"12 events (spotify 12) and the fact city", counts and names only."""
    parts = []
    if summary.events:
        per_source = ", ".join(f"{source} {n}" for source, n in summary.events_by_source.items())
        parts.append(f"{summary.events} event{'s' * (summary.events != 1)} ({per_source})")
    if summary.facts:
        parts.append(f"the fact{'s' * (len(summary.facts) > 1)} {', '.join(summary.facts)}")
    return " and ".join(parts)


@app.command("mood")
def mood(
    feeling: Annotated[str, typer.Argument(metavar="MOOD", help=" | ".join(MOODS))],
    at: Annotated[int | None, typer.Option("--at", help="Unix time (default: now).")] = None,
    home: HomeOption = None,
) -> None:
    """Record how you feel now."""
    with open_records(home) as records:
        records.record_mood(feeling, at=at)
    console.print(f"Recorded mood {feeling}.")


@app.command("stats")
def stats(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Counts of what the vault holds (no personal values)."""
    with open_records(home) as records:
        figures = records.stats()
    if json_output:
        print_json(figures)
        return
    console.print(_format.stats_table(figures, now=time.time()))


@app.command("check")
def check(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Open every sealed value, compare every row with the vault's keyed manifest (rolled
    back, deleted, quarantined) and verify the access log; name each problem (exit code 5
    if any)."""
    with open_records(home) as records:
        damaged = records.check()
    if json_output:
        print_json([d.model_dump() for d in damaged])
    else:
        for record in damaged:
            console.print(f"damaged: {record.table} {record.row} {record.column}: "
                          f"{record.problem}", markup=False)
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
    """Write the whole vault to one encrypted backup file (opens with your passphrase).
    Works while `vault serve` runs."""
    secret = read_passphrase()
    with open_records(home, passphrase=lambda: secret) as records:
        info = records.export_backup(path, secret)
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
