"""Shared chain fixtures.

* ``embedded_chain`` — a fresh py-evm chain (eth-tester) with the ledger deployed, per test
  (~30 ms). ``chain.accounts`` are ten funded, unlocked accounts (``chain.dev_keys`` their
  keys); ``chain.client(sender)`` is a :class:`vault.ledger.LedgerClient`;
  ``chain.time_travel(seconds)`` mines a block that much later; ``snapshot()/revert()``.
* ``anvil`` — one real anvil node for the whole session, on a free 127.0.0.1 port, stopped
  when the session ends. Tests that use it (directly or through ``anvil_chain``) are marked
  ``chain`` automatically, so ``-m "not chain"`` deselects them.
* ``anvil_chain`` — a freshly deployed, verified ledger on that node, per test, as a
  :class:`vault.chain.RpcChain`. Ledgers from earlier tests stay on the node but are never
  seen (each test gets a new address).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3

from vault import chain as chains
from vault import ledger

_ANVIL_FIXTURES = {"anvil", "anvil_chain"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _ANVIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.chain)


@pytest.fixture
def embedded_chain() -> Iterator[chains.EmbeddedChain]:
    """A fresh in-process chain with the ledger deployed (see the module docstring)."""
    chain = chains.EmbeddedChain()
    yield chain
    chain.close()


@dataclass
class AnvilNode:
    """The session's anvil: where it listens and its funded, unlocked dev accounts."""

    rpc_url: str
    port: int
    process: subprocess.Popen[bytes]
    w3: Web3
    accounts: tuple[LocalAccount, ...]
    chain_id: int = chains.ANVIL_CHAIN_ID

    def rpc(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call, e.g. ``rpc("evm_snapshot")`` or ``rpc("evm_mine")``."""
        return chains.rpc_call(self.rpc_url, method, list(params), timeout=10.0)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(str(a.address) for a in self.accounts)


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """A real anvil for the session (marked ``chain``)."""
    port = chains.free_port()
    process = chains.start_anvil(port=port)
    session = requests.Session()
    try:
        url = f"http://127.0.0.1:{port}"
        yield AnvilNode(
            rpc_url=url,
            port=port,
            process=process,
            w3=chains.http_web3(url, timeout=10.0, session=session),
            accounts=chains.anvil_dev_accounts(),
        )
    finally:
        session.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def anvil_chain(anvil: AnvilNode) -> Iterator[chains.RpcChain]:
    """A new, verified ledger on the session's anvil (marked ``chain``)."""
    address = ledger.deploy_ledger(anvil.w3, sender=anvil.addresses[0])
    chain = chains.RpcChain(
        anvil.rpc_url, chain_id=anvil.chain_id, ledger_address=address, timeout=10.0
    )
    yield chain
    chain.close()
