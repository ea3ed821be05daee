"""kill -9 of the real `vault` CLI at named points (THREATS row 7), repair included.

The CLI runs in a subprocess with ``VAULT_TEST_CRASH_AFTER=<point>[:<n>]``: at that point
(``vault._files.crash_point``) the process sends itself SIGKILL — no cleanup, no atexit, no
flush, exactly like a power cut after the steps before it. Afterwards the vault must open
with one passphrase (the old or the new, never neither) and every committed record must open.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from vault import crypto, errors
from vault.identity import Event, EventKind
from vault.store import DB_NAME, QUARANTINED, Vault

pytestmark = pytest.mark.slow

PASS = "correct horse battery staple"
NEW = "a brand new passphrase"
VAULT = str(Path(sys.executable).with_name("vault"))


def _cli(home: Path, *args: str, crash: str | None = None, passphrase: str = PASS,
         new: str = NEW) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VAULT_HOME": str(home), "VAULT_PASSPHRASE": passphrase,
           "VAULT_NEW_PASSPHRASE": new}
    env.pop("VAULT_TEST_CRASH_AFTER", None)
    if crash:
        env["VAULT_TEST_CRASH_AFTER"] = crash
    return subprocess.run([VAULT, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _killed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == -signal.SIGKILL, result.stderr


def _moods(n: int, start: int = 1_700_000_000) -> list[Event]:
    return [Event(EventKind.MOOD, start + i, "manual", {"mood": "calm"}) for i in range(n)]


def _vault(home: Path, events: int) -> None:
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        vault.import_records(_moods(events))


def _assert_intact(home: Path, passphrase: str, events: int) -> None:
    with Vault.open(home, passphrase) as vault:
        assert vault.check() == []
        assert vault.stats().events == events


def _jsonl(path: Path, n: int) -> Path:
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"kind": "mood", "occurred_at": 1_600_000_000 + i,
                                  "mood": "happy"}) + "\n")
    return path


@pytest.mark.parametrize("point", ["import-batch:1", "import-batch:2", "import-before-commit"])
def test_kill_during_import_keeps_every_committed_record(tmp_path: Path, point: str) -> None:
    """THREATS row 7: kill -9 mid-import → the import is absent, the rest intact, and the
    same import then succeeds."""
    home = tmp_path / "vault"
    _vault(home, 10)
    export = _jsonl(tmp_path / "moods.jsonl", 4500)
    _killed(_cli(home, "import", "jsonl", str(export), crash=point))
    _assert_intact(home, PASS, 10)
    assert _cli(home, "import", "jsonl", str(export)).returncode == 0
    _assert_intact(home, PASS, 4510)


@pytest.mark.parametrize("point", ["init-database", "init-keyfile"])
def test_kill_during_init_leaves_no_half_vault(tmp_path: Path, point: str) -> None:
    """THREATS row 7: an interrupted init leaves no vault; init then succeeds."""
    home = tmp_path / "vault"
    cheap = ["--kdf-memory-kib", "19456", "--kdf-iterations", "2", "--kdf-lanes", "1"]
    _killed(_cli(home, "init", *cheap, crash=point))
    with pytest.raises(errors.VaultNotFound):
        Vault.open(home, PASS)
    assert _cli(home, "init", *cheap).returncode == 0
    _assert_intact(home, PASS, 0)


def test_kill_during_passphrase_change_leaves_one_working_passphrase(tmp_path: Path) -> None:
    """THREATS row 7: either the old or the new passphrase works, never neither."""
    home = tmp_path / "vault"
    _vault(home, 20)
    _killed(_cli(home, "passphrase", crash="passphrase-keyfile"))
    _assert_intact(home, PASS, 20)
    with pytest.raises(errors.WrongPassphrase):
        Vault.open(home, NEW)
    assert _cli(home, "passphrase").returncode == 0
    _assert_intact(home, NEW, 20)


@pytest.mark.parametrize(
    "point", ["rotate-keyfile", "rotate-batch:1", "rotate-batch:3", "rotate-finish"]
)
def test_kill_during_rotate_key_is_resumable(tmp_path: Path, point: str) -> None:
    """THREATS row 7: every record opens after a kill at any rotation step, and running
    rotate-key again finishes the rotation."""
    home = tmp_path / "vault"
    _vault(home, 3500)
    _killed(_cli(home, "rotate-key", crash=point))
    _assert_intact(home, PASS, 3500)
    result = _cli(home, "rotate-key")
    assert result.returncode == 0, result.stderr
    _assert_intact(home, PASS, 3500)
    with Vault.open(home, PASS) as vault:
        assert vault.stats().key_versions == [2]
        assert vault.import_records(_moods(3501)).new_events == 1


@pytest.mark.parametrize("point", ["restore-unpacked", "restore-database"])
def test_kill_during_restore_leaves_no_vault_or_the_whole_one(
    tmp_path: Path, point: str
) -> None:
    """THREATS row 7: a killed restore leaves no vault; restoring again yields all of it."""
    home = tmp_path / "vault"
    _vault(home, 50)
    backup = tmp_path / "vault.backup"
    assert _cli(home, "export", str(backup)).returncode == 0
    target = tmp_path / "restored"
    _killed(_cli(target, "restore", str(backup), crash=point))
    with pytest.raises(errors.VaultNotFound):
        Vault.open(target, PASS)
    result = _cli(target, "restore", str(backup))
    assert result.returncode == 0, result.stderr
    _assert_intact(target, PASS, 50)


def test_kill_during_export_leaves_no_backup_and_the_vault_intact(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    _vault(home, 5)
    backup = tmp_path / "vault.backup"
    _killed(_cli(home, "export", str(backup), crash="export-written"))
    assert not backup.exists()
    _assert_intact(home, PASS, 5)
    assert _cli(home, "export", str(backup)).returncode == 0


def _damage(home: Path, event_id: int) -> None:
    """Flip a bit in one event and in the sealed aggregates: repair has work to do."""
    db = sqlite3.connect(home / DB_NAME)
    for sql in ("SELECT rowid, payload FROM events WHERE id = ?",
                "SELECT rowid, value FROM secrets WHERE name = 'state:aggregates' AND ? > 0"):
        rowid, value = db.execute(sql, (event_id,)).fetchone()
        damaged = bytearray(value)
        damaged[len(damaged) // 2] ^= 0x01
        table, column = ("events", "payload") if "events" in sql else ("secrets", "value")
        db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (bytes(damaged), rowid))
    db.commit()
    db.close()


@pytest.mark.parametrize("point", ["repair-batch:1", "repair-batch:2", "repair-before-commit"])
def test_kill_during_repair_loses_nothing(tmp_path: Path, point: str) -> None:
    """THREATS rows 3 and 7: repair is one transaction. Killed anywhere, every event is still
    there (the damaged one not yet quarantined) and check names the same damage; repair then
    finishes: the damaged event quarantined, the counts rebuilt from the rest."""
    home = tmp_path / "vault"
    _vault(home, 3000)
    _damage(home, 2500)
    with Vault.open(home, PASS) as vault:
        before = sorted((d.table, d.row) for d in vault.check())
    assert before == [("events", "2500"), ("secrets", "state:aggregates")]
    _killed(_cli(home, "repair", crash=point))
    with Vault.open(home, PASS) as vault:
        assert sorted((d.table, d.row) for d in vault.check()) == before
        assert vault.stats().events == 3000
    result = _cli(home, "repair", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quarantined"] == [2500]
    with Vault.open(home, PASS) as vault:
        stats = vault.stats()
        assert (stats.events, stats.quarantined_events) == (2999, 1)
        assert stats.events_by_kind == {"mood": 2999}
        assert [(d.table, d.row, d.problem) for d in vault.check()] == [
            ("events", "2500", QUARANTINED)]
