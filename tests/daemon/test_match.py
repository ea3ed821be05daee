"""POST /v1/match over real HTTP on the embedded chain: DESIGN.md's match protocol, every
refusal path, the match budget and THREATS row 39."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import rfc8785
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from vault import chain as chains
from vault import client, ledger, match, scopes
from vault.eth import eip712
from vault.eth.eip712 import RECEIPT
from vault.identity import Event, EventKind
from vault.store import Vault

from .conftest import CANARY, Clock, Served, daemon_settings, fund, running
from .test_dashboard import signed_in

HISTORY = ["match.history"]
CONTENT = ["match.content"]
FAVOURITE = "The Planted Favourites"
#: A neighbour list that knows the favourite band and its four songs: each reference moves
#: a score by at most 1 (the ε's sensitivity), so one alone does not outweigh the noise.
FAVOURITE_REFS = [FAVOURITE, *(f"Anthem {i}" for i in range(4))]
DAY = 86_400


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "detail"}
    return response.status_code, body["error"]


def catalogue(size: int = 30, **probe: Any) -> list[dict[str, Any]]:
    """A company's list: every candidate alike (the same genre, no prior) but ``m-0``,
    which gets ``probe``'s fields."""
    listed: list[dict[str, Any]] = [
        {"id": f"m-{i}", "title": f"Unheard Song {i}", "kind": "track", "genres": ["pop"],
         "similar": [{"ref": f"Nobody {i}", "weight": 0.5}]}
        for i in range(size)
    ]
    listed[0] = {**listed[0], **probe}
    return listed


def match_body(served: Served, grant_id: int, candidates: list[dict[str, Any]], *,
               names: list[str] | None = None, k: int = 10, company: int = 1,
               nonce: str | None = None, issued_at: int | None = None,
               signed_hash: bytes | None = None) -> dict[str, Any]:
    names = names or HISTORY
    nonce = nonce or "0x" + secrets.token_hex(32)
    issued_at = int(served.clock()) if issued_at is None else issued_at
    listed = signed_hash or bytes(keccak(rfc8785.dumps(candidates)))
    signature = eip712.sign_match(
        served.chain.dev_keys[company], served.domain, grant_id, scopes.bitmap(names),
        listed, k, nonce, issued_at,
    )
    return {"grant_id": grant_id, "scopes": names, "k": k, "candidates": candidates,
            "nonce": nonce, "issued_at": issued_at, "signature": "0x" + signature.hex()}


def post_match(served: Served, body: Any) -> httpx.Response:
    return served.post("/v1/match", json=body)


@pytest.fixture
def matching(embedded_chain: chains.EmbeddedChain, owner_vault: Vault, clock: Clock
             ) -> Iterator[Served]:
    """The daemon over Ada's samples plus a favourite band played 40 times."""
    now = int(clock())
    owner_vault.import_records([
        Event(EventKind.PLAY, now - i * 3600, "manual",
              {"artist": FAVOURITE, "track": f"Anthem {i % 4}", "ms_played": 200_000})
        for i in range(40)
    ])
    fund(embedded_chain, owner_vault.owner_address)
    with running(daemon_settings(owner_vault), owner_vault, embedded_chain, clock) as served:
        yield served


def test_history_match_ranks_a_planted_favourite_first_with_a_receipt(matching: Served) -> None:
    grant_id = matching.grant(names=HISTORY)
    listed = catalogue(similar=[*FAVOURITE_REFS, {"ref": "Someone Else", "weight": 0.2}])
    response = post_match(matching, match_body(matching, grant_id, listed))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"grant_id", "owner", "company", "candidates_hash", "k", "ranking",
                         "receipt"}
    listed_hash = "0x" + bytes(keccak(rfc8785.dumps(listed))).hex()
    assert body["candidates_hash"] == listed_hash
    assert body["k"] == 10 and len(body["ranking"]) == 10 == len(set(body["ranking"]))
    assert body["ranking"][0] == "m-0"
    assert set(body["ranking"]) <= {c["id"] for c in listed}
    # The receipt, checked with eth-account's typed-data helpers (not the project's digests).
    content = {"candidates_hash": listed_hash, "ranking": body["ranking"]}
    content_hash = bytes(keccak(rfc8785.dumps(content)))
    receipt = body["receipt"]
    assert receipt["content_hash"] == "0x" + content_hash.hex()
    message = {"grantId": grant_id, "company": body["company"], "contentHash": content_hash,
               "issuedAt": receipt["issued_at"]}
    signable = encode_typed_data(full_message=ledger.typed_data(matching.domain, RECEIPT,
                                                                message))
    assert Account.recover_message(signable, signature=receipt["signature"]) == body["owner"]
    assert body["owner"] == matching.vault.owner_address
    # Logged with the candidates hash and the ranking.
    entry = matching.daemon.audit.of_kind("release")[-1]
    assert entry.scopes == ("match.history",) and entry.outcome == "released"
    assert entry.detail["candidates_hash"] == listed_hash
    assert entry.detail["ranking"] == body["ranking"]


