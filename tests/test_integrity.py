"""Tampering is detected and damage is contained (THREATS rows 2, 3, 35, 36).

Someone with the owner's files but not the passphrase edits ``vault.db`` and
``audit.sqlite`` with plain SQLite: a flipped bit, an older ciphertext put back, a deleted
secret, deleted events, a truncated access log with its head rewritten. Each is named by
`vault check` (exit 5). A damaged value stops only what needs it; `vault repair` rebuilds
what the events determine and quarantines events that no longer open.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault import audit, backup, crypto, errors, store
from vault.cli import app
from vault.identity import Event, EventKind, Fact

PASS = "correct horse battery staple"
FORMAT1 = Path(__file__).parent / "vectors" / "format1"


def plays(n: int, start: int = 1_700_000_000) -> list[Event]:
    return [Event(EventKind.PLAY, start + i * 60, "spotify",
                  {"artist": f"Artist {i % 5}", "track": f"Track {i}", "ms_played": 200_000})
            for i in range(n)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "vault"
    with store.Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        vault.import_records([*plays(20), Fact("city", "Lyon")])
    return home


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"VAULT_PASSPHRASE": PASS, "VAULT_HOME": None})


def vault_cli(runner: CliRunner, home: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == code, result.output
    assert PASS not in result.output
    return result.output


def check_json(runner: CliRunner, home: Path) -> list[tuple[str, str, str, str]]:
    """`vault check --json` as (table, row, column, problem), asserting exit code 5."""
    result = runner.invoke(app, ["check", "--json", "--home", str(home)])
    assert result.exit_code == 5, result.output
    return [(d["table"], d["row"], d["column"], d["problem"])
            for d in json.loads(result.stdout)]


def named(runner: CliRunner, home: Path) -> set[tuple[str, str]]:
    return {(table, row) for table, row, _, _ in check_json(runner, home)}


@pytest.fixture
def db(home: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(home / store.DB_NAME)
    yield conn
    conn.close()


def flip(db: sqlite3.Connection, sql: str, *args: object) -> None:
    """Flip one bit in the middle of the sealed value ``sql`` selects (as rowid, value)."""
    table = sql.split(" FROM ")[1].split()[0]
    column = sql.split("SELECT ")[1].split(",")[1].strip().split()[0]
    rowid, value = db.execute(sql, args).fetchone()
    damaged = bytearray(value)
    damaged[len(damaged) // 2] ^= 0x01
    db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (bytes(damaged), rowid))
    db.commit()


# -- tampering ---------------------------------------------------------------------------


def test_a_clean_vault_checks_clean(runner: CliRunner, home: Path) -> None:
    assert "nothing was rolled back" in vault_cli(runner, home, "check")


def test_flipped_bits_are_named(runner: CliRunner, home: Path, db: sqlite3.Connection) -> None:
    """THREATS row 3: a flipped bit in an event, a fact and a secret: each one named."""
    flip(db, "SELECT rowid, payload FROM events WHERE id = 4")
    flip(db, "SELECT rowid, value FROM facts WHERE name = 'city'")
    flip(db, "SELECT rowid, value FROM secrets WHERE name = 'secret:noise'")
    assert named(runner, home) == {("events", "4"), ("facts", "city"),
                                   ("secrets", "secret:noise")}


def test_an_older_ciphertext_put_back_is_named(home: Path, runner: CliRunner) -> None:
    """THREATS row 36: the previous ciphertext of a fact (and of a derived value), with its
    own row version, opens — but the manifest knows the vault wrote a newer version."""
    def row(table: str, key_col: str, key: str) -> tuple[bytes, int]:
        with sqlite3.connect(home / store.DB_NAME) as conn:
            found: tuple[bytes, int] = conn.execute(
                f"SELECT value, row_version FROM {table} WHERE {key_col} = ?", (key,)
            ).fetchone()
        return found

    old_city = row("facts", "name", "city")
    old_music = row("derived", "scope", "preferences.music")
    vault_cli(runner, home, "facts", "set", "city", "Paris")
    vault_cli(runner, home, "mood", "happy")
    conn = sqlite3.connect(home / store.DB_NAME)
    conn.execute("UPDATE facts SET value = ?, row_version = ? WHERE name = 'city'", old_city)
    conn.execute("UPDATE derived SET value = ?, row_version = ? "
                 "WHERE scope = 'preferences.music'", old_music)
    conn.commit()
    conn.close()
    with store.Vault.open(home, PASS) as vault:
        assert vault.facts() == {"city": "Lyon"}  # it opens: only the manifest can tell
    records = check_json(runner, home)
    assert {(t, r) for t, r, _, _ in records} == {("facts", "city"),
                                                  ("derived", "preferences.music")}
    assert all(store.ROLLED_BACK in problem for *_, problem in records)


def test_a_relabelled_row_version_does_not_open(home: Path, db: sqlite3.Connection,
                                                runner: CliRunner) -> None:
    """THREATS rows 5 and 36: the row version is bound in the associated data."""
    db.execute("UPDATE facts SET row_version = row_version + 1 WHERE name = 'city'")
    db.commit()
    assert check_json(runner, home) == [("facts", "city", "value", store.DAMAGED)]


def test_a_deleted_secret_is_named_and_never_made_again(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    """THREATS row 36: deleting ``secret:noise`` would silently change every company's noise
    if a new one were minted: it is reported, and what needs it stops with a message naming
    the backup to restore."""
    with store.Vault.open(home, PASS) as vault:
        made = backup.export_backup(vault, home.parent / "before.backup", PASS)
    db.execute("DELETE FROM secrets WHERE name = 'secret:noise'")
    db.commit()
    assert check_json(runner, home) == [("secrets", "secret:noise", "value", store.DELETED)]
    for _ in range(2):
        with store.Vault.open(home, PASS) as vault, pytest.raises(errors.CorruptFile) as raised:
            vault.secret("noise")
        assert str(made.path) in raised.value.hint
    output = vault_cli(runner, home, "preview", "preferences.music", "--released", code=5)
    assert "secret:noise" in output and str(made.path) in output
    assert "Traceback" not in output
    # What does not need the secret still works.
    assert json.loads(vault_cli(runner, home, "stats", "--json"))["events"] == 20
    vault_cli(runner, home, "preview", "preferences.music")


def test_a_deleted_required_secret_is_named_even_without_the_manifest(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    db.execute("DELETE FROM secrets WHERE name = 'state:summary'")
    db.execute("UPDATE integrity SET mac = zeroblob(32)")
    db.commit()
    records = check_json(runner, home)
    assert ("secrets", "state:summary", "value", store.DELETED) in records
    assert ("integrity", "manifest") in {(t, r) for t, r, _, _ in records}


def test_deleted_events_are_named(runner: CliRunner, home: Path,
                                  db: sqlite3.Connection) -> None:
    """THREATS row 36: the keyed running digest of event ids notices a deleted event, in the
    middle and at the end alike."""
    db.execute("DELETE FROM events WHERE id IN (5, 20)")
    db.commit()
    assert check_json(runner, home) == [("events", "5", "row", store.DELETED),
                                        ("events", "20", "row", store.DELETED)]


def test_an_edited_manifest_is_named(runner: CliRunner, home: Path,
                                     db: sqlite3.Connection) -> None:
    """THREATS row 36: the manifest is plain but MACed: "fixing" it to match a deleted
    event is itself detected."""
    (raw,) = db.execute("SELECT manifest FROM integrity").fetchone()
    manifest = json.loads(raw)
    manifest["events"] -= 1
    manifest["last_event"] -= 1
    db.execute("DELETE FROM events WHERE id = 20")
    db.execute("UPDATE integrity SET manifest = ?", (json.dumps(manifest).encode(),))
    db.commit()
    assert ("integrity", "manifest") in named(runner, home)
    with store.Vault.open(home, PASS) as vault, pytest.raises(errors.CorruptFile,
                                                              match="nothing was written"):
        vault.record_mood("calm")  # writing over it would hide what was done


def test_a_truncated_log_with_a_fixed_head_is_named(runner: CliRunner, home: Path) -> None:
    """THREATS row 36: the access log's chain and head are keyed from the vault's secret:
    deleting the last entries and rewriting the head to the last one kept is found by
    `vault check` (and the log's own verify) whenever the vault is unlocked."""
    with store.Vault.open(home, PASS) as vault:
        log = audit.AuditLog.in_home(home, key=vault.access_log_key())
        for i in range(5):
            log.append_sync(audit.NewEntry(
                at=1_700_000_000.0 + i, kind=audit.RELEASE, outcome=audit.RELEASED, grant_id=1,
                company="0x" + "c0" * 20, detail={"nonce": f"0x{i:064x}", "issued_at": i}))
        log.close()
    vault_cli(runner, home, "check")
    conn = sqlite3.connect(home / audit.FILENAME)
    (kept,) = conn.execute("SELECT entry_hash FROM entries WHERE seq = 3").fetchone()
    conn.execute("DELETE FROM entries WHERE seq > 3")
    conn.execute("UPDATE head SET seq = 3, entry_hash = ?", (kept,))
    conn.commit()
    conn.close()
    assert named(runner, home) == {("access log", "4")}
    verified = runner.invoke(app, ["log", "verify", "--home", str(home)],
                             env={"VAULT_CHAIN": "embedded"})
    assert verified.exit_code == 5, verified.output
    assert "does not verify from entry 4" in verified.output
    assert "Traceback" not in verified.output


# -- damage contained --------------------------------------------------------------------


def test_a_damaged_event_stops_nothing_that_does_not_need_it(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    """THREATS row 3: stats, preview and import keep working with a damaged event; repair
    quarantines it and rebuilds the counts without it; check keeps reporting the loss."""
    flip(db, "SELECT rowid, payload FROM events WHERE id = 7")
    assert json.loads(vault_cli(runner, home, "stats", "--json"))["events"] == 20
    preview = json.loads(vault_cli(runner, home, "preview", "preferences.music", "--json"))
    assert preview["scopes"][0]["basis"]["events"]["play"] == 20
    assert "Recorded mood" in vault_cli(runner, home, "mood", "calm")  # an import
    repaired = json.loads(vault_cli(runner, home, "repair", "--json"))
    assert repaired["quarantined"] == [7] and repaired["still_damaged"] == []
    stats = json.loads(vault_cli(runner, home, "stats", "--json"))
    assert (stats["events"], stats["quarantined_events"]) == (20, 1)  # 19 plays + 1 mood
    assert stats["events_by_kind"] == {"mood": 1, "play": 19}
    assert check_json(runner, home) == [("events", "7", "payload", store.QUARANTINED)]


def test_damaged_counts_are_rebuilt_by_repair_and_by_an_import(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    """The aggregates and the summary are functions of the events: stats names them as
    unreadable instead of failing, and the next import (or `vault repair`) rebuilds them."""
    with store.Vault.open(home, PASS) as vault:
        before = vault.stats()
    flip(db, "SELECT rowid, value FROM secrets WHERE name = 'state:aggregates'")
    flip(db, "SELECT rowid, value FROM secrets WHERE name = 'state:summary'")
    stats = json.loads(vault_cli(runner, home, "stats", "--json"))
    assert stats["unreadable"] == ["state:aggregates", "state:summary"]
    assert stats["events"] == 20
    output = vault_cli(runner, home, "preview", "preferences.music", code=5)
    assert "vault repair" in output
    with store.Vault.open(home, PASS) as vault:
        assert vault.import_records(plays(21)).new_events == 1  # rebuilt, then one added
        after = vault.stats()
        assert after.events_by_kind == {"play": 21} and after.unreadable == []
        assert (after.first_event_at, after.events_by_source) == (
            before.first_event_at, {"spotify": 21})
        assert vault.check() == []


def test_repair_rebuilds_a_damaged_derived_value_which_reads_fresh_meanwhile(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    with store.Vault.open(home, PASS) as vault:
        music = vault.derived(["preferences.music"])
    flip(db, "SELECT rowid, value FROM derived WHERE scope = 'preferences.music'")
    with store.Vault.open(home, PASS) as vault:
        assert vault.derived(["preferences.music"]) == music
    assert named(runner, home) == {("derived", "preferences.music")}
    assert "Rebuilt" in vault_cli(runner, home, "repair")
    vault_cli(runner, home, "check")


def test_a_damaged_owner_key_stops_only_signing_and_names_the_backup(
    runner: CliRunner, home: Path, db: sqlite3.Connection
) -> None:
    with store.Vault.open(home, PASS) as vault:
        address = vault.owner_address
        made = backup.export_backup(vault, home.parent / "latest.backup", PASS)
    flip(db, "SELECT rowid, value FROM secrets WHERE name = 'owner_key'")
    with store.Vault.open(home, PASS) as vault:
        assert vault.owner_address == address  # from the manifest, for display
        with pytest.raises(errors.CorruptFile, match="owner_key") as raised:
            vault.owner_account()
        assert str(made.path) in raised.value.hint
    assert json.loads(vault_cli(runner, home, "stats", "--json"))["owner_address"] == address
    output = vault_cli(runner, home, "repair", code=5)
    assert "owner_key" in output and str(made.path) in output


# -- upgrades ----------------------------------------------------------------------------


def _format1_home(tmp_path: Path) -> Path:
    home = tmp_path / "old"
    home.mkdir(mode=0o700)
    for name in ("keyfile.json", store.DB_NAME, audit.FILENAME):
        shutil.copyfile(FORMAT1 / name, home / name)
        (home / name).chmod(0o600)
    return home


def test_a_vault_from_before_row_versions_is_upgraded_on_open(tmp_path: Path) -> None:
    """A format-1 vault (tests/vectors/format1, made by the code before this change) opens:
    its rows are re-sealed with versions, its noise secret kept (not re-minted), its log
    re-chained under the key — and from then on it checks clean."""
    expected = json.loads((FORMAT1 / "expected.json").read_text())
    home = _format1_home(tmp_path)
    for _ in range(2):
        with store.Vault.open(home, PASS) as vault:
            assert vault.owner_address == expected["owner_address"]
            assert vault.secret("noise").hex() == expected["noise"]
            assert vault.facts() == expected["facts"]
            assert vault.stats().events == expected["events"]
            assert vault.stats().schema_version == store.SCHEMA_VERSION
            assert vault.check() == []
            log = audit.AuditLog.in_home(home, key=vault.access_log_key())
            assert log.verify() == audit.Verification(True, expected["log_entries"], None)
            log.close()


def test_a_format1_backup_restores_with_a_replay_floor(tmp_path: Path,
                                                       runner: CliRunner) -> None:
    """THREATS row 35: a backup without the access log still restores; the new log starts
    with a restore entry whose floor refuses every request issued before the restore, and
    the CLI warns that replay protection starts afresh."""
    target = tmp_path / "restored"
    result = runner.invoke(app, ["restore", str(FORMAT1 / "backup.vault"),
                                 "--home", str(target)])
    assert result.exit_code == 0, result.output
    assert "replay protection start afresh" in result.output
    with store.Vault.open(target, PASS) as vault:
        assert vault.check() == []
        log = audit.AuditLog.in_home(target, key=vault.access_log_key())
        [entry] = log.entries()
        assert entry.kind == audit.RESTORE
        assert log.replay_floor() == entry.detail["replay_floor"] > 1_700_000_200
        log.close()


def test_a_whole_backup_carries_the_log_and_sets_no_floor(home: Path, tmp_path: Path) -> None:
    """THREATS row 35: the log (the release book's source) comes back entry for entry."""
    with store.Vault.open(home, PASS) as vault:
        log = audit.AuditLog.in_home(home, key=vault.access_log_key())
        log.append_sync(audit.NewEntry(at=1.0, kind=audit.RELEASE, outcome=audit.RELEASED,
                                       company="0x" + "c0" * 20, detail={"nonce": "0x01"}))
        log.close()
        backup.export_backup(vault, tmp_path / "whole.backup", PASS)
    info = backup.restore_backup(tmp_path / "whole.backup", tmp_path / "restored", PASS)
    assert info.carried_log and info.replay_floor is None
    with store.Vault.open(tmp_path / "restored", PASS) as vault:
        log = audit.AuditLog.in_home(tmp_path / "restored", key=vault.access_log_key())
        assert [e.kind for e in log.entries()] == [audit.RELEASE, audit.RESTORE]
        assert log.replay_floor() == 0.0 and log.verify().ok
        log.close()


def test_a_backup_with_a_tampered_log_is_refused(home: Path, tmp_path: Path) -> None:
    """THREATS row 2: restore verifies the carried log before it writes anything."""
    with store.Vault.open(home, PASS) as vault:
        log = audit.AuditLog.in_home(home, key=vault.access_log_key())
        log.append_sync(audit.NewEntry(at=1.0, kind=audit.RELEASE, outcome=audit.RELEASED))
        log.close()
        conn = sqlite3.connect(home / audit.FILENAME)
        conn.execute("UPDATE entries SET outcome = 'refused'")
        conn.commit()
        conn.close()
        backup.export_backup(vault, tmp_path / "bad.backup", PASS)
    with pytest.raises(errors.MalformedBackup, match="access log"):
        backup.restore_backup(tmp_path / "bad.backup", tmp_path / "restored", PASS)
    assert not (tmp_path / "restored" / "keyfile.json").exists()
