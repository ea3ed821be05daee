"""Money is visible (issue 14): `vault balance`, the devnet's faucet (`vault devnet fund`, and
at `vault init` while the devnet runs), "no ETH for gas" instead of blaming the node, and a
`vault withdraw` that asks about exactly the amount it pays. The real `vault` command as a
subprocess at 80 columns, against real anvil nodes (the session's, or a devnet it starts).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from vault import chain as chains
from vault import client, crypto
from vault.store import Vault

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
KDF = ("--kdf-memory-kib", str(crypto.KDF_MINIMUM.memory_kib),
       "--kdf-iterations", str(crypto.KDF_MINIMUM.iterations),
       "--kdf-lanes", str(crypto.KDF_MINIMUM.lanes))
ETH = 10**18
DAY = 86_400
NO_GAS_EXIT = 19


def vault(env: dict[str, str], *args: str, code: int = 0, input: str | None = None) -> Any:
    result = subprocess.run([VAULT, *args], env={**os.environ, "COLUMNS": "80", **env},
                            capture_output=True, text=True, timeout=120, input=input)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def wei_in(text: str, before: str) -> int:
    """The ETH amount printed right after ``before`` in ``text``, in wei."""
    match = re.search(re.escape(before) + r" ([0-9.]+) ETH", text)
    assert match is not None, (before, text)
    return int(Decimal(match.group(1)).scaleb(18))


@dataclass
class Owner:
    home: Path
    address: str
    env: dict[str, str]


def new_vault(home: Path) -> str:
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as created:
        return created.owner_address


@pytest.fixture
def unfunded(anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path) -> Owner:
    """An owner on the session's anvil whose address has never held ETH."""
    home = tmp_path / "owner"
    env = {
        "VAULT_HOME": str(home), "VAULT_PASSPHRASE": PASS, "VAULT_CHAIN": "rpc",
        "VAULT_RPC_URL": anvil.rpc_url, "VAULT_CHAIN_ID": str(anvil.chain_id),
        "VAULT_LEDGER": anvil_chain.ledger_address,
    }
    return Owner(home, new_vault(home), env)