def test_the_dashboard_shows_a_company_exactly_the_ranking_it_received(
    matching: Served,
) -> None:
    grant_id = matching.grant(names=HISTORY)
    listed = catalogue(similar=FAVOURITE_REFS)
    body = post_match(matching, match_body(matching, grant_id, listed)).json()
    with signed_in(matching) as browser:
        page = browser.get(f"/companies/{body['company']}").text
    shown = page.split('aria-label="Match ')[1].split("</article>")[0]
    assert body["candidates_hash"] in shown and body["receipt"]["content_hash"] in shown
    assert "verified: matches what is shown" in shown
    assert re.findall(r"<li><code>([^<]*)</code></li>", shown) == body["ranking"]
    assert "Unheard Song" not in page  # candidates' titles are not what it received


def test_the_same_list_in_an_epoch_gets_the_same_ranking(matching: Served) -> None:
    grant_id = matching.grant(names=HISTORY)
    listed = catalogue()
    first = post_match(matching, match_body(matching, grant_id, listed)).json()["ranking"]
    again = post_match(matching, match_body(matching, grant_id, listed)).json()["ranking"]
    assert first == again


def test_list_size_k_and_duplicate_ids_are_400(matching: Served) -> None:
    grant_id = matching.grant(names=HISTORY)
    for listed, k in ((catalogue(19), 10), (catalogue(1001), 10), (catalogue(), 0),
                      (catalogue(), 11)):
        response = post_match(matching, match_body(matching, grant_id, listed, k=k))
        assert error_of(response) == (400, "list_size"), (len(listed), k)
    twice = catalogue()
    twice[5] = {**twice[5], "id": "m-4"}
    assert error_of(post_match(matching, match_body(matching, grant_id, twice))) == (
        400, "duplicate_id")


def test_unknown_fields_and_bad_values_are_malformed(matching: Served) -> None:
    """THREATS rows 16 and 24."""
    grant_id = matching.grant(names=HISTORY)
    good = match_body(matching, grant_id, catalogue())
    bad_candidates = [
        {"id": "x", "colour": "red"}, {"id": ""}, {"id": "x" * 65}, {"id": 7},
        {"id": "x", "prior": 1.5}, {"id": "x", "prior": "0.5"}, {"id": "x", "kind": "car"},
        {"id": "x", "genres": ["g"] * 11}, {"id": "x", "similar": ["s"] * 51},
        {"id": "x", "similar": [{"ref": "s", "weight": 2}]},
        {"id": "x", "similar": [{"ref": "s", "weight": 0.5, "why": 1}]},
    ]
    for candidate in bad_candidates:
        body = {**good, "candidates": [candidate, *good["candidates"][1:]]}
        assert error_of(post_match(matching, body)) == (400, "malformed"), candidate
    for body in ({**good, "extra": 1}, {**good, "scopes": ["preferences.music"]},
                 {**good, "scopes": ["nope"]}, [good], {**good, "grant_id": str(grant_id)},
                 {**good, "k": 10.5}, {**good, "k": True}):
        assert error_of(post_match(matching, body)) == (400, "malformed"), body
    nested = b"[" * 50_000 + b"]" * 50_000
    for deep in (b'{"candidates":' + nested + b"}",
                 b'{"candidates":[{"id":"x","similar":[' + nested + b"]}]}"):
        response = matching.post("/v1/match", content=deep,
                                  headers={"content-type": "application/json"})
        assert error_of(response) == (400, "malformed")


def test_the_match_route_takes_one_mebibyte_and_no_other_route_does(matching: Served) -> None:
    """THREATS row 24: the larger cap is the match route's own."""
    grant_id = matching.grant(names=HISTORY)
    big = [{**c, "similar": [f"reference {c['id']} {j}" for j in range(30)]}
           for c in catalogue(300)]
    body = match_body(matching, grant_id, big)
    assert 16_384 < len(httpx.Request("POST", "/", json=body).content) < 1 << 20
    assert post_match(matching, body).status_code == 200
    padding = {"id": "pad", "title": "x" * 200}
    huge = {**body, "candidates": big * 0 + [padding] * 6000}
    assert error_of(post_match(matching, huge)) == (413, "too_large")
    assert error_of(matching.post("/v1/release", json={"pad": "x" * 20_000})) == (
        413, "too_large")


