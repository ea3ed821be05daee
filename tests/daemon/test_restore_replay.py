"""A restored backup keeps the daemon's replay and limit state, over real HTTP (THREATS
rows 35 and 10); a damaged event does not stop `vault serve` (THREATS row 3)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault import backup, privacy, scopes
from vault import chain as chains
from vault.daemon import runtime
from vault.store import DB_NAME, Vault

from .conftest import MUSIC, PASS, Clock, daemon_settings, fund, running
from .test_release import error_of

FORMAT1 = Path(__file__).parents[1] / "vectors" / "format1"
AGE = ["profile.age_range"]


def test_a_restored_vault_refuses_every_answered_nonce_and_keeps_every_count(
    embedded_chain: Any, owner_vault: Vault, clock: Clock, tmp_path: Path
) -> None:
    """THREATS row 35: backup → restore into a new home → serve. The nonce answered before
    the backup is 409; the grant's maxReleases, the company's daily count and the privacy
    budget it spent carry over, because the backup carries the access log the book is
    rebuilt from."""
    fund(embedded_chain, owner_vault.owner_address)
    limits = {"company_releases_per_day": 4,
              "privacy_budget": privacy.worst_case_epsilon(scopes.bitmap(MUSIC))}
    with running(daemon_settings(owner_vault, **limits), owner_vault, embedded_chain,
                 clock) as served:
        capped = served.grant(max_releases=2)
        other = served.grant(duration=60 * 86_400)
        answered = served.release_body(capped, MUSIC)  # spends the music answer's ε
        assert served.post("/v1/release", json=answered).status_code == 200
        assert served.release(other, AGE).status_code == 200
    backup.export_backup(owner_vault, tmp_path / "vault.backup", PASS)
    backup.restore_backup(tmp_path / "vault.backup", tmp_path / "restored", PASS)
    with (Vault.open(tmp_path / "restored", PASS) as restored,
          running(daemon_settings(restored, **limits), restored, embedded_chain,
                  clock) as again):
        again.sync()
        assert error_of(again.post("/v1/release", json=answered)) == (409, "replayed")
        assert again.release(capped, AGE).status_code == 200  # the second of two
        assert error_of(again.release(capped, AGE)) == (429, "releases_exhausted")
        assert again.release(other, AGE).status_code == 200  # the company's fourth today
        refused = again.release(other, AGE)
        assert error_of(refused) == (429, "budget_exhausted")
        assert "daily" in refused.json()["detail"]
        clock.offset += privacy.EPOCH_SECONDS  # next week: a new day
        again.sync()
        noisy = again.release(other, MUSIC)
        assert error_of(noisy) == (429, "budget_exhausted")
        assert "privacy budget" in noisy.json()["detail"]
        assert again.release(other, AGE).status_code == 200
        assert again.owner_get("/v1/owner/log/verify").json()["ok"] is True


def test_a_backup_without_the_log_refuses_requests_issued_before_the_restore(
    embedded_chain: Any, clock: Clock, tmp_path: Path
) -> None:
    """THREATS row 35: a format-1 backup (no access log) restores, and the daemon refuses
    every request issued before the restore — whatever it may have answered before."""
    home = tmp_path / "restored"
    backup.restore_backup(FORMAT1 / "backup.vault", home, PASS)
    with Vault.open(home, PASS) as restored:
        fund(embedded_chain, restored.owner_address)
        with running(daemon_settings(restored), restored, embedded_chain, clock) as served:
            grant_id = served.grant()
            before = served.release(grant_id, AGE, issued_at=int(time.time()) - 30)
            assert error_of(before) == (401, "stale_request")
            assert "restored" in before.json()["detail"]
            time.sleep(1)  # issued at or after the restore: answered
            assert served.release(grant_id, AGE).status_code == 200


def _flip_event(home: Path, event_id: int) -> None:
    db = sqlite3.connect(home / DB_NAME)
    (payload,) = db.execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0x01
    db.execute("UPDATE events SET payload = ? WHERE id = ?", (bytes(damaged), event_id))
    db.commit()
    db.close()


def test_a_damaged_event_does_not_stop_releases(
    embedded_chain: Any, owner_vault: Vault, clock: Clock
) -> None:
    """THREATS row 3: the daemon reads materialised values, never events."""
    _flip_event(owner_vault.home, 3)
    assert [(d.table, d.row) for d in owner_vault.check()] == [("events", "3")]
    fund(embedded_chain, owner_vault.owner_address)
    with running(daemon_settings(owner_vault), owner_vault, embedded_chain, clock) as served:
        assert served.release(served.grant(), MUSIC).status_code == 200


@pytest.mark.slow
def test_vault_serve_starts_with_a_damaged_event(owner_vault: Vault, tmp_path: Path) -> None:
    """THREATS row 3: the real `vault serve` unlocks, publishes and answers."""
    home = owner_vault.home
    owner_vault.close()
    _flip_event(home, 3)
    env = {**os.environ, "VAULT_PASSPHRASE": PASS, "VAULT_CHAIN": "embedded"}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "vault"), "serve", "--home", str(home),
             "--port", str(chains.free_port())],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr_file,
        )
    try:
        deadline = time.monotonic() + 60
        while (published := runtime.read(home)) is None:
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert httpx.get(published.url + "/v1/health", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