@pytest.fixture
def devnet_home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A home whose devnet (`vault devnet up`, a real detached anvil) runs; stopped after."""
    home = tmp_path / "devnet-owner"
    env = {"VAULT_HOME": str(home), "VAULT_PASSPHRASE": PASS, "VAULT_CHAIN": "devnet"}
    try:
        vault(env, "devnet", "up", "--port", str(chains.free_port()))
        yield home, env
    finally:
        chains.Devnet(home).down()


# --------------------------------------------------------------------------- no ETH for gas


def test_a_transaction_without_eth_for_gas_says_so_and_names_the_address(
    unfunded: Owner,
) -> None:
    result = vault(unfunded.env, "terms", "publish", "--endpoint", "http://127.0.0.1:8787",
                   code=NO_GAS_EXIT)
    line = result.stderr
    assert line.count("\n") == 1 and "Traceback" not in line
    assert line.startswith(f"error: no ETH for gas: {unfunded.address} holds 0 ETH")
    assert f"send ETH to {unfunded.address}, then try again" in line
    assert "node" not in line  # the node is fine: nothing blames it


def test_balance_shows_an_empty_wallet_and_that_it_cannot_pay_gas(unfunded: Owner) -> None:
    shown = vault(unfunded.env, "balance").stdout
    assert f"address:             {unfunded.address}" in shown
    assert "wallet (pays gas):   0 ETH" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80
    found = json.loads(vault(unfunded.env, "balance", "--json").stdout)
    assert found["wallet_wei"] == 0 and found["owed_wei"] == found["claimable_wei"] == 0
    assert found["payout_gas"] == 0 and found["payout_net_wei"] == 0


# --------------------------------------------------------------------------- the faucet


@pytest.mark.slow
def test_devnet_fund_pays_gas_the_owner_lacked(devnet_home: tuple[Path, dict[str, str]],
                                               tmp_path: Path) -> None:
    """A vault made before the devnet ran has no ETH: publishing says to use the faucet;
    after `vault devnet fund` the same command works and the balance shows the ETH."""
    home, env = devnet_home
    address = new_vault(home)
    refused = vault(env, "terms", "publish", "--endpoint", "http://127.0.0.1:8787",
                    code=NO_GAS_EXIT)
    assert refused.stderr.startswith(f"error: no ETH for gas: {address} holds 0 ETH")
    assert "— get test ETH with `vault devnet fund`, then try again" in refused.stderr
    funded = vault(env, "devnet", "fund", "--amount", "0.5").stdout
    assert funded.strip() == f"Sent 0.5 ETH to {address}; it holds 0.5 ETH."
    vault(env, "terms", "publish", "--endpoint", "http://127.0.0.1:8787")
    found = json.loads(vault(env, "balance", "--json").stdout)
    assert found["address"] == address
    assert 0 < found["wallet_wei"] < ETH // 2  # half an ETH less the publish's gas
    assert json.loads(vault(env, "devnet", "fund", "--json").stdout)["sent_wei"] == ETH


@pytest.mark.slow
def test_init_while_the_devnet_runs_funds_the_new_owner(
    devnet_home: tuple[Path, dict[str, str]],
) -> None:
    _, env = devnet_home
    created = vault(env, "init", *KDF).stdout
    assert "The devnet's faucet sent it 1 ETH for gas." in created
    assert json.loads(vault(env, "balance", "--json").stdout)["wallet_wei"] == ETH


def test_the_faucet_is_refused_off_the_devnet(unfunded: Owner) -> None:
    result = vault(unfunded.env, "devnet", "fund", code=6)
    assert result.stderr.startswith(
        "error: the faucet exists only on the devnet; this vault uses VAULT_CHAIN=rpc"
    )
    assert result.stderr.count("\n") == 1


# --------------------------------------------------------------------------- withdraw


def test_withdraw_asks_about_exactly_the_amount_it_pays(
    unfunded: Owner, anvil: Any, anvil_chain: chains.RpcChain
) -> None:
    anvil.w3.eth.send_transaction(
        {"from": anvil.addresses[0], "to": unfunded.address, "value": ETH}
    )
    with client.Company(anvil.accounts[2], anvil_chain, anvil_chain.ledger_address,
                        poll_interval=0.02) as company:
        request = company.request_access(unfunded.address, ["preferences.music"], 30 * DAY,
                                         3 * 10**16, "playlists")
    vault(unfunded.env, "approve", str(request.id), "--yes", "--submit")
    anvil.rpc("evm_increaseTime", DAY)
    anvil.rpc("evm_mine")

    before = json.loads(vault(unfunded.env, "balance", "--json").stdout)
    assert before["claimable_wei"] >= 10**15 and before["owed_wei"] == 0
    assert before["payout_gas"] > 0
    assert before["payout_gas_wei"] == before["payout_gas"] * before["gas_price_wei"]
    assert before["payout_net_wei"] == before["claimable_wei"] - before["payout_gas_wei"]
    shown = vault(unfunded.env, "balance").stdout
    assert "payout gas:" in shown and "net of gas:" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80

    declined = vault(unfunded.env, "withdraw", input="n\n", code=1).stdout
    claimed = wei_in(declined, "Claimed")
    assert wei_in(declined, "Withdraw") == claimed >= before["claimable_wei"]
    assert "Nothing withdrawn" in declined

    paid = vault(unfunded.env, "withdraw", input="y\n").stdout
    asked, withdrew = wei_in(paid, "Withdraw"), wei_in(paid, "Withdrew")
    assert asked == withdrew >= claimed  # the first claim, and any seconds earned since
    assert json.loads(vault(unfunded.env, "balance", "--json").stdout)["owed_wei"] == 0
