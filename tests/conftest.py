"""Shared chain fixtures.

* ``embedded_chain`` — a fresh py-evm chain (eth-tester) with the ledger deployed, per test
  (~30 ms). ``chain.accounts`` are ten funded, unlocked accounts (``chain.dev_keys`` their
  keys); ``chain.client(sender)`` is a :class:`vault.ledger.LedgerClient`;
  ``chain.time_travel(seconds)`` mines a block that much later; ``snapshot()/revert()``.
* ``anvil`` — one real anvil node (:class:`vault.chain.AnvilNode`) for the whole session, on
  a free 127.0.0.1 port, stopped when the session ends. ``anvil.accounts`` are funded,
  unlocked LocalAccounts; ``anvil.rpc("evm_snapshot")`` reaches anvil's dev methods. Tests
  that use it (directly or through ``anvil_chain``) are marked ``chain`` automatically, so
  ``-m "not chain"`` deselects them.
* ``anvil_chain`` — a freshly deployed, verified ledger on that node, per test, as a
  :class:`vault.chain.RpcChain`. Earlier tests' ledgers stay on the node at other addresses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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


@pytest.fixture(scope="session")
def anvil() -> Iterator[chains.AnvilNode]:
    """A real anvil for the session (marked ``chain``)."""
    with chains.AnvilNode() as node:
        yield node


@pytest.fixture
def anvil_chain(anvil: chains.AnvilNode) -> Iterator[chains.RpcChain]:
    """A new, verified ledger on the session's anvil (marked ``chain``)."""
    address = ledger.deploy_ledger(anvil.w3, sender=anvil.addresses[0])
    chain = chains.RpcChain(
        anvil.rpc_url, chain_id=anvil.chain_id, ledger_address=address, timeout=10.0
    )
    yield chain
    chain.close()
