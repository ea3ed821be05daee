"""Offline, the owner can read their own records (issue 14): `vault log`, `vault log verify`,
`vault terms show` and `vault rules show` need the vault alone, so they work with the chain
unreachable (the real `vault` command, VAULT_RPC_URL at a port nobody listens on); and the
daemon's health says ``behind`` when its ledger index is stale.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from vault import chain as chains
from vault import crypto
from vault.config import Settings
from vault.daemon.app import create_app
from vault.store import Vault
from vault.wire import HealthPublic

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))


def vault(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = subprocess.run([VAULT, *args], env={**os.environ, "COLUMNS": "80", **env},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def new_vault(home: Path) -> None:
    Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM).close()


def test_log_verify_and_terms_read_without_the_chain(
    anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path
) -> None:
    home = tmp_path / "owner"
    new_vault(home)
    online = {
        "VAULT_HOME": str(home), "VAULT_PASSPHRASE": PASS, "VAULT_CHAIN": "rpc",
        "VAULT_RPC_URL": anvil.rpc_url, "VAULT_CHAIN_ID": str(anvil.chain_id),
        "VAULT_LEDGER": anvil_chain.ledger_address,
    }
    vault(online, "terms", "set", "--note", "offline reading", "--max-duration", "7d")
    offline = {**online, "VAULT_RPC_URL": f"http://127.0.0.1:{chains.free_port()}"}

    unreachable = vault(offline, "requests", code=7)  # what needs the chain still says so
    assert "did not answer" in unreachable.stderr

    logged = json.loads(vault(offline, "log", "--json").stdout)
    assert [entry["kind"] for entry in logged] == ["terms"]
    table = vault(offline, "log").stdout
    assert "terms" in table and max(len(line) for line in table.splitlines()) <= 80
    verified = vault(offline, "log", "verify").stdout
    assert verified.strip() == "The access log verifies: 1 entries, chain intact."
    terms = json.loads(vault(offline, "terms", "show", "--json").stdout)
    assert terms["note"] == "offline reading" and terms["max_duration_seconds"] == 7 * 86_400
    assert "offline reading" in vault(offline, "terms", "show").stdout
    assert json.loads(vault(offline, "rules", "show", "--json").stdout)["rules"] == []


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_health_says_behind_when_the_index_is_stale(
    anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path
) -> None:
    home = tmp_path / "owner"
    new_vault(home)
    settings = Settings(home=home, chain="rpc", rpc_url=anvil.rpc_url, chain_id=anvil.chain_id,
                        ledger=anvil_chain.ledger_address, max_index_lag_seconds=30)
    clock = _Clock()
    with Vault.open(home, PASS) as opened:
        app = create_app(settings, vault=opened, chain=anvil_chain, clock=clock)
        daemon = app.state.daemon

        def health() -> HealthPublic:
            async def get() -> Any:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://127.0.0.1:{settings.port}",
                ) as http:
                    return (await http.get("/v1/health")).json()

            return HealthPublic.model_validate(asyncio.run(get()))

        try:
            daemon.sync_round()
            fresh = health()
            assert fresh.status == "ok" and fresh.index_lag_seconds < 30
            assert fresh.head_age_seconds < 600  # anvil stamps blocks with the wall clock
            clock.offset = 31  # no sync round for 31 s: releases would answer 503
            stale = health()
            assert stale.status == "behind" and stale.index_lag_seconds > 30
            daemon.sync_round()
            assert health().status == "ok"
        finally:
            daemon.stop()
