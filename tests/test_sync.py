"""vault.sync: the ledger index follows events, resumes, waits for confirmations, undoes
reorgs, and says how stale it is."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from vault import chain as chains
from vault import errors, ledger
from vault.chain import EmbeddedChain
from vault.ledger import Status
from vault.sync import LedgerIndex, LedgerSync, deployment_block

CATALOG = b"\x42" * 32


def _index(
    tmp_path: Path, chain: chains.Chain, name: str = "index.sqlite", *, owner: str | None = None
) -> LedgerIndex:
    """The index of ``owner``'s requests; by default the owner ``_request`` asks."""
    return LedgerIndex(
        tmp_path / name, chain_id=chain.chain_id, ledger_address=chain.ledger_address,
        owner=owner or chain.accounts[1],  # type: ignore[attr-defined]
    )


def _request(chain: EmbeddedChain, purpose: str = "music taste", *, price: int = 10**15) -> int:
    return chain.client(chain.accounts[2]).request_access(
        chain.accounts[1],
        0b101,
        3_600,
        price=price,
        max_releases=3,
        catalog_hash=CATALOG,
        purpose=purpose,
    )


def test_index_holds_every_event_field(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    request_id = _request(chain, "0123 keeps its leading zero")
    index = _index(tmp_path, chain)
    report = LedgerSync(chain.w3, index).sync_once()
    assert report.events == 1 and report.reorg_from is None
    grant = index.grant(request_id)
    assert grant is not None
    assert (grant.owner, grant.company) == (chain.accounts[1], chain.accounts[2])
    assert (grant.scopes, grant.price, grant.duration, grant.max_releases) == (
        0b101,
        10**15,
        3_600,
        3,
    )
    assert grant.catalog_hash == CATALOG
    assert grant.purpose == "0123 keeps its leading zero"
    assert grant.status is Status.PENDING and grant.starts_at == 0
    assert index.grant(request_id + 1) is None
    index.close()


def test_index_follows_every_transition(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    owner = chain.client(chain.accounts[1])
    company = chain.client(chain.accounts[2])
    approved, denied, cancelled, revoked = (_request(chain) for _ in range(4))
    starts = owner.approve(approved).event("AccessApproved").args["startsAt"]
    owner.deny(denied)
    company.cancel(cancelled)
    owner.approve(revoked)
    chain.time_travel(60)
    claimed = owner.claim(revoked)
    earned = owner.revoke(revoked).event("AccessRevoked").args["ownerEarned"]
    owner.publish_endpoint("https://vault.example/v1", b"\x01" * 32)
    owner.publish_endpoint("https://vault.example/v2", b"\x02" * 32)
    index = _index(tmp_path, chain)
    LedgerSync(chain.w3, index).sync_once()
    statuses = {g.id: g.status for g in index.requests()}
    assert statuses == {
        approved: Status.ACTIVE,
        denied: Status.DENIED,
        cancelled: Status.CANCELLED,
        revoked: Status.REVOKED,
    }
    grant = index.grant(approved)
    assert grant is not None and grant.starts_at == starts
    assert grant.is_active(starts + 10) and not grant.is_active(starts + 3_600)
    assert grant.covers(0b001, starts) and not grant.covers(0b010, starts)
    gone = index.grant(revoked)
    assert gone is not None and claimed > 0
    assert gone.claimed == earned == gone.owner_earned
    assert index.requests_for_company(chain.accounts[2]) == index.requests()
    endpoint = index.endpoint_of(chain.accounts[1].lower())
    assert endpoint is not None and endpoint.url == "https://vault.example/v2"
    assert index.endpoint_of(chain.accounts[3]) is None
    # The index agrees with the contract on every request.
    for view in index.requests():
        state = owner.get_request(view.id)
        assert (state.status, state.starts_at, state.claimed) == (
            view.status,
            view.starts_at,
            view.claimed,
        )
    index.close()


def test_sync_resumes_from_the_cursor_after_reopening(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    chain = embedded_chain
    first = _request(chain)
    index = _index(tmp_path, chain)
    LedgerSync(chain.w3, index).sync_once()
    cursor = index.cursor
    index.close()
    chain.client(chain.accounts[1]).approve(first)
    second = _request(chain)
    reopened = _index(tmp_path, chain)
    assert cursor is not None and reopened.cursor == cursor
    loaded = reopened.grant(first)
    assert loaded is not None and loaded.status is Status.PENDING
    report = LedgerSync(chain.w3, reopened).sync_once()
    assert report.from_block == cursor[0] + 1
    assert report.events == 2
    assert [g.status for g in reopened.requests()] == [
        Status.ACTIVE,
        Status.PENDING,
    ]
    assert reopened.grant(second) is not None
    reopened.close()


def test_small_pages_give_the_same_index(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    for n in range(5):
        request_id = _request(chain, f"p{n}")
        if n % 2:
            chain.client(chain.accounts[1]).approve(request_id)
    paged = _index(tmp_path, chain, "paged.sqlite")
    whole = _index(tmp_path, chain, "whole.sqlite")
    LedgerSync(chain.w3, paged, page_blocks=1).sync_once()
    LedgerSync(chain.w3, whole).sync_once()
    assert paged.requests() == whole.requests()
    assert paged.cursor == whole.cursor
    paged.close()
    whole.close()


def test_only_confirmed_blocks_count(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    """THREATS row 18: an event counts only `confirmations` blocks below the head."""
    chain = embedded_chain
    request_id = _request(chain)
    index = _index(tmp_path, chain)
    syncer = LedgerSync(chain.w3, index, confirmations=2)
    syncer.sync_once()
    assert index.grant(request_id) is None
    chain.tester.mine_blocks(1)
    syncer.sync_once()
    assert index.grant(request_id) is None
    chain.tester.mine_blocks(1)
    syncer.sync_once()
    assert index.grant(request_id) is not None
    lag = index.lag()
    assert lag.blocks_behind == 2
    index.close()


def test_reorg_on_py_evm_drops_the_replaced_approval(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """THREATS row 18: a reorg that removes an approval removes it from the index."""
    chain = embedded_chain
    request_id = _request(chain)
    index = _index(tmp_path, chain)
    syncer = LedgerSync(chain.w3, index)
    syncer.sync_once()
    snapshot = chain.snapshot()
    chain.client(chain.accounts[1]).approve(request_id)
    chain.client(chain.accounts[1]).publish_endpoint("https://gone.example", b"\x03" * 32)
    syncer.sync_once()
    assert index.grant(request_id).status is Status.ACTIVE  # type: ignore[union-attr]
    chain.revert(snapshot)
    chain.client(chain.accounts[2]).cancel(request_id)
    chain.tester.mine_blocks(2)
    report = syncer.sync_once()
    assert report.reorg_from is not None
    assert index.grant(request_id).status is Status.CANCELLED  # type: ignore[union-attr]
    assert index.endpoint_of(chain.accounts[1]) is None
    # Exactly what a fresh sync of the new chain builds: nothing left of the old fork (the
    # approval's start time, its block numbers), every event of the new one there.
    fresh = _index(tmp_path, chain, "fresh.sqlite")
    LedgerSync(chain.w3, fresh).sync_once()
    assert index.grant(request_id) == fresh.grant(request_id)
    assert index.grant(request_id).starts_at == 0  # type: ignore[union-attr]
    assert index.cursor == fresh.cursor
    index.close()
    # The rebuilt state is what a fresh reader of the file sees too.
    reopened = _index(tmp_path, chain)
    assert reopened.grant(request_id) == fresh.grant(request_id)
    assert reopened.endpoint_of(chain.accounts[1]) is None
    # And the file's events fold to the same states when the chain moves on.
    chain.client(chain.accounts[1]).publish_endpoint("https://new.example", b"\x04" * 32)
    LedgerSync(chain.w3, reopened).sync_once()
    LedgerSync(chain.w3, fresh).sync_once()
    assert reopened.grant(request_id) == fresh.grant(request_id)
    assert reopened.endpoint_of(chain.accounts[1]) == fresh.endpoint_of(chain.accounts[1])
    reopened.close()
    fresh.close()


def test_the_index_learns_names_only_of_companies_that_asked(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """A company's name, published before or after its first request, is indexed (the last
    one wins, surviving a reopen); a company that never asked this owner stays unknown."""
    chain = embedded_chain
    company, stranger = chain.client(chain.accounts[2]), chain.client(chain.accounts[3])
    company.describe_company("Acme", "https://acme.example")
    stranger.describe_company("Nobody asked", "")
    index = _index(tmp_path, chain)
    syncer = LedgerSync(chain.w3, index)
    syncer.sync_once()
    assert index.name_of(chain.accounts[2]) is None  # no request yet: not followed
    _request(chain)  # first seen now: its earlier name is read back from the start
    syncer.sync_once()
    named = index.name_of(chain.accounts[2].lower())
    assert named is not None and (named.name, named.url) == ("Acme", "https://acme.example")
    company.describe_company("Acme Audio", "")
    syncer.sync_once()
    assert index.name_of(chain.accounts[2]).name == "Acme Audio"  # type: ignore[union-attr]
    assert index.name_of(chain.accounts[3]) is None
    index.close()
    reopened = _index(tmp_path, chain)
    assert reopened.name_of(chain.accounts[2]).url == ""  # type: ignore[union-attr]
    reopened.close()


def test_a_reorg_takes_back_a_companys_new_name(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    chain = embedded_chain
    company = chain.client(chain.accounts[2])
    _request(chain)
    company.describe_company("Acme", "")
    index = _index(tmp_path, chain)
    syncer = LedgerSync(chain.w3, index)
    syncer.sync_once()
    snapshot = chain.snapshot()
    company.describe_company("Your Bank", "https://phish.example")
    syncer.sync_once()
    assert index.name_of(chain.accounts[2]).name == "Your Bank"  # type: ignore[union-attr]
    chain.revert(snapshot)
    chain.tester.mine_blocks(3)
    assert syncer.sync_once().reorg_from is not None
    assert index.name_of(chain.accounts[2]).name == "Acme"  # type: ignore[union-attr]
    index.close()
    assert _index(tmp_path, chain).name_of(chain.accounts[2]).name == "Acme"  # type: ignore[union-attr]


def test_index_of_another_ledger_is_emptied(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    _request(chain)
    index = _index(tmp_path, chain)
    LedgerSync(chain.w3, index).sync_once()
    assert len(index) == 1
    index.close()
    other = LedgerIndex(
        tmp_path / "index.sqlite", chain_id=chain.chain_id, ledger_address="0x" + "22" * 20,
        owner=chain.accounts[1],
    )
    assert len(other) == 0 and other.cursor is None
    other.close()


def test_freshness_bound_fails_closed(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    """THREATS row 18: an index staler than the bound raises IndexStale."""
    chain = embedded_chain
    index = _index(tmp_path, chain)
    with pytest.raises(errors.IndexStale, match="never synced"):
        index.check_fresh(now=time.time(), max_age_seconds=30)
    clock = [1_000.0]
    LedgerSync(chain.w3, index, clock=lambda: clock[0]).sync_once()
    index.check_fresh(now=1_029.0, max_age_seconds=30)
    with pytest.raises(errors.IndexStale, match=r"31\.0 s ago"):
        index.check_fresh(now=1_031.0, max_age_seconds=30)
    assert index.lag().seconds_since_sync(1_031.0) == 31.0
    index.close()


def test_sync_against_a_dead_node_is_unavailable_and_lag_grows(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """THREATS row 19: the node going away surfaces as LedgerUnavailable; `run` keeps
    reporting it and the index's last sync time stays put, so readers fail closed."""
    chain = embedded_chain
    index = _index(tmp_path, chain)
    LedgerSync(chain.w3, index).sync_once()
    synced_at = index.lag().last_synced_at
    dead = chains.http_web3(f"http://127.0.0.1:{chains.free_port()}", timeout=0.5)
    with pytest.raises(errors.LedgerUnavailable, match=r"127\.0\.0\.1"):
        LedgerSync(dead, index).sync_once()
    assert index.lag().last_synced_at == synced_at
    index.close()


def test_each_member_index_shows_its_part_of_a_group_request(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """Issue 18: a group request reaches every member's index by the member's own topic, as
    that member's request (its owner, its share) with the group's state; the contract read
    (getRequest and groupMembers) proves membership, confirms it and shows every member's
    approval so far, which the member's own events cannot."""
    chain = embedded_chain
    first, second, outsider = chain.accounts[1], chain.accounts[3], chain.accounts[4]
    price = 10**15 + 1
    request_id = chain.client(chain.accounts[2]).request_group_access(
        [first, second], 0b101, 3_600, price=price, max_releases=3, catalog_hash=CATALOG,
        purpose="a film for two",
    )
    indexes = {
        a: _index(tmp_path, chain, f"{a}.sqlite", owner=a) for a in (first, second, outsider)
    }
    # Every round re-reads: the other member's approval is news only the contract has.
    syncs = {
        a: LedgerSync(chain.w3, index, reconfirm_seconds=1e-9) for a, index in indexes.items()
    }
    for sync in syncs.values():
        sync.sync_once()
    for member, share in ((first, price // 2 + 1), (second, price // 2)):
        grant = indexes[member].grant(request_id)
        assert grant is not None
        assert (grant.owner, grant.company, grant.price, grant.status) == (
            member, chain.accounts[2], share, Status.PENDING,
        )
        assert (grant.purpose, grant.catalog_hash, grant.max_releases) == (
            "a film for two", CATALOG, 3,
        )
    assert indexes[outsider].grant(request_id) is None

    chain.client(first).approve(request_id)
    for member in (first, second):
        syncs[member].sync_once()
        pending = indexes[member].grant(request_id)
        assert pending is not None and pending.status is Status.PENDING
        assert pending.confirmed_at is not None
        assert [(m.owner, m.approved, m.share) for m in pending.members] == [
            (first, True, price // 2 + 1), (second, False, price // 2),
        ]
    starts = chain.client(second).approve(request_id).event("GroupAccessApproved").args["startsAt"]
    for member in (first, second):
        syncs[member].sync_once()  # folds the approval, then confirms it on the contract
        grant = indexes[member].grant(request_id)
        assert grant is not None
        assert (grant.owner, grant.status, grant.starts_at) == (member, Status.ACTIVE, starts)
        assert grant.confirmed_at is not None
        assert all(m.approved for m in grant.members)

    chain.time_travel(600)
    claimed = chain.client(second).claim(request_id)
    revoked = chain.client(first).revoke(request_id)
    earned = {e.args["owner"]: e.args["ownerEarned"] for e in revoked.events
              if e.name == "GroupAccessRevoked"}
    for member in (first, second):
        syncs[member].sync_once()
        grant = indexes[member].grant(request_id)
        assert grant is not None and grant.status is Status.REVOKED
        assert grant.claimed == grant.owner_earned == earned[member]
    assert 0 < claimed < earned[second]
    for index in indexes.values():
        index.close()


def test_a_group_event_naming_a_non_member_is_dropped_on_confirmation(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """A node that copies a member's GroupAccessRequested and puts another owner at topic 2
    gets that owner's index nowhere: groupMembers at the synced block does not list it."""
    chain = embedded_chain
    first, second, outsider = chain.accounts[1], chain.accounts[3], chain.accounts[4]
    request_id = chain.client(chain.accounts[2]).request_group_access(
        [first, second], 0b101, 3_600, price=10**15, catalog_hash=CATALOG,
    )
    index = _index(tmp_path, chain, owner=outsider)
    sync = LedgerSync(chain.w3, index)
    sync.sync_once()
    assert index.grant(request_id) is None and index.cursor is not None
    logs = chain.w3.eth.get_logs({"address": chain.ledger_address, "fromBlock": 0})
    real = next(
        e for e in map(ledger.codec().decode_log, logs)
        if e is not None and e.name == "GroupAccessRequested" and e.args["owner"] == first
    )
    forged = dataclasses.replace(real, args={**real.args, "owner": outsider})
    block, block_hash = index.cursor
    index.apply([forged], block_number=block, block_hash=block_hash, head_block=block,
                head_timestamp=int(time.time()), synced_at=time.time())
    invented = index.grant(request_id)
    assert invented is not None and invented.owner == outsider and invented.is_group
    assert sync.confirm_grants() == [f"request {request_id} is not this owner's on chain"]
    assert index.grant(request_id) is None
    index.close()


def test_grant_lookup_reads_memory_only(tmp_path: Path, embedded_chain: EmbeddedChain) -> None:
    """The hot path never touches SQLite: it works with the engine disposed."""
    chain = embedded_chain
    request_id = _request(chain)
    index = _index(tmp_path, chain)
    LedgerSync(chain.w3, index).sync_once()
    index.close()
    assert index.grant(request_id) is not None


# --------------------------------------------------------------------------- anvil


def test_reorg_on_anvil_drops_the_approval(
    tmp_path: Path, anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    """THREATS row 18, on a real node: evm_snapshot / evm_revert replace the block that held
    an approval with one that does not; the index drops the approval."""
    owner = anvil_chain.client(anvil.addresses[1])
    company = anvil_chain.client(anvil.addresses[2])
    request_id = company.request_access(anvil.addresses[1], 1, 3_600, price=10**15)
    index = _index(tmp_path, anvil_chain, owner=anvil.addresses[1])
    syncer = LedgerSync(anvil_chain.w3, index)
    syncer.sync_once()
    snapshot = anvil.rpc("evm_snapshot")
    approval_block = owner.approve(request_id).block_number
    syncer.sync_once()
    assert index.grant(request_id).status is Status.ACTIVE  # type: ignore[union-attr]
    assert anvil.rpc("evm_revert", snapshot) is True
    anvil.rpc("evm_mine")
    anvil.rpc("evm_mine")
    assert anvil_chain.w3.eth.block_number >= approval_block
    report = syncer.sync_once()
    assert report.reorg_from is not None and report.reorg_from <= approval_block
    assert index.grant(request_id).status is Status.PENDING  # type: ignore[union-attr]
    assert owner.get_request(request_id).status is Status.PENDING
    index.close()


def test_integration_sync_on_anvil_with_signed_approval(
    tmp_path: Path, anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    company = anvil_chain.client(anvil.accounts[3])
    owner_key = anvil.accounts[4].key
    ids = [
        company.request_access(anvil.addresses[4], 0b11, 600, price=10**15 + n, purpose=f"#{n}")
        for n in range(3)
    ]
    deadline = int(anvil.w3.eth.get_block("latest")["timestamp"]) + 600  # the chain's clock
    signature = ledger.sign_approval(owner_key, company.domain, ids[1], deadline)
    company.approve_by_sig(ids[1], deadline, signature)
    index = _index(tmp_path, anvil_chain, owner=anvil.addresses[4])
    LedgerSync(anvil_chain.w3, index, page_blocks=2).sync_once()
    views = index.requests()
    assert [v.id for v in views] == ids
    assert [v.status for v in views] == [Status.PENDING, Status.ACTIVE, Status.PENDING]
    assert [v.purpose for v in views] == ["#0", "#1", "#2"]
    index.close()


def test_deployment_block_is_found(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    _request(chain)
    code_blocks = [
        n
        for n in range(int(chain.w3.eth.block_number) + 1)
        if chain.w3.eth.get_code(chain.ledger_address, n)  # type: ignore[arg-type]
    ]
    assert deployment_block(chain.w3, chain.ledger_address) == code_blocks[0]


# --------------------------------------------------------------------------- a reorg mid-page


class _ReorgAfterGetLogs(HTTPProvider):
    """A plain HTTP provider to a real node that, once armed, runs ``reorg`` right after the
    node has answered an ``eth_getLogs``: the page's logs then come from the old fork while
    every later read sees the new one."""

    def __init__(self, url: str, reorg: Callable[[], None]) -> None:
        super().__init__(url, request_kwargs={"timeout": 30}, exception_retry_configuration=None)
        self._reorg = reorg
        self.armed = False

    def make_request(self, method: Any, params: Any) -> Any:
        response = super().make_request(method, params)
        if method == "eth_getLogs" and self.armed:
            self.armed = False
            self._reorg()
        return response


def test_a_reorg_while_a_page_is_read_leaves_no_old_fork_event(
    tmp_path: Path, anvil: chains.AnvilNode, anvil_chain: chains.RpcChain
) -> None:
    """THREATS row 18, on anvil: the chain reorganises between ``eth_getLogs`` answering a
    page and the syncer keeping it. The page's events are the old fork's; kept, they would sit
    in the index under the new fork's block hash, where no later round looks again. The
    syncer must notice (the page's last block changed its hash), re-read, and end up with
    the new fork's request — the same index a fresh sync of the new chain builds."""
    owner = anvil.addresses[1]
    company = anvil_chain.client(anvil.addresses[2])
    start = deployment_block(anvil_chain.w3, anvil_chain.ledger_address)
    kept = company.request_access(owner, 1, 3_600, price=10**15, purpose="before the fork")
    snapshot: list[Any] = []

    def reorg() -> None:
        assert anvil.rpc("evm_revert", snapshot[0]) is True
        company.request_access(owner, 0b10, 7_200, price=2 * 10**15, purpose="new fork")
        anvil.rpc("evm_mine")
        anvil.rpc("evm_mine")  # the new fork is longer: the old page's last block exists

    provider = _ReorgAfterGetLogs(anvil.rpc_url, reorg)
    index = _index(tmp_path, anvil_chain, owner=owner)
    syncer = LedgerSync(Web3(provider), index, start_block=start)
    syncer.sync_once()
    assert index.grant(kept).purpose == "before the fork"  # type: ignore[union-attr]
    snapshot.append(anvil.rpc("evm_snapshot"))
    replaced = company.request_access(owner, 0b01, 3_600, price=10**15, purpose="old fork")
    anvil.rpc("evm_mine")
    provider.armed = True
    syncer.sync_once()
    assert not provider.armed  # the reorg did happen mid-page
    syncer.sync_once()  # and a later round does not repair what was kept

    state = company.get_request(replaced)
    view = index.grant(replaced)
    assert view is not None
    assert (view.purpose, view.scopes, view.price) == ("new fork", 0b10, 2 * 10**15)
    assert (view.status, view.duration) == (state.status, 7_200)
    fresh = _index(tmp_path, anvil_chain, "fresh.sqlite", owner=owner)
    LedgerSync(anvil_chain.w3, fresh, start_block=start).sync_once()
    assert index.requests() == fresh.requests()
    assert index.cursor == fresh.cursor
    index.close()
    fresh.close()
