"""Issue 18 over real HTTP: two vaults' daemons on one anvil, a company asks both owners
together, each owner approves through its own daemon and the SDK relays both approvals.
Then the household is served vault to vault: the daemon the company calls coordinates, the
other member's daemon checks the forward against its own index and book, and one answer
leaves with every member's receipt — or nothing does."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from vault import chain as chains
from vault import client, crypto, match, scopes
from vault.canonical import json_hash
from vault.cli._format import request_table, short_address
from vault.client import Company
from vault.eth import eip712
from vault.household import (
    CONTRIBUTION_PATH,
    ContributionRequest,
    MatchContribution,
    MemberRelease,
)
from vault.identity import Event, EventKind
from vault.store import Vault
from vault.wire import RequestPublic

from .conftest import MUSIC, PASS, Clock, Served, daemon_settings, running

DAY = 86_400
HISTORY = ["match.history"]
GRANTED = [*MUSIC, *HISTORY]
SHARED = "The Shared Favourites"
ADA_ONLY = "Only Ada Plays These"
#: The candidate both members' histories know, and the one only the first member's does.
BOTH, ONE = "h-both", "h-one"
#: How long the coordinator waits for a member (short: the tests wait for it to give up).
TIMEOUT = 2.0


def _plays(artist: str, now: int, *, songs: int) -> list[Event]:
    return [
        Event(EventKind.PLAY, now - i * 3600, "manual",
              {"artist": artist, "track": f"{artist} song {i % songs}", "ms_played": 200_000})
        for i in range(4 * songs)
    ]


def _references(artist: str, songs: int) -> list[str]:
    return [artist, *(f"{artist} song {i}" for i in range(songs))]


def catalogue() -> list[dict[str, Any]]:
    """30 alike candidates, but one whose neighbours both members play (5 references) and
    one whose neighbours only the first member plays (21, so many that the sum or the mean
    of the two members' scores would rank it first; the minimum must not)."""
    listed: list[dict[str, Any]] = [
        {"id": f"m-{i}", "title": f"Unheard Song {i}", "kind": "track", "genres": ["pop"],
         "similar": [{"ref": f"Nobody {i}", "weight": 0.5}]}
        for i in range(28)
    ]
    listed.append({"id": ONE, "title": "Ada's pick", "kind": "track",
                   "similar": _references(ADA_ONLY, 20)})
    listed.append({"id": BOTH, "title": "Their pick", "kind": "track",
                   "similar": _references(SHARED, 4)})
    return listed


@pytest.fixture
def household(
    anvil: chains.AnvilNode, anvil_chain: chains.RpcChain, owner_vault: Vault, clock: Clock,
    tmp_path: Path,
) -> Iterator[tuple[Served, Served]]:
    partner = Vault.create(tmp_path / "partner", PASS, kdf=crypto.KDF_MINIMUM)
    now = int(clock())
    owner_vault.import_records([*_plays(SHARED, now, songs=4), *_plays(ADA_ONLY, now, songs=20)])
    partner.import_records(_plays(SHARED, now, songs=4))
    try:
        for vault in (owner_vault, partner):
            anvil.w3.eth.send_transaction(
                {"from": anvil.addresses[0], "to": vault.owner_address, "value": 10**18}
            )
        # The sync loops run on their own: wait_for_grant waits for both vaults' indexes.
        settings = {"sync_interval_seconds": 0.2, "household_timeout_seconds": TIMEOUT}
        with (
            running(daemon_settings(owner_vault, **settings), owner_vault, anvil_chain,
                    clock) as first,
            running(daemon_settings(partner, **settings), partner, anvil_chain,
                    clock) as second,
        ):
            for served in (first, second):
                published = served.owner_post("/v1/owner/terms/publish",
                                              {"endpoint": served.base})
                assert published.status_code == 200, published.text
            yield first, second
    finally:
        partner.close()


@pytest.fixture
def company(anvil: chains.AnvilNode, anvil_chain: chains.RpcChain) -> Iterator[Company]:
    with Company(anvil.accounts[2], anvil_chain, anvil_chain.ledger_address,
                 poll_interval=0.05) as held:
        yield held


def _members(served: Served, request_id: int) -> list[tuple[str, bool, int]]:
    response = served.owner_get(f"/v1/owner/requests/{request_id}")
    assert response.status_code == 200, response.text
    return [(m["owner"], m["approved"], m["share_wei"]) for m in response.json()["members"]]


def _shown(request: dict[str, Any]) -> str:
    """The request as `vault requests` prints it."""
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(request_table(RequestPublic.model_validate(request), now=time.time()))
    return console.export_text()


def _approved_by_both(company: Company, household: tuple[Served, Served]) -> client.Grant:
    first, second = household
    owners = [first.vault.owner_address, second.vault.owner_address]
    request = company.request_group_access(owners, GRANTED, 30 * DAY, 2 * 10**16, "for two")
    for served in (first, second):
        served.sync()
        approved = served.owner_post(f"/v1/owner/requests/{request.id}/approve",
                                     {"submit": False})
        assert approved.status_code == 200, approved.text
    grant = company.wait_for_grant(request, timeout=60)
    for served in (first, second):
        served.sync()
    return grant


def _released(served: Served, grant_id: int) -> list[Any]:
    return [e for e in served.daemon.audit.of_kind("release")
            if e.grant_id == grant_id and e.outcome == "released"]


def test_a_household_grant_is_approved_by_each_member_and_relayed_by_the_sdk(
    household: tuple[Served, Served], company: Company,
) -> None:
    first, second = household
    owners = [first.vault.owner_address, second.vault.owner_address]
    price = 2 * 10**16 + 1  # odd: the first member's share carries the remainder
    shares = [price // 2 + 1, price // 2]
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
        assert "0 of 2 so far" in _shown(shown)
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
        shown = served.owner_get(f"/v1/owner/requests/{request.id}").json()
        assert shown["status"] == "active"
        # `vault requests` says who approved so far, and each member's share.
        table = _shown(shown)
        you = owners.index(served.vault.owner_address)
        assert "2 of 2 so far" in table and f"{short_address(owners[you])} (you)" in table
        assert short_address(owners[1 - you]) in table
        # Each index follows the other member's endpoint: the coordinator finds it there.
        other = owners[1 - owners.index(served.vault.owner_address)]
        endpoint = served.daemon.index.endpoint_of(other)
        assert endpoint is not None and endpoint.url in (first.base, second.base)


def test_a_household_match_ranks_first_what_both_like(
    household: tuple[Served, Served], company: Company, anvil: chains.AnvilNode,
    anvil_chain: chains.RpcChain,
) -> None:
    first, second = household
    owners = [first.vault.owner_address, second.vault.owner_address]
    grant = _approved_by_both(company, household)
    listed = catalogue()

    result = company.match(grant, listed, k=5)  # the SDK verified every receipt
    assert isinstance(result, client.HouseholdMatch)
    assert result.ranking[0] == BOTH
    assert ONE not in result.ranking[:1]
    assert result.owner == owners[0] == grant.members[0].owner
    assert [m.owner for m in result.members] == owners
    # The first member's own scores put its favourite far above the shared one, by more than
    # the second member's score for the shared one: a sum or a mean would have picked it.
    desk = first.daemon.owner.match_desk
    ada = {c.id: match.score(c, desk.reading(first.clock()).person, tier=match.HISTORY).total
           for c in match.read_candidates(listed)}
    assert ada[ONE] - ada[BOTH] > ada[BOTH]

    # Each vault logged its own release to the company: the coordinator the ranking, the
    # member its contribution to that coordinator.
    coordinated, = _released(first, grant.id)
    contributed, = _released(second, grant.id)
    assert coordinated.detail["ranking"] == result.ranking
    assert coordinated.detail["household"] == {"members": owners}
    assert contributed.detail["household"] == {"coordinator": owners[0]}
    assert contributed.detail["candidates_hash"] == result.candidates_hash
    assert contributed.company == coordinated.company == company.address

    # The second member's daemon coordinates just as well; the answer is the same kind.
    through_second = grant.model_copy(update={"endpoint": second.base})
    again = company.match(through_second, listed, k=5)
    assert isinstance(again, client.HouseholdMatch) and again.owner == owners[1]
    assert again.ranking[0] == BOTH

    # A household release: each member's own preferences, each under its own receipt.
    release = company.fetch(grant, MUSIC)
    assert isinstance(release, client.HouseholdRelease)
    assert [m.owner for m in release.members] == owners
    assert all(set(m.preferences) == set(MUSIC) for m in release.members)

    # The async client verifies the same way.
    async def concurrently() -> list[Any]:
        async with client.AsyncCompany(anvil.accounts[2], anvil_chain,
                                       anvil_chain.ledger_address) as many:
            return [*await many.fetch_many([grant], MUSIC),
                    *await many.match_many([grant], listed, k=5)]

    fetched, matched = asyncio.run(concurrently())
    assert isinstance(fetched, client.HouseholdRelease)
    assert isinstance(matched, client.HouseholdMatch) and matched.ranking[0] == BOTH


def test_a_tampered_household_answer_fails_the_sdk(
    household: tuple[Served, Served], company: Company,
) -> None:
    first, _ = household
    grant = _approved_by_both(company, household)
    listed = catalogue()
    body, listed_hash = company._core.match_body(grant, listed, 5, None)
    answer = httpx.post(first.base + "/v1/match", json=body, timeout=30).json()
    ids = {c["id"] for c in listed}
    company._core.verify_household_match(grant, answer, listed_hash, ids)  # as sent: fine
    tampered = {**answer, "members": [answer["members"][0],
                                      {**answer["members"][1], "scores_hash": "0x" + "00" * 32}]}
    with pytest.raises(client.HouseholdReceiptInvalid, match="member"):
        company._core.verify_household_match(grant, tampered, listed_hash, ids)
    dropped = {**answer, "members": answer["members"][:1]}
    with pytest.raises(client.HouseholdReceiptInvalid, match="one part per member"):
        company._core.verify_household_match(grant, dropped, listed_hash, ids)


def test_one_members_revoke_ends_the_household_at_both_daemons(
    household: tuple[Served, Served], company: Company,
) -> None:
    first, second = household
    grant = _approved_by_both(company, household)
    assert isinstance(company.fetch(grant, MUSIC), client.HouseholdRelease)

    revoked = second.owner_post(f"/v1/owner/grants/{grant.id}/revoke")
    assert revoked.status_code == 200, revoked.text
    split = revoked.json()
    assert split["owner_earned_wei"] is not None and split["company_refund_wei"] > 0
    # Money is conserved to the wei: what the members earned and the company's refund make
    # the price, and the ledger holds exactly its escrow and what it owes.
    ledger = first.chain.client()
    assert ledger.earned(grant.id) + split["company_refund_wei"] == ledger.get_request(
        grant.id).price
    accounts = [*(m.owner for m in grant.members), company.address]
    assert ledger.balance() == ledger.escrow_held() + sum(ledger.owed(a) for a in accounts)
    for served in (first, second):
        served.sync()
        assert served.owner_get(f"/v1/owner/requests/{grant.id}").json()[
            "status"] == "revoked"
    before = [len(_released(s, grant.id)) for s in (first, second)]
    for served in (first, second):
        with pytest.raises(client.Revoked):
            company.fetch(grant.model_copy(update={"endpoint": served.base}), MUSIC)
        with pytest.raises(client.Revoked):
            company.match(grant.model_copy(update={"endpoint": served.base}), catalogue())
    assert [len(_released(s, grant.id)) for s in (first, second)] == before


def _forward(coordinator_key: bytes, member: str, domain: eip712.Domain, request: dict[str, Any],
             *, issued_at: int) -> dict[str, Any]:
    """A coordinator's forward of a release or match request, signed with
    ``coordinator_key``."""
    bitmap = scopes.bitmap(request["scopes"])
    if "candidates" in request:
        digest = domain.match_digest(
            request["grant_id"], bitmap, json_hash(request["candidates"]), request["k"],
            request["nonce"], request["issued_at"],
        )
    else:
        digest = domain.release_digest(request["grant_id"], bitmap, request["nonce"],
                                       request["issued_at"])
    signature = eip712.sign_digest(
        coordinator_key, domain.contribution_digest(request["grant_id"], digest, member,
                                                    issued_at)
    )
    return ContributionRequest(
        kind="match" if "candidates" in request else "release", request=request,
        issued_at=issued_at, signature="0x" + signature.hex(),
    ).model_dump()


def _match_request(domain: eip712.Domain, grant_id: int, company_key: bytes, *, issued_at: int
                   ) -> dict[str, Any]:
    """A company's signed match request for the household's catalogue."""
    listed, nonce = catalogue(), "0x" + os.urandom(32).hex()
    signature = eip712.sign_match(company_key, domain, grant_id, scopes.bitmap(HISTORY),
                                  json_hash(listed), 10, nonce, issued_at)
    return {"grant_id": grant_id, "scopes": HISTORY, "k": 10, "candidates": listed,
            "nonce": nonce, "issued_at": issued_at, "signature": "0x" + signature.hex()}


def test_a_member_refuses_forged_forwards(
    household: tuple[Served, Served], company: Company, anvil: chains.AnvilNode,
) -> None:
    first, second = household
    grant = _approved_by_both(company, household)
    member = second.vault.owner_address
    coordinator_key = bytes(first.vault.owner_account().key)
    company_key = bytes(anvil.accounts[2].key)
    now = int(second.clock())
    path = CONTRIBUTION_PATH

    def refused(body: dict[str, Any]) -> tuple[int, str]:
        response = second.post(path, json=body)
        return response.status_code, response.json()["error"]

    # Not signed by the company: another key signed the request the coordinator forwards.
    forged = second.release_body(grant.id, MUSIC, key=bytes(anvil.accounts[5].key))
    assert refused(_forward(coordinator_key, member, second.domain, forged, issued_at=now)
                   ) == (401, "bad_signature")
    # A grant this member is not in: the company's own request to the first owner alone.
    solo = company.request_access(first.vault.owner_address, MUSIC, 30 * DAY, 10**15, "solo")
    second.sync()
    other = second.release_body(solo.id, MUSIC, key=company_key)
    assert refused(_forward(coordinator_key, member, second.domain, other, issued_at=now)
                   ) == (403, "not_granted")
    # A coordinator that is not a member of the grant (a third vault's key).
    stranger = bytes(anvil.accounts[6].key)
    genuine = second.release_body(grant.id, MUSIC, key=company_key)
    assert refused(_forward(stranger, member, second.domain, genuine, issued_at=now)
                   ) == (403, "not_granted")
    # A forward signed for another member, or long ago, or not at all.
    assert refused(_forward(coordinator_key, first.vault.owner_address, second.domain,
                            second.release_body(grant.id, MUSIC, key=company_key),
                            issued_at=now)) == (403, "not_granted")
    assert refused(_forward(coordinator_key, member, second.domain,
                            second.release_body(grant.id, MUSIC, key=company_key),
                            issued_at=now - 3600)) == (401, "stale_request")
    unsigned = {**_forward(coordinator_key, member, second.domain,
                           second.release_body(grant.id, MUSIC, key=company_key),
                           issued_at=now), "signature": "0x" + "00" * 65}
    assert refused(unsigned) == (401, "bad_signature")
    assert _released(second, grant.id) == []

    # The genuine forward from the member's partner is answered, and a replay of it is not.
    answered = second.post(path, json=_forward(coordinator_key, member, second.domain,
                                               genuine, issued_at=now))
    assert answered.status_code == 200, answered.text
    part = MemberRelease.model_validate(answered.json())
    assert part.owner == member and set(part.preferences) == set(MUSIC)
    assert refused(_forward(coordinator_key, member, second.domain, genuine, issued_at=now)
                   ) == (409, "replayed")
    assert len(_released(second, grant.id)) == 1


def test_a_member_refuses_a_match_forward_from_a_non_member(
    household: tuple[Served, Served], company: Company, anvil: chains.AnvilNode,
) -> None:
    """The member check holds for a match part as for a release part: a stranger's vault
    that forwards the company's genuine match request gets nothing; the partner's forward
    of the same request gets this member's noisy scores for every candidate."""
    first, second = household
    grant = _approved_by_both(company, household)
    member = second.vault.owner_address
    now = int(second.clock())
    genuine = _match_request(second.domain, grant.id, bytes(anvil.accounts[2].key),
                             issued_at=now)
    stranger = bytes(anvil.accounts[6].key)
    refused = second.post(CONTRIBUTION_PATH,
                          json=_forward(stranger, member, second.domain, genuine, issued_at=now))
    assert (refused.status_code, refused.json()["error"]) == (403, "not_granted")
    assert _released(second, grant.id) == []

    partner = bytes(first.vault.owner_account().key)
    answered = second.post(CONTRIBUTION_PATH,
                           json=_forward(partner, member, second.domain, genuine, issued_at=now))
    assert answered.status_code == 200, answered.text
    part = MatchContribution.model_validate(answered.json())
    assert part.owner == member and set(part.scores) == {c["id"] for c in catalogue()}
    assert len(_released(second, grant.id)) == 1


def test_a_member_offline_means_no_household_answer(
    household: tuple[Served, Served], company: Company,
) -> None:
    first, second = household
    grant = _approved_by_both(company, household)
    # The second member's published endpoint now leads to a socket that accepts a
    # connection and never answers: the coordinator gives up after its timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        moved = second.owner_post("/v1/owner/terms/publish",
                                  {"endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        assert moved.status_code == 200, moved.text
        first.sync()
        late = f"member {second.vault.owner_address}'s vault did not answer in time"
        with pytest.raises(client.HouseholdUnavailable, match=late):
            company.match(grant, catalogue(), k=5)
        with pytest.raises(client.HouseholdUnavailable):
            company.fetch(grant, MUSIC)
    # Nothing released anywhere: the coordinator logged refusals, the member saw nothing.
    assert _released(first, grant.id) == [] and _released(second, grant.id) == []
    reasons = {e.reason for e in first.daemon.audit.of_kind("release")
               if e.grant_id == grant.id}
    assert reasons == {"household_unavailable"}

    # A port where nothing listens: refused at once, same answer.
    closed = f"http://127.0.0.1:{chains.free_port()}"
    assert second.owner_post("/v1/owner/terms/publish", {"endpoint": closed}).status_code == 200
    first.sync()
    with pytest.raises(client.HouseholdUnavailable):
        company.fetch(grant, MUSIC)
    assert _released(first, grant.id) == [] and _released(second, grant.id) == []


def test_no_member_answers_alone_under_a_group_grant(
    household: tuple[Served, Served], company: Company, anvil: chains.AnvilNode,
) -> None:
    """A company that calls the second member's release route directly still gets the
    household's answer (both members' parts), never the second member's data alone."""
    first, second = household
    grant = _approved_by_both(company, household)
    response = second.release(grant.id, MUSIC, key=bytes(anvil.accounts[2].key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["coordinator"] == second.vault.owner_address
    assert [m["owner"] for m in body["members"]] == [m.owner for m in grant.members]
    assert len(_released(first, grant.id)) == len(_released(second, grant.id)) == 1
