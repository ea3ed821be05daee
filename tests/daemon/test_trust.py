"""The release-trust attacks, reproduced over real HTTP against a daemon on anvil.

The daemon talks to anvil through :class:`LyingNode`, a loopback JSON-RPC proxy in this file
that forwards every call and, when told to, invents logs, hides logs or freezes the head —
what a malicious or broken RPC provider can do. Nothing here is a mock: the chain, the
contract, the daemon, uvicorn and the HTTP calls are real.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import requests
from eth_abi.abi import encode as abi_encode

from vault import audit, ledger, scopes
from vault import chain as chains
from vault.store import Vault

from .conftest import MUSIC, Clock, Served, daemon_settings, running

MOOD = ["mood.current"]


class LyingNode:
    """A JSON-RPC proxy to ``upstream`` on a free loopback port.

    ``invented``: raw logs added to every ``eth_getLogs`` answer whose range holds them.
    ``hidden``: event topics removed from every ``eth_getLogs`` answer.
    ``frozen``: a block answered for ``latest`` (and its number for ``eth_blockNumber``).
    ``tampered``: every ``eth_call`` answer has its last bit flipped.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.invented: list[dict[str, Any]] = []
        self.hidden: set[str] = set()
        self.frozen: dict[str, Any] | None = None
        self.tampered = False
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls = body if isinstance(body, list) else [body]
                answers = [node.answer(call) for call in calls]
                out = json.dumps(answers if isinstance(body, list) else answers[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def forward(self, call: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = requests.post(self.upstream, json=call, timeout=10).json()
        return answer

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call.get("method"), call.get("params") or []
        if self.frozen is not None:
            if method == "eth_blockNumber":
                return {"jsonrpc": "2.0", "id": call["id"], "result": self.frozen["number"]}
            if method == "eth_getBlockByNumber" and params and params[0] == "latest":
                return {"jsonrpc": "2.0", "id": call["id"], "result": self.frozen}
        answer = self.forward(call)
        if method == "eth_call" and self.tampered and "result" in answer:
            word = bytearray(bytes.fromhex(answer["result"][2:]))
            word[-1] ^= 1
            answer["result"] = "0x" + word.hex()
        if method == "eth_getLogs" and "result" in answer:
            first, last = (int(params[0][k], 16) for k in ("fromBlock", "toBlock"))
            wanted = params[0].get("topics") or []
            kept = [log for log in answer["result"] if log["topics"][0] not in self.hidden]
            for log in self.invented:
                if first <= int(log["blockNumber"], 16) <= last and _matches(log, wanted):
                    kept.append(log)
            answer["result"] = kept
        return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _matches(log: dict[str, Any], wanted: list[Any]) -> bool:
    for position, topic in enumerate(wanted):
        if topic is None:
            continue
        options = topic if isinstance(topic, list) else [topic]
        if position >= len(log["topics"]) or log["topics"][position] not in options:
            return False
    return True


def _topic(address: str) -> str:
    return "0x" + ledger.address_bytes(address).rjust(32, b"\0").hex()


def _event_topic(name: str) -> str:
    return "0x" + ledger.codec().event_topics[name].hex()


class Attack:
    """The owner's daemon on anvil behind a :class:`LyingNode`, and the company's tools."""

    def __init__(self, served: Served, anvil: chains.AnvilNode, node: LyingNode,
                 upstream: chains.RpcChain) -> None:
        self.served = served
        self.anvil = anvil
        self.node = node
        self.upstream = upstream
        self.company = anvil.accounts[2]
        self.owner = served.vault.owner_address

    def client(self, account: Any) -> ledger.LedgerClient:
        return self.upstream.client(sender=account)

    def request(self, names: list[str], *, owner: str | None = None, duration: int = 86_400,
                price: int = 10**16, max_releases: int = 0) -> int:
        return self.client(self.company).request_access(
            owner or self.owner, scopes.bitmap(names), duration, price=price,
            max_releases=max_releases, catalog_hash=scopes.catalog_hash(), purpose="radio",
        )

    def approve(self, request_id: int) -> dict[str, Any]:
        self.served.sync()
        approval = self.served.owner_post(
            f"/v1/owner/requests/{request_id}/approve", {"submit": False}
        )
        assert approval.status_code == 200, approval.text
        body: dict[str, Any] = approval.json()
        return body

    def relay(self, request_id: int, approval: dict[str, Any]) -> None:
        self.client(self.company).approve_by_sig(
            request_id, approval["deadline"], bytes.fromhex(approval["signature"][2:])
        )

    def grant(self, names: list[str] = MUSIC) -> int:
        request_id = self.request(names)
        self.relay(request_id, self.approve(request_id))
        self.served.sync()
        return request_id

    def release(self, grant_id: int, names: list[str] = MUSIC) -> httpx.Response:
        return self.served.release(grant_id, names, key=bytes(self.company.key))

    def owner_view_ids(self) -> set[int]:
        ids: set[int] = set()
        for path in ("/v1/owner/requests?status=all", "/v1/owner/grants"):
            response = self.served.owner_get(path)
            assert response.status_code == 200, response.text
            ids |= {r["id"] for r in response.json()}
        earnings = self.served.owner_get("/v1/owner/earnings")
        assert earnings.status_code == 200, earnings.text
        return ids | {g["id"] for g in earnings.json()["grants"]}

    def invent(self, name: str, request_id: int, owner: str, company: str,
               data: bytes, *, block: int) -> None:
        """A log the node never saw on chain, in block ``block`` (a real block)."""
        real = self.upstream.w3.eth.get_block(block)
        self.node.invented.append({
            "address": self.upstream.ledger_address.lower(),
            "topics": [_event_topic(name), "0x" + request_id.to_bytes(32, "big").hex(),
                       _topic(owner), _topic(company)],
            "data": "0x" + data.hex(),
            "blockNumber": hex(block), "blockHash": "0x" + bytes(real["hash"]).hex(),
            "transactionHash": "0x" + secrets.token_hex(32),
            "transactionIndex": "0x0", "logIndex": hex(90 + len(self.node.invented)),
            "removed": False,
        })


@pytest.fixture
def attack(anvil: chains.AnvilNode, anvil_chain: chains.RpcChain, owner_vault: Vault,
           clock: Clock) -> Iterator[Attack]:
    anvil.w3.eth.send_transaction(
        {"from": anvil.addresses[0], "to": owner_vault.owner_address, "value": 10**18}
    )
    node = LyingNode(anvil.rpc_url)
    chain = chains.RpcChain(node.url, chain_id=anvil.chain_id,
                            ledger_address=anvil_chain.ledger_address, timeout=10.0)
    settings = daemon_settings(owner_vault, max_head_age_seconds=30.0, reconfirm_seconds=5.0)
    try:
        with running(settings, owner_vault, chain, clock) as served:
            yield Attack(served, anvil, node, anvil_chain)
    finally:
        chain.close()
        node.close()


def test_a_grant_the_company_approved_to_itself_releases_nothing(attack: Attack) -> None:
    """THREATS row 31: the company asks its own second address, approves from it, and signs a
    release for that id to this owner's daemon: 403, and no owner view shows the request."""
    accomplice = attack.anvil.accounts[3]
    foreign = attack.request(MUSIC, owner=accomplice.address, price=1)
    attack.client(accomplice).approve(foreign)
    attack.served.sync()
    assert attack.served.daemon.index.grant(foreign) is None
    refused = attack.release(foreign)
    assert refused.status_code == 403 and refused.json()["error"] == "not_granted"
    assert foreign not in attack.owner_view_ids()
    assert attack.served.owner_post(f"/v1/owner/grants/{foreign}/revoke").status_code == 404
    # The owner's own grant from the same company still works.
    mine = attack.grant()
    assert attack.release(mine).status_code == 200
    assert attack.owner_view_ids() >= {mine}


def test_a_grant_invented_by_the_node_releases_nothing(attack: Attack) -> None:
    """THREATS row 32: the node adds AccessRequested + AccessApproved logs for a request that
    does not exist on chain; the contract read refuses to confirm it."""
    invented_id = attack.client(attack.company).request_count() + 1
    block = attack.upstream.w3.eth.block_number
    start = attack.upstream.w3.eth.get_block(block)["timestamp"]
    requested = abi_encode(
        ["uint64", "uint96", "uint32", "uint32", "bytes32", "string"],
        [scopes.bitmap(MUSIC), 10**16, 86_400, 0, scopes.catalog_hash(), "invented"],
    )
    attack.invent("AccessRequested", invented_id, attack.owner, attack.company.address,
                  requested, block=block)
    attack.invent("AccessApproved", invented_id, attack.owner, attack.company.address,
                  abi_encode(["uint40"], [start]), block=block)
    attack.served.sync()
    assert attack.served.daemon.index.grant(invented_id) is None  # read, found absent, dropped
    refused = attack.release(invented_id)
    assert refused.status_code == 403 and refused.json()["error"] == "not_granted"
    assert invented_id not in attack.owner_view_ids()


def test_a_revoke_hidden_by_the_node_is_found_by_the_contract_read(attack: Attack) -> None:
    """THREATS row 32: the owner revoked on chain (from another device: this daemon never
    saw it locally) and the node hides the AccessRevoked log; re-confirmation finds it."""
    grant_id = attack.grant()
    assert attack.release(grant_id).status_code == 200
    attack.node.hidden.add(_event_topic("AccessRevoked"))
    owner_elsewhere = ledger.LedgerClient(
        attack.upstream.w3, attack.upstream.ledger_address,
        sender=ledger.local_account(bytes(attack.served.vault.owner_account().key)),
    )
    owner_elsewhere.revoke(grant_id)
    attack.served.clock.offset += 6  # past reconfirm_seconds: the next round reads again
    attack.served.sync()
    refused = attack.release(grant_id)
    assert refused.status_code == 403 and refused.json()["error"] == "revoked", refused.text


def test_a_frozen_head_fails_closed(attack: Attack) -> None:
    """THREATS row 32: the node keeps answering an old head. Time passes (the chain mines on,
    the daemon's clock moves); with an honest node releases go on, with the frozen one 503."""
    grant_id = attack.grant()
    # The session's anvil may run ahead of the wall clock (other tests move it forward):
    # the daemon's clock starts level with the chain's, as a real chain's would be.
    head = attack.upstream.w3.eth.get_block("latest")["timestamp"]
    attack.served.clock.offset = max(0.0, head - time.time())
    attack.served.sync()
    attack.node.frozen = attack.node.forward(
        {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}
    )["result"]
    attack.anvil.rpc("evm_increaseTime", 60)
    attack.anvil.rpc("evm_mine")
    attack.served.clock.offset += 60
    attack.served.sync()
    frozen = attack.release(grant_id)
    assert frozen.status_code == 503 and frozen.json()["error"] == "ledger_unavailable"
    attack.node.frozen = None
    attack.served.sync()
    assert attack.release(grant_id).status_code == 200


def test_the_owners_deny_wins_over_a_front_running_relay(attack: Attack) -> None:
    """THREATS row 33: the owner signed an approval, then changed their mind; the company saw
    the deny coming and relayed the approval first. The deny reverts on chain, yet the vault
    refuses every release and stops offering the signature; the owner is told to revoke."""
    request_id = attack.request(MUSIC)
    approval = attack.approve(request_id)
    attack.relay(request_id, approval)  # mined before the deny; the index has not seen it
    denied = attack.served.owner_post(f"/v1/owner/requests/{request_id}/deny")
    assert denied.status_code == 409, denied.text
    assert denied.json()["error"] == "consent_refused"
    assert f"vault revoke {request_id}" in denied.json()["detail"]
    attack.served.sync()
    assert attack.client(attack.company).get_request(request_id).status is ledger.Status.ACTIVE
    refused = attack.release(request_id)
    assert refused.status_code == 403 and refused.json()["error"] == "denied"
    offered = attack.served.get(f"/v1/requests/{request_id}/approval")
    assert offered.status_code == 403
    revoked = attack.served.owner_post(f"/v1/owner/grants/{request_id}/revoke")
    assert revoked.status_code == 200, revoked.text


def test_a_never_shared_scope_cannot_be_approved(attack: Attack) -> None:
    """The owner's terms say never mood.current: a manual approval is refused with a clear
    sentence, nothing is signed, and auto-approval rules cannot approve it either."""
    terms = attack.served.put(
        "/v1/owner/terms", headers=attack.served.owner_headers,
        json={"scopes_offered": MUSIC + MOOD, "scopes_never": MOOD},
    )
    assert terms.status_code == 200, terms.text
    rules = attack.served.put(
        "/v1/owner/rules", headers=attack.served.owner_headers,
        json={"rules": [{"name": "all", "scopes": MUSIC + MOOD}]},
    )
    assert rules.status_code == 200, rules.text
    request_id = attack.request(MUSIC + MOOD)
    attack.served.sync()  # auto-approval runs here and must not sign
    assert attack.served.get(f"/v1/requests/{request_id}/approval").status_code == 404
    refused = attack.served.owner_post(
        f"/v1/owner/requests/{request_id}/approve", {"submit": False}
    )
    assert refused.status_code == 409 and refused.json()["error"] == "consent_refused"
    assert "mood.current" in refused.json()["detail"]
    kinds = {e.kind for e in attack.served.daemon.audit.entries(limit=50)}
    assert audit.CONSENT_RECEIPT not in kinds


# --------------------------------------------------------------------------- unauthenticated


def test_a_flood_of_unsigned_requests_grows_the_log_by_a_bounded_number_of_rows(
    daemon: Served,
) -> None:
    """THREATS row 37: 1,000 requests that prove no sender are refused (most of them 429
    once the bucket is empty) and end up as one summary entry; the owner's own entries stay
    in view."""
    grant_id = daemon.grant()
    before = daemon.daemon.audit.verify().entries
    codes: dict[int, int] = {}
    with httpx.Client(base_url=daemon.base) as client:
        for n in range(1_000):
            body = daemon.release_body(grant_id, key=secrets.token_bytes(32))
            if n % 2:
                body["issued_at"] = 1  # stale as well as unsigned
            status = client.post("/v1/release", json=body).status_code
            codes[status] = codes.get(status, 0) + 1
    assert set(codes) <= {401, 429} and codes.get(429, 0) > 0, codes
    daemon.daemon.summarise_refusals()
    daemon.daemon.audit.flush()
    after = daemon.daemon.audit.verify()
    assert after.ok and after.entries - before == 1
    summary = daemon.daemon.audit.entries(limit=1)[0]
    assert summary.kind == audit.REFUSAL_SUMMARY
    assert sum(summary.detail["counts"].values()) == codes[401]
    recent = {e.kind for e in daemon.daemon.audit.entries(limit=100)}
    assert audit.CONSENT_RECEIPT in recent


def test_a_refusal_of_the_grants_own_company_is_logged_on_its_own(daemon: Served) -> None:
    """What a real company is refused stays an entry of its own: the owner sees it."""
    grant_id = daemon.grant()
    refused = daemon.release(grant_id, ["profile.region"])
    assert refused.status_code == 403
    daemon.daemon.audit.flush()
    last = daemon.daemon.audit.entries(limit=1)[0]
    assert (last.kind, last.reason, last.grant_id) == (audit.RELEASE, "scope_not_granted",
                                                       grant_id)


def test_a_cross_site_text_plain_post_is_refused_unread(daemon: Served) -> None:
    """THREATS row 37: a web page can POST text/plain without a preflight; 415, nothing
    logged."""
    grant_id = daemon.grant()
    daemon.daemon.audit.flush()
    before = daemon.daemon.audit.verify().entries
    body = json.dumps(daemon.release_body(grant_id))
    for media_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        refused = daemon.post("/v1/release", content=body, headers={"Content-Type": media_type})
        assert refused.status_code == 415
        assert refused.json()["error"] == "unsupported_media_type"
    assert daemon.post("/v1/release", content=body).status_code == 415  # no type at all
    daemon.daemon.summarise_refusals()
    daemon.daemon.audit.flush()
    assert daemon.daemon.audit.verify().entries == before
    typed = daemon.post("/v1/release", content=body,
                        headers={"Content-Type": "application/json; charset=utf-8"})
    assert typed.status_code == 200, typed.text


def test_the_openapi_schema_is_the_owners(daemon: Served) -> None:
    """The schema and its pages are not served to whoever reaches the port."""
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert daemon.get(path).status_code == 404
    assert daemon.get("/v1/owner/openapi.json").status_code == 401
    schema = daemon.owner_get("/v1/owner/openapi.json")
    assert schema.status_code == 200 and "/v1/release" in schema.json()["paths"]


def test_a_second_node_that_disagrees_fails_closed(
    anvil: chains.AnvilNode, anvil_chain: chains.RpcChain, owner_vault: Vault, clock: Clock
) -> None:
    """THREATS row 32 with VAULT_RPC_URL_CHECK: while the two nodes agree a grant is used;
    when the check node answers another state, no grant counts (503) until they agree."""
    anvil.w3.eth.send_transaction(
        {"from": anvil.addresses[0], "to": owner_vault.owner_address, "value": 10**18}
    )
    primary, check = LyingNode(anvil.rpc_url), LyingNode(anvil.rpc_url)
    chain = chains.RpcChain(primary.url, chain_id=anvil.chain_id,
                            ledger_address=anvil_chain.ledger_address, timeout=10.0)
    settings = daemon_settings(owner_vault, rpc_url_check=check.url, reconfirm_seconds=5.0)
    try:
        with running(settings, owner_vault, chain, clock) as served:
            attack = Attack(served, anvil, primary, anvil_chain)
            grant_id = attack.grant()
            assert attack.release(grant_id).status_code == 200
            check.tampered = True
            served.clock.offset += 6
            served.sync()
            assert served.daemon.last_error is not None
            assert "disagree" in served.daemon.last_error
            refused = attack.release(grant_id)
            assert refused.status_code == 503, refused.text
            check.tampered = False
            served.sync()
            assert attack.release(grant_id).status_code == 200
    finally:
        chain.close()
        primary.close()
        check.close()
