"""Owner routes over real HTTP: the token, consent, auto-approval, terms, rules."""

from __future__ import annotations

import httpx
import rfc8785
from eth_utils.crypto import keccak

from vault import ledger

from .conftest import MUSIC, Served


def test_owner_routes_need_the_token(daemon: Served) -> None:
    """THREATS row 26 (constant-time compare) and 9: the token is never written beside the
    vault by the app (only `vault serve`'s 0600 runtime file carries it, THREATS row 34)."""
    assert not (daemon.vault.home / "daemon.token").exists()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": daemon.token},
                    {"Authorization": "Basic " + daemon.token}):
        response = daemon.get("/v1/owner/requests", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert daemon.token not in response.text
    assert daemon.owner_get("/v1/owner/requests").status_code == 200


def test_approval_route_serves_the_owner_signature_and_refuses_denied(daemon: Served) -> None:
    request_id = daemon.request()
    daemon.sync()
    assert daemon.get(f"/v1/requests/{request_id}/approval").json()["error"] == "not_found"
    listed = daemon.owner_get("/v1/owner/requests?status=pending").json()
    assert [r["id"] for r in listed] == [request_id]
    assert "playlist suggestions" in listed[0]["consent_statement"]
    assert listed[0]["catalog_matches"] is True
    approved = daemon.owner_post(f"/v1/owner/requests/{request_id}/approve", {"submit": False})
    served = daemon.get(f"/v1/requests/{request_id}/approval").json()
    assert served["signature"] == approved.json()["signature"]
    digest = daemon.domain.approval_digest(request_id, served["deadline"])
    assert ledger.recover_signer(digest, served["signature"]) == daemon.vault.owner_address

    other = daemon.request()
    daemon.sync()
    denied = daemon.owner_post(f"/v1/owner/requests/{other}/deny")
    assert denied.status_code == 200, denied.text
    refused = daemon.get(f"/v1/requests/{other}/approval")
    assert (refused.status_code, refused.json()["error"]) == (403, "denied")
    daemon.sync()
    statuses = {r["id"]: r["status"]
                for r in daemon.owner_get("/v1/owner/requests?status=all").json()}
    assert statuses[other] == "denied"


def test_owner_submitted_approval_activates_the_grant(daemon: Served) -> None:
    request_id = daemon.request()
    daemon.sync()
    approved = daemon.owner_post(f"/v1/owner/requests/{request_id}/approve", {"submit": True})
    assert approved.status_code == 200 and approved.json()["tx_hash"].startswith("0x")
    daemon.sync()
    grants = daemon.owner_get("/v1/owner/grants").json()
    assert [(g["id"], g["status"]) for g in grants] == [(request_id, "active")]
    assert daemon.release(request_id).status_code == 200
    again = daemon.owner_post(f"/v1/owner/requests/{request_id}/approve")
    assert (again.status_code, again.json()["error"]) == (409, "already_decided")
    assert daemon.owner_post("/v1/owner/requests/999/approve").status_code == 404


def test_auto_approval_rules_answer_new_requests(daemon: Served) -> None:
    rules = {
        "rules": [{"name": "music for pay", "scopes": MUSIC, "min_price_per_day_wei": 10**14,
                   "min_price_wei": 0, "min_duration_seconds": 86_400,
                   "max_duration_seconds": 60 * 86_400, "companies_allow": None,
                   "companies_deny": [], "max_releases_at_most": None}],
        "never_share": ["mood.current"],
    }
    assert daemon.put("/v1/owner/rules", json=rules, headers=daemon.owner_headers).json() == rules
    fits = daemon.request(names=MUSIC)
    too_cheap = daemon.request(names=MUSIC, price=1000)
    too_much = daemon.request(names=["preferences.music", "mood.current"])
    daemon.sync()
    assert daemon.get(f"/v1/requests/{fits}/approval").status_code == 200
    assert daemon.get(f"/v1/requests/{too_cheap}/approval").status_code == 404
    assert daemon.get(f"/v1/requests/{too_much}/approval").status_code == 404
    kinds = [e["kind"] for e in daemon.owner_get("/v1/owner/log").json()]
    assert "auto_approve" in kinds and "rules" in kinds


def test_terms_are_served_with_their_hash(daemon: Served) -> None:
    terms = {"min_price_per_day_wei": 10**14, "max_duration_seconds": 86_400 * 90,
             "scopes_offered": MUSIC, "scopes_never": ["mood.current"], "note": "hi",
             "matches_per_epoch": 20}
    assert daemon.put("/v1/owner/terms", json=terms, headers=daemon.owner_headers).json() == terms
    public = daemon.get("/v1/terms").json()
    assert public["terms"] == terms and public["owner"] == daemon.vault.owner_address
    assert public["terms_hash"] == "0x" + bytes(keccak(rfc8785.dumps(terms))).hex()
    published = daemon.owner_post("/v1/owner/terms/publish", {"endpoint": daemon.base})
    assert published.status_code == 200 and published.json()["terms_hash"] == public["terms_hash"]
    assert daemon.get("/v1/terms").json()["endpoint"] == daemon.base
    bad = daemon.put("/v1/owner/terms", json={**terms, "scopes_offered": ["nope.nope"]},
                     headers=daemon.owner_headers)
    assert (bad.status_code, bad.json()["error"]) == (400, "malformed")


def test_earnings_claim_and_withdraw(daemon: Served) -> None:
    grant_id = daemon.grant(duration=3600, price=10**16)
    daemon.on_chain(lambda: daemon.chain.time_travel(7200))
    earnings = daemon.owner_get("/v1/owner/earnings").json()
    assert earnings["grants"][0]["id"] == grant_id
    assert earnings["claimable_wei"] == 10**16
    claimed = daemon.owner_post("/v1/owner/claim", {"ids": None})
    assert claimed.status_code == 200 and claimed.json()["claimed_wei"] == 10**16
    withdrawn = daemon.owner_post("/v1/owner/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_wei"] == 10**16


def test_unknown_routes_and_methods_use_the_error_body(daemon: Served) -> None:
    response = httpx.get(daemon.base + "/nope")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
