"""Issue 18, the members' side, over real HTTP: two vaults' daemons on one anvil, a company
asks both owners together, each owner approves through its own daemon, the SDK relays both
approvals, and each member's index holds the grant active and confirmed. Releases under a
group grant stay refused until the vaults can answer together (household coordination)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import chain as chains
from vault import client, crypto
from vault.client import Company
from vault.store import Vault

from .conftest import MUSIC, PASS, Clock, Served, daemon_settings, running

DAY = 86_400


@pytest.fixture
def household(
    anvil: chains.AnvilNode, anvil_chain: chains.RpcChain, owner_vault: Vault, clock: Clock,
    tmp_path: Path,
) -> Iterator[tuple[Served, Served]]:
    partner = Vault.create(tmp_path / "partner", PASS, kdf=crypto.KDF_MINIMUM)
    try:
        for vault in (owner_vault, partner):
            anvil.w3.eth.send_transaction(
                {"from": anvil.addresses[0], "to": vault.owner_address, "value": 10**18}
            )
        # The sync loops run on their own: wait_for_grant waits for both vaults' indexes.
        with (
            running(daemon_settings(owner_vault, sync_interval_seconds=0.2), owner_vault,
                    anvil_chain, clock) as first,
            running(daemon_settings(partner, sync_interval_seconds=0.2), partner,
                    anvil_chain, clock) as second,
        ):
            for served in (first, second):
                published = served.owner_post("/v1/owner/terms/publish",
                                              {"endpoint": served.base})
                assert published.status_code == 200, published.text
            yield first, second
    finally:
        partner.close()


def _members(served: Served, request_id: int) -> list[tuple[str, bool, int]]:
    response = served.owner_get(f"/v1/owner/requests/{request_id}")
    assert response.status_code == 200, response.text
    return [(m["owner"], m["approved"], m["share_wei"]) for m in response.json()["members"]]


def test_a_household_grant_is_approved_by_each_member_and_relayed_by_the_sdk(
    household: tuple[Served, Served], anvil: chains.AnvilNode, anvil_chain: chains.RpcChain,
) -> None:
    first, second = household
    owners = [first.vault.owner_address, second.vault.owner_address]
    price = 2 * 10**16 + 1  # odd: the first member's share carries the remainder
    shares = [price // 2 + 1, price // 2]
    with Company(anvil.accounts[2], anvil_chain, anvil_chain.ledger_address,
                 poll_interval=0.05) as company:
        request = company.request_group_access(owners, MUSIC, 30 * DAY, price, "a film for two")
        assert [m.endpoint for m in request.members] == [first.base, second.base]
        for served in (first, second):
            served.sync()
            assert _members(served, request.id) == [
                (owners[0], False, shares[0]), (owners[1], False, shares[1]),
            ]
            shown = served.owner_get(f"/v1/owner/requests/{request.id}").json()
            assert shown["price_wei"] == shares[owners.index(served.vault.owner_address)]
            for owner in owners:
                assert owner in shown["consent_statement"]
            approved = served.owner_post(f"/v1/owner/requests/{request.id}/approve",
                                         {"submit": False})
            assert approved.status_code == 200, approved.text

        grant = company.wait_for_grant(request, timeout=60)
        assert [m.owner for m in grant.members] == owners
        for served in (first, second):
            served.sync()
            held = served.daemon.index.grant(request.id)
            assert held is not None and held.is_active(first.clock())
            assert held.confirmed_at is not None
            assert _members(served, request.id) == [
                (owners[0], True, shares[0]), (owners[1], True, shares[1]),
            ]
            assert served.owner_get(f"/v1/owner/requests/{request.id}").json()[
                "status"] == "active"

        # No member answers alone under a household grant: the SDK's fetch and a signed
        # release sent straight to the second member are both refused, with nothing in them.
        with pytest.raises(client.NotGranted, match="group grant"):
            company.fetch(grant)
        refused = second.release(request.id, MUSIC, key=bytes(anvil.accounts[2].key))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "not_granted"
        assert "preferences" not in refused.json()

        # One member's revoke ends the grant for both, with that member's part of the split.
        revoked = second.owner_post(f"/v1/owner/grants/{request.id}/revoke")
        assert revoked.status_code == 200, revoked.text
        split = revoked.json()
        assert split["owner_earned_wei"] is not None and split["company_refund_wei"] > 0
        for served in (first, second):
            served.sync()
            assert served.owner_get(f"/v1/owner/requests/{request.id}").json()[
                "status"] == "revoked"