def test_signature_grant_scope_and_replay_refusals(matching: Served) -> None:
    """THREATS rows 10, 11, 13, 15, 16, 20 for a match."""
    grant_id = matching.grant(names=CONTENT)
    listed = catalogue()
    good = match_body(matching, grant_id, listed, names=CONTENT)
    other_list = match_body(matching, grant_id, listed, names=CONTENT,
                            signed_hash=bytes(32))
    assert error_of(post_match(matching, other_list)) == (401, "bad_signature")
    other_k = {**good, "k": 9}
    assert error_of(post_match(matching, other_k)) == (401, "bad_signature")
    stale = match_body(matching, grant_id, listed, names=CONTENT,
                       issued_at=int(matching.clock()) - 400)
    assert error_of(post_match(matching, stale)) == (401, "stale_request")
    assert error_of(post_match(matching, match_body(matching, grant_id, listed))) == (
        403, "scope_not_granted")
    assert error_of(post_match(matching, match_body(matching, 999, listed))) == (
        403, "not_granted")
    matching.request(company=2, names=CONTENT)  # a company on this ledger, not the grant's
    matching.sync()
    assert error_of(post_match(
        matching, match_body(matching, grant_id, listed, names=CONTENT, company=2))) == (
        403, "wrong_company")
    assert post_match(matching, good).status_code == 200
    assert error_of(post_match(matching, good)) == (409, "replayed")
    matching.owner_post(f"/v1/owner/grants/{grant_id}/revoke")
    assert error_of(post_match(
        matching, match_body(matching, grant_id, listed, names=CONTENT))) == (403, "revoked")


def test_a_match_counts_as_a_release_for_max_releases(matching: Served) -> None:
    grant_id = matching.grant(names=[*CONTENT, "preferences.music"], max_releases=2)
    assert post_match(matching, match_body(matching, grant_id, catalogue(),
                                           names=CONTENT)).status_code == 200
    assert matching.release(grant_id, ["preferences.music"]).status_code == 200
    assert error_of(post_match(matching, match_body(
        matching, grant_id, catalogue(), names=CONTENT))) == (429, "releases_exhausted")


def test_the_match_budget_per_epoch_is_429(matching: Served) -> None:
    terms = matching.owner_get("/v1/owner/terms").json()
    response = matching.put("/v1/owner/terms", headers=matching.owner_headers,
                            json={**terms, "matches_per_epoch": 2})
    assert response.status_code == 200, response.text
    matching.clock.offset += 6  # past the desk's cached reading of the terms
    grant_id = matching.grant(names=HISTORY)
    for size in (20, 21):
        body = match_body(matching, grant_id, catalogue(size))
        assert post_match(matching, body).status_code == 200
    refused = post_match(matching, match_body(matching, grant_id, catalogue(22)))
    assert error_of(refused) == (429, "budget_exhausted")
    assert "2 matches" in refused.json()["detail"]
    # A new epoch brings a new budget.
    matching.clock.offset += 7 * DAY
    matching.sync()
    assert post_match(matching, match_body(matching, grant_id, catalogue(22))).status_code == 200


def test_a_history_match_past_the_privacy_budget_is_429(
    embedded_chain: chains.EmbeddedChain, owner_vault: Vault, clock: Clock
) -> None:
    """THREATS row 39: each distinct list of a history match is charged its ε (20 for a
    match of 10) once per epoch, and the match that would take the company past its
    privacy budget is refused (before the terms' matches_per_epoch, 20, is reached); a list
    already answered costs nothing again."""
    fund(embedded_chain, owner_vault.owner_address)
    with running(daemon_settings(owner_vault), owner_vault, embedded_chain, clock) as served:
        grant_id = served.grant(names=[*CONTENT, *HISTORY])
        content = post_match(served, match_body(served, grant_id, catalogue(20), names=CONTENT))
        assert content.status_code == 200, content.text
        privacy = served.owner_get("/v1/owner/privacy").json()
        profile = privacy["companies"][0]["epsilon_spent"]  # the profile's entries
    # The same vault again, its budget 30 above that: one list of 10 (ε 20) fits, two do not.
    with running(daemon_settings(owner_vault, privacy_budget=profile + 30), owner_vault,
                 embedded_chain, clock) as served:
        served.sync()
        first = post_match(served, match_body(served, grant_id, catalogue(21)))
        assert first.status_code == 200, first.text
        second = post_match(served, match_body(served, grant_id, catalogue(22)))
        assert error_of(second) == (429, "budget_exhausted")
        assert "privacy budget" in second.json()["detail"]
        again = post_match(served, match_body(served, grant_id, catalogue(21)))
        assert again.status_code == 200, again.text
        assert again.json()["ranking"] == first.json()["ranking"]


