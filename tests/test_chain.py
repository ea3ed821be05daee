"""vault.chain: the three backends, fail-closed errors, and the devnet's process handling."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault import chain as chains
from vault import errors, ledger
from vault.cli import app
from vault.config import Settings


def test_open_chain_embedded_deploys_a_verified_ledger(tmp_path: Path) -> None:
    chain = chains.open_chain(Settings(home=tmp_path, chain="embedded"))
    try:
        assert chain.rpc_url is None
        assert ledger.verify_ledger(chain.w3, chain.ledger_address, chain.chain_id)
    finally:
        chain.close()


def test_rpc_down_is_ledger_unavailable_naming_the_url(tmp_path: Path) -> None:
    """THREATS row 19: nothing listens at the URL → LedgerUnavailable with the URL."""
    url = f"http://127.0.0.1:{chains.free_port()}"
    settings = Settings(
        home=tmp_path, chain="rpc", rpc_url=url, chain_id=31337, ledger="0x" + "11" * 20
    )
    with pytest.raises(errors.LedgerUnavailable) as caught:
        chains.open_chain(settings)
    assert url in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung node)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_rpc_timeout_is_ledger_unavailable(tmp_path: Path, silent_server: str) -> None:
    """THREATS row 19: a node that does not answer in time → LedgerUnavailable, not a hang."""
    settings = Settings(
        home=tmp_path,
        chain="rpc",
        rpc_url=silent_server,
        chain_id=31337,
        ledger="0x" + "11" * 20,
        rpc_timeout_seconds=0.3,
    )
    with pytest.raises(errors.LedgerUnavailable) as caught:
        chains.open_chain(settings)
    assert silent_server in str(caught.value)


def test_rpc_needs_an_expected_chain_id(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, chain="rpc", rpc_url="http://127.0.0.1:1", ledger="0x" + "11" * 20
    )
    with pytest.raises(errors.ChainMismatch):
        chains.open_chain(settings)


def test_rpc_wrong_chain_id_refuses_to_start(
    tmp_path: Path, anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    """Wrong chain id → ChainMismatch before anything else is trusted."""
    settings = Settings(
        home=tmp_path,
        chain="rpc",
        rpc_url=anvil.rpc_url,
        chain_id=1,
        ledger=anvil_chain.ledger_address,
    )
    with pytest.raises(errors.ChainMismatch, match="is chain 31337, expected 1"):
        chains.open_chain(settings)


def test_rpc_without_code_at_the_address_is_not_deployed(
    tmp_path: Path, anvil: chains.AnvilNode
) -> None:
    settings = Settings(
        home=tmp_path,
        chain="rpc",
        rpc_url=anvil.rpc_url,
        chain_id=anvil.chain_id,
        ledger=anvil.addresses[7],
    )
    with pytest.raises(errors.LedgerNotDeployed, match="no contract"):
        chains.open_chain(settings)


def test_rpc_chain_opens_a_verified_ledger(
    tmp_path: Path, anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    settings = Settings(
        home=tmp_path,
        chain="rpc",
        rpc_url=anvil.rpc_url,
        chain_id=anvil.chain_id,
        ledger=anvil_chain.ledger_address.lower(),
    )
    chain = chains.open_chain(settings)
    try:
        assert chain.ledger_address == anvil_chain.ledger_address
        assert chain.rpc_url == anvil.rpc_url
    finally:
        chain.close()


def test_integration_on_anvil_lifecycle(
    anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    """The typed client against a real node: locally signed transactions, approveBySig,
    named reverts from eth_estimateGas."""
    owner_account, company_account = anvil.accounts[1], anvil.accounts[2]
    company = anvil_chain.client(company_account)
    request_id = company.request_access(
        str(owner_account.address), 0b11, 3_600, price=10**15, purpose="anvil"
    )
    deadline = int(anvil.w3.eth.get_block("latest")["timestamp"]) + 600  # the chain's clock
    signature = ledger.sign_approval(owner_account.key, company.domain, request_id, deadline)
    company.approve_by_sig(request_id, deadline, signature)
    assert company.is_active(request_id)
    with pytest.raises(errors.ContractReverted) as caught:
        company.approve_by_sig(request_id, deadline, signature)
    assert caught.value.name == "RequestNotPending"
    assert caught.value.args_by_name["status"] is ledger.Status.ACTIVE


# --------------------------------------------------------------------------- devnet


@pytest.mark.slow
def test_devnet_up_status_down_keeps_state(tmp_path: Path) -> None:
    devnet = chains.Devnet(tmp_path)
    port = chains.free_port()
    try:
        first = devnet.up(port=port)
        assert first.running and first.chain_id == chains.ANVIL_CHAIN_ID and first.ledger
        assert first.rpc_url == f"http://127.0.0.1:{port}"
        assert devnet.up() == first  # idempotent while running
        chain = chains.open_chain(Settings(home=tmp_path, chain="devnet"))
        try:
            sender = str(chains.anvil_dev_accounts(3)[2].address)
            owner = str(chains.anvil_dev_accounts(2)[1].address)
            chain_client = ledger.LedgerClient(chain.w3, chain.ledger_address, sender=sender)
            chain_client.request_access(owner, 1, 60, price=1)
        finally:
            chain.close()
        time.sleep(1.5)  # one --state-interval, so the request is on disk either way
        assert devnet.down()
        assert not devnet.status().running
        assert not chains.process_matches(first.pid or 0, str(devnet.state_file))
        second = devnet.up()
        assert second.ledger == first.ledger and second.pid != first.pid
        reopened = chains.open_chain(Settings(home=tmp_path, chain="devnet"))
        try:
            assert ledger.LedgerClient(reopened.w3, reopened.ledger_address).request_count() == 1
        finally:
            reopened.close()
    finally:
        devnet.down()


def test_devnet_down_never_stops_a_foreign_process(tmp_path: Path) -> None:
    """The pid file may be stale and name another process: down leaves it alone."""
    devnet = chains.Devnet(tmp_path)
    devnet.dir.mkdir(parents=True)
    devnet.pid_file.write_text(f"{os.getpid()}\n")
    assert devnet.down() is False
    assert not devnet.pid_file.exists()


def test_devnet_not_running_is_ledger_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.LedgerUnavailable, match="not running"):
        chains.open_chain(Settings(home=tmp_path, chain="devnet"))


def test_devnet_status_json_cli(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["devnet", "status", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert '"running": false' in result.output
    for key in ("rpc_url", "chain_id", "ledger"):
        assert f'"{key}"' in result.output