def test_content_tier_ignores_titles_and_similar_lists(matching: Served) -> None:
    """THREATS row 39: under match.content a list crafted to probe one item learns nothing
    of it — the probe naming a favourite (or the canary) ranks exactly as one naming
    nothing the person knows; under match.history each distinct list is charged its ε and
    logged."""
    grant_id = matching.grant(names=[*CONTENT, *HISTORY])
    rankings = []
    for probe in ({"title": CANARY, "similar": [FAVOURITE, CANARY]},
                  {"title": "Never Heard Of It", "similar": ["Nobody At All"]}):
        listed = catalogue(**probe)
        response = post_match(matching, match_body(matching, grant_id, listed, names=CONTENT))
        assert response.status_code == 200, response.text
        rankings.append(response.json()["ranking"])
    assert rankings[0] == rankings[1]
    history = post_match(matching, match_body(
        matching, grant_id, catalogue(similar=FAVOURITE_REFS), names=HISTORY)).json()
    assert history["ranking"][0] == "m-0"
    spent = matching.owner_get("/v1/owner/privacy").json()["companies"][0]["epsilon_spent"]
    assert spent >= match.epsilon(match.HISTORY, 10)


def test_the_canary_never_appears_in_any_response(matching: Served) -> None:
    """THREATS row 29."""
    grant_id = matching.grant(names=HISTORY)
    probe = catalogue(similar=[CANARY])
    responses = [post_match(matching, match_body(matching, grant_id, probe)),
                 post_match(matching, match_body(matching, grant_id, catalogue(k := 25), k=3)),
                 post_match(matching, match_body(matching, grant_id, catalogue(19)))]
    assert k == 25
    for response in [*responses, *matching.responses]:
        assert CANARY.lower() not in response.text.lower()


def test_the_sdk_matches_and_verifies(matching: Served) -> None:
    grant_id = matching.grant(names=HISTORY)
    record = matching.daemon.index.grant(grant_id)
    assert record is not None
    grant = client.Grant(
        id=grant_id, owner=matching.vault.owner_address, company=record.company,
        scopes=HISTORY, starts_at=0, expires_at=2**40, max_releases=0, endpoint=matching.base,
    )
    account = ledger.local_account(matching.chain.dev_keys[1])
    with client.Company(account, matching.chain, matching.chain.ledger_address,
                        clock=matching.clock) as company:
        result = company.match(grant, catalogue(similar=FAVOURITE_REFS), k=5)
        assert result.ranking[0] == "m-0" and len(result.ranking) == 5
        with pytest.raises(client.ListSize):
            company.match(grant, catalogue(19))
        # Refused by the SDK itself (the vault's 400 would be client.Malformed).
        for wrong in ({"id": "x", "colour": "red"}, {"id": "x", "prior": "0.5"}, {"id": ""}):
            with pytest.raises(client.InvalidCandidates) as refused:
                company.match(grant, [*catalogue(19), wrong])
            assert "$[19]" in str(refused.value)  # names the candidate


def test_the_owner_previews_what_a_company_would_get_and_why(matching: Served) -> None:
    grant_id = matching.grant(names=HISTORY)
    listed = catalogue(similar=FAVOURITE_REFS)
    company = matching.chain.accounts[1]
    preview = matching.post("/v1/owner/match/preview", headers=matching.owner_headers,
                            json={"candidates": listed, "company": company, "k": 10})
    assert preview.status_code == 200, preview.text
    found = preview.json()
    assert found["tier"] == "match.history" and found["matches_left"] == 20
    assert found["epsilon"] == match.epsilon(match.HISTORY, 10)
    assert found["picks"][0]["id"] == "m-0"
    assert found["picks"][0]["reason"].startswith(
        "1 related artist you played 40 times; 4 related tracks you played 40 times")
    # The company then gets exactly the previewed ranking.
    answer = post_match(matching, match_body(matching, grant_id, listed)).json()
    assert answer["ranking"] == [pick["id"] for pick in found["picks"]]
    without_token = matching.post("/v1/owner/match/preview",
                                  json={"candidates": listed, "company": company})
    assert error_of(without_token) == (401, "unauthorized")
