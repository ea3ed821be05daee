"""POST /v1/release over real HTTP: every status path of DESIGN.md's release protocol."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import rfc8785
from eth_utils.crypto import keccak

from vault import chain as chains
from vault import ledger, privacy, scopes
from vault.daemon.release import AnswerCache
from vault.eth.secp256k1 import SECP256K1_N

from .conftest import CANARY, MUSIC, MUSIC_AGE, Served, daemon_settings, fund, running


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error", "detail"}
    return response.status_code, body["error"]


def test_release_answers_preferences_with_a_verifiable_owner_receipt(daemon: Served) -> None:
    grant_id = daemon.grant()
    response = daemon.release(grant_id, MUSIC_AGE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"grant_id", "owner", "company", "preferences", "receipt"}
    assert body["grant_id"] == grant_id
    assert body["owner"] == daemon.vault.owner_address
    assert body["company"] == daemon.chain.accounts[1]
    assert set(body["preferences"]) == set(MUSIC_AGE)
    assert body["preferences"]["preferences.music"]["status"] == "ok"
    receipt = body["receipt"]
    content_hash = bytes(keccak(rfc8785.dumps(body["preferences"])))
    assert receipt["content_hash"] == "0x" + content_hash.hex()
    digest = daemon.domain.receipt_digest(
        grant_id, body["company"], content_hash, receipt["issued_at"]
    )
    assert ledger.recover_signer(digest, receipt["signature"]) == daemon.vault.owner_address


def test_malformed_bodies_are_400(daemon: Served) -> None:
    """THREATS rows 16 and 24 (unknown scope name; nesting refused without a server error)."""
    grant_id = daemon.grant()
    good = daemon.release_body(grant_id)
    bad_bodies = [
        {**good, "scopes": ["nope.unknown"]},
        {**good, "nonce": "0x1234"},
        {**good, "signature": "0xzz"},
        {**good, "grant_id": -1},
        {**good, "issued_at": "yesterday"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "nonce"},
        [good],
    ]
    for body in bad_bodies:
        assert error_of(daemon.post("/v1/release", json=body)) == (400, "malformed"), body
    for raw in (b"{not json", b"[" * 5000 + b"]" * 5000, b""):
        response = daemon.post(
            "/v1/release", content=raw, headers={"content-type": "application/json"}
        )
        assert error_of(response) == (400, "malformed")


def test_bad_signatures_are_401(daemon: Served) -> None:
    """THREATS rows 11 and 12: forged, malleated (high-s), wrong v, other chain, other ledger,
    other type."""
    grant_id = daemon.grant()
    good = daemon.release_body(grant_id)
    raw = bytes.fromhex(good["signature"][2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    forged = "0x" + secrets.token_hex(64) + "1b"
    wrong_v = "0x" + (raw[:64] + b"\x01").hex()
    other_chain = ledger.Domain(daemon.chain.chain_id + 1, daemon.chain.ledger_address)
    other_ledger = ledger.Domain(daemon.chain.chain_id, "0x" + "11" * 20)
    key = daemon.chain.dev_keys[1]
    other_type = ledger.sign_digest(
        key, daemon.domain.approval_digest(grant_id, good["issued_at"])
    )
    bodies = [
        {**good, "signature": "0x" + high_s.hex()},
        {**good, "signature": forged},
        {**good, "signature": wrong_v},
        daemon.release_body(grant_id, domain=other_chain),
        daemon.release_body(grant_id, domain=other_ledger),
        {**good, "signature": "0x" + other_type.hex()},
    ]
    for body in bodies:
        assert error_of(daemon.post("/v1/release", json=body)) == (401, "bad_signature")
    assert daemon.post("/v1/release", json=good).status_code == 200


def test_issued_at_outside_the_skew_window_is_401(daemon: Served) -> None:
    """THREATS row 13."""
    grant_id = daemon.grant()
    now = int(daemon.clock())
    # 30 s beyond the 300 s window: the server reads its clock a moment after the test does,
    # and `now` is already rounded down, so a 1 s margin flaked on a loaded machine.
    for issued_at in (now - 330, now + 330):
        response = daemon.release(grant_id, issued_at=issued_at)
        assert error_of(response) == (401, "stale_request")


def test_scope_not_in_the_grant_is_403(daemon: Served) -> None:
    """THREATS row 16."""
    grant_id = daemon.grant(names=MUSIC)
    response = daemon.release(grant_id, ["preferences.music", "mood.current"])
    assert error_of(response) == (403, "scope_not_granted")


def test_another_company_is_403_wrong_company(daemon: Served) -> None:
    """THREATS row 20."""
    grant_id = daemon.grant(company=1)
    daemon.grant(company=2)
    response = daemon.release(grant_id, company=2)
    assert error_of(response) == (403, "wrong_company")


def test_unknown_and_pending_grants_are_403_not_granted(daemon: Served) -> None:
    pending = daemon.request()
    daemon.sync()
    assert error_of(daemon.release(pending)) == (403, "not_granted")
    assert error_of(daemon.release(999)) == (403, "not_granted")


def test_revoke_stops_releases_before_the_index_sees_it(daemon: Served) -> None:
    """THREATS row 15: revoked locally (index not yet synced), then on chain."""
    grant_id = daemon.grant()
    assert daemon.release(grant_id).status_code == 200
    revoked = daemon.owner_post(f"/v1/owner/grants/{grant_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["company_refund_wei"] > 0
    assert daemon.daemon.index.grant(grant_id).status == ledger.Status.ACTIVE  # not synced
    assert error_of(daemon.release(grant_id)) == (403, "revoked")
    daemon.sync()
    assert error_of(daemon.release(grant_id)) == (403, "revoked")


def test_expired_grant_is_403_expired(daemon: Served) -> None:
    """THREATS row 14."""
    grant_id = daemon.grant(duration=3600)
    assert daemon.release(grant_id).status_code == 200
    daemon.clock.offset = 3600 + 120  # block timestamps run a little ahead of the clock
    daemon.sync()
    assert error_of(daemon.release(grant_id)) == (403, "expired")
    kinds = [e["kind"] for e in daemon.owner_get("/v1/owner/log?limit=50").json()]
    assert "termination_receipt" in kinds


def test_replayed_nonce_is_409(daemon: Served) -> None:
    """THREATS row 10."""
    grant_id = daemon.grant()
    body = daemon.release_body(grant_id)
    assert daemon.post("/v1/release", json=body).status_code == 200
    assert error_of(daemon.post("/v1/release", json=body)) == (409, "replayed")


def test_replay_is_refused_after_a_daemon_restart(daemon: Served) -> None:
    """THREATS row 10: the replay store survives a restart."""
    grant_id = daemon.grant(max_releases=2)
    body = daemon.release_body(grant_id)
    assert daemon.post("/v1/release", json=body).status_code == 200
    settings = daemon_settings(daemon.vault)
    with running(settings, daemon.vault, daemon.chain, daemon.clock) as again:
        assert error_of(again.post("/v1/release", json=body)) == (409, "replayed")
        assert again.release(grant_id).status_code == 200
        assert error_of(again.release(grant_id)) == (429, "releases_exhausted")


def test_oversized_bodies_are_413(daemon: Served) -> None:
    """THREATS row 24: by Content-Length, and streamed without one."""
    big = b"{" + b" " * 20_000 + b"}"
    response = daemon.post("/v1/release", content=big,
                           headers={"content-type": "application/json"})
    assert error_of(response) == (413, "too_large")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 1000

    response = daemon.post("/v1/release", content=chunks(),
                           headers={"content-type": "application/json"})
    assert error_of(response) == (413, "too_large")


def test_max_releases_is_429(daemon: Served) -> None:
    grant_id = daemon.grant(max_releases=2)
    assert [daemon.release(grant_id).status_code for _ in range(2)] == [200, 200]
    assert error_of(daemon.release(grant_id)) == (429, "releases_exhausted")
    listed = daemon.owner_get(f"/v1/owner/requests/{grant_id}").json()
    assert listed["releases_used"] == 2


def test_company_daily_budget_is_429(embedded_chain, owner_vault, clock) -> None:  # type: ignore[no-untyped-def]
    settings = daemon_settings(owner_vault, company_releases_per_day=2)
    with running(settings, owner_vault, embedded_chain, clock) as served:
        first = served.grant()
        second = served.grant()
        assert served.release(first).status_code == 200
        assert served.release(second).status_code == 200
        assert error_of(served.release(first)) == (429, "budget_exhausted")


def test_concurrent_releases_never_exceed_max_releases(daemon: Served) -> None:
    """THREATS row 28: 40 racing requests, maxReleases 5 → exactly 5 releases."""
    grant_id = daemon.grant(max_releases=5)
    bodies = [daemon.release_body(grant_id) for _ in range(40)]
    with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(
            lambda body: client.post(daemon.base + "/v1/release", json=body).status_code,
            bodies,
        ))
    assert codes.count(200) == 5
    assert codes.count(429) == 35
    assert daemon.daemon.audit.release_counts()[0] == {grant_id: 5}


def test_stale_index_is_503(daemon: Served) -> None:
    """THREATS row 18."""
    grant_id = daemon.grant()
    daemon.clock.offset = 31  # no sync round for longer than the bound
    assert error_of(daemon.release(grant_id)) == (503, "ledger_unavailable")
    daemon.sync()
    assert daemon.release(grant_id).status_code == 200


def test_chain_down_is_503(owner_vault, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """THREATS row 19: the node stops; the index goes stale; releases fail closed."""
    port = chains.free_port()
    process = chains.start_anvil(port=port)
    try:
        url = f"http://127.0.0.1:{port}"
        w3 = chains.http_web3(url, timeout=5.0)
        accounts = chains.anvil_dev_accounts()
        address = ledger.deploy_ledger(w3, sender=accounts[0].address)
        rpc = chains.RpcChain(url, chain_id=chains.ANVIL_CHAIN_ID, ledger_address=address,
                              timeout=2.0)
        w3.eth.send_transaction(
            {"from": accounts[0].address, "to": owner_vault.owner_address, "value": 10**18}
        )
        with running(daemon_settings(owner_vault), owner_vault, rpc, clock) as served:
            served.chain = _AnvilAsChain(rpc, accounts)
            grant_id = served.grant()
            assert served.release(grant_id).status_code == 200
            process.terminate()
            process.wait(timeout=10)
            served.sync()  # fails: the node is gone
            assert served.daemon.last_error is not None
            clock.offset = 31
            assert error_of(served.release(grant_id)) == (503, "ledger_unavailable")
            health = served.get("/v1/health").json()
            assert health["index_lag_seconds"] > 30
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


class _AnvilAsChain:
    """The harness's view of an RpcChain: anvil's dev accounts and keys."""

    def __init__(self, rpc: chains.RpcChain, accounts) -> None:  # type: ignore[no-untyped-def]
        self.rpc = rpc
        self.chain_id = rpc.chain_id
        self.ledger_address = rpc.ledger_address
        self.w3 = rpc.w3
        self.accounts = [a.address for a in accounts]
        self.dev_keys = [bytes(a.key) for a in accounts]
        self._signers = accounts

    def client(self, sender: str) -> ledger.LedgerClient:
        return self.rpc.client(self._signers[self.accounts.index(sender)])


def test_log_records_releases_and_refusals_and_detects_an_edit(daemon: Served) -> None:
    grant_id = daemon.grant(names=MUSIC)
    assert daemon.release(grant_id).status_code == 200
    assert daemon.release(grant_id, ["mood.current"]).status_code == 403
    entries = daemon.owner_get("/v1/owner/log").json()
    releases = [e for e in entries if e["kind"] == "release"]
    assert [(e["outcome"], e["reason"]) for e in releases] == [
        ("released", None), ("refused", "scope_not_granted")
    ]
    assert {"approve", "consent_receipt"} <= {e["kind"] for e in entries}
    assert daemon.owner_get("/v1/owner/log/verify").json() == {
        "ok": True, "entries": len(entries), "first_bad_seq": None
    }
    daemon.daemon.audit.flush()
    edited = releases[0]["seq"]
    conn = sqlite3.connect(daemon.vault.home / "audit.sqlite")
    conn.execute("UPDATE entries SET scopes = '[\"mood.current\"]' WHERE seq = ?", (edited,))
    conn.commit()
    conn.close()
    verdict = daemon.owner_get("/v1/owner/log/verify").json()
    assert verdict["ok"] is False and verdict["first_bad_seq"] == edited


def test_canary_never_leaves_the_vault(daemon: Served, caplog) -> None:  # type: ignore[no-untyped-def]
    """THREATS row 29 (and 9): the planted raw track appears in no response and no log line."""
    grant_id = daemon.grant(names=[s.name for s in scopes.CATALOG])
    every = [s.name for s in scopes.CATALOG]
    assert daemon.release(grant_id, every).status_code == 200
    daemon.release(grant_id, every, nonce="0x" + "00" * 32)
    daemon.release(grant_id, every, company=2)
    daemon.post("/v1/release", json={"grant_id": grant_id, "scopes": [CANARY]})
    for path in ("/v1/owner/log?limit=1000", "/v1/owner/grants", "/v1/owner/requests?status=all",
                 "/v1/owner/rules", "/v1/owner/terms"):
        daemon.owner_get(path)
    daemon.get("/v1/health")
    daemon.get("/v1/terms")
    daemon.daemon.audit.flush()
    for response in daemon.responses:
        assert CANARY not in response.text
        assert CANARY.lower() not in response.text.lower()
    assert CANARY.encode() not in (daemon.vault.home / "audit.sqlite").read_bytes()
    assert CANARY not in caplog.text


def test_unknown_host_header_is_403(daemon: Served) -> None:
    """THREATS row 27: DNS rebinding."""
    for host in ("evil.example", "evil.example:8787", "127.0.0.1.evil.example", "10.0.0.1"):
        response = daemon.get("/v1/health", headers={"Host": host})
        assert error_of(response) == (403, "forbidden_host")
    port = daemon.base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert daemon.get("/v1/health", headers={"Host": host}).status_code == 200


def test_raw_socket_without_host_is_refused(daemon: Served) -> None:
    host, port = daemon.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.0\r\n\r\n")
        answer = sock.recv(4096)
    assert b" 403 " in answer.split(b"\r\n", 1)[0]


# --- the answer cache, without HTTP -------------------------------------------------------

SECRET = bytes(range(32))
MUSIC_SCOPE = scopes.scope("preferences.music")
GENRES = ["jazz", "electronic", "indie", "soul", "pop"]


def music_value() -> dict[str, Any]:
    return {"status": "ok", "genres": [{"genre": g, "weight": 0.2} for g in GENRES]}


def expected_answer(values: dict[str, Any]) -> dict[str, Any]:
    return {name: privacy.release_value(scopes.scope(name), value, secret=SECRET)
            for name, value in values.items()}


def test_answer_is_the_noised_canonical_preferences_their_hash_and_revealed_entries() -> None:
    for i in range(50):  # enough secrets that some answers carry noise
        cache = AnswerCache(noise_secret=i.to_bytes(32, "big"))
        values = {"preferences.music": music_value(), "profile.age_range": {"status": "ok",
                                                                            "range": "25-34"}}
        answer = cache.answer(("preferences.music", "profile.age_range"), values)
        released = privacy.release_value(MUSIC_SCOPE, values["preferences.music"],
                                         secret=i.to_bytes(32, "big"))
        assert answer.preferences == {**values, "preferences.music": released}
        assert answer.canonical == rfc8785.dumps(answer.preferences)
        assert answer.content_hash == keccak(answer.canonical)
        assert answer.content_hash_hex == "0x" + answer.content_hash.hex()
        assert answer.revealed == privacy.revealed_entries(
            MUSIC_SCOPE, values["preferences.music"], released, secret=i.to_bytes(32, "big"))


def test_answer_is_reused_while_the_values_are_unchanged() -> None:
    cache = AnswerCache(noise_secret=SECRET)
    names = ("preferences.music",)
    values = {"preferences.music": music_value()}
    first = cache.answer(names, values)
    assert cache.answer(names, values) is first
    assert cache.answer(names, {"preferences.music": music_value()}) is first  # equal values

    refreshed = {"preferences.music": music_value()}
    refreshed["preferences.music"]["genres"][0]["weight"] = 0.6
    changed = cache.answer(names, refreshed)
    assert changed is not first
    assert changed.preferences == expected_answer(refreshed)


def test_answer_cache_keeps_at_most_max_entries_dropping_the_oldest() -> None:
    cache = AnswerCache(noise_secret=SECRET, max_entries=2)
    values = {"preferences.music": music_value(), "profile.age_range": {"status": "ok",
                                                                        "range": "25-34"}}
    first, second = (cache.answer(names, values)
                     for names in (("preferences.music",), ("profile.age_range",)))
    cache.answer(("preferences.music", "profile.age_range"), values)
    assert cache.answer(("profile.age_range",), values) is second
    assert cache.answer(("preferences.music",), values) is not first


def test_releases_go_on_after_the_signing_process_dies(daemon: Served) -> None:
    grant_id = daemon.grant()
    assert daemon.release(grant_id).status_code == 200
    first = daemon.daemon.signatures.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while daemon.daemon.signatures.pid == first:  # until the daemon has seen it go
        assert time.monotonic() < deadline
        time.sleep(0.01)
    response = daemon.release(grant_id)
    assert response.status_code == 200, response.text
    assert daemon.daemon.signatures.pid not in (None, first)


# --- what the mutation check found untested (issue 19) ------------------------------------


def test_a_replay_near_the_end_of_the_skew_window_is_409(daemon: Served) -> None:
    """THREATS row 10: a request issued at T+200 and replayed at T+301 — after the book
    pruned old nonces, but while the request is still inside the 300 s window — is refused."""
    grant_id = daemon.grant()
    assert daemon.release(grant_id).status_code == 200  # T: the book prunes for the first time
    daemon.clock.offset += 200
    daemon.sync()
    late = daemon.release_body(grant_id)
    assert daemon.post("/v1/release", json=late).status_code == 200
    daemon.clock.offset += 101
    daemon.sync()
    assert daemon.release(grant_id).status_code == 200  # T+301: the book prunes again
    assert error_of(daemon.post("/v1/release", json=late)) == (409, "replayed")


class _WithNoiseSecret:
    """An unlocked vault whose noise secret is the one given (every other call goes to the
    real vault): lets a test pick secrets whose noise is known to differ."""

    def __init__(self, vault: Any, noise: bytes) -> None:
        self._vault = vault
        self._noise = noise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vault, name)

    def secret(self, name: str) -> bytes:
        return self._noise if name == "noise" else bytes(self._vault.secret(name))


def test_released_noise_comes_from_the_vaults_own_secret(  # type: ignore[no-untyped-def]
    embedded_chain, owner_vault, clock
) -> None:
    """THREATS row 38: the noise is keyed by the vault's secret, so it cannot be predicted
    (or removed) by anyone without it. Two secrets are picked for which the noise on the
    music answer differs; the same vault served under each gives each one's answer — a
    constant secret would give both the same."""
    fund(embedded_chain, owner_vault.owner_address)
    value = owner_vault.derived(MUSIC)["preferences.music"]
    assert value["status"] == "ok"

    def noised(secret: bytes) -> dict[str, Any]:
        return privacy.release_value(MUSIC_SCOPE, value, secret=secret)

    candidates = [bytes([n]) * 32 for n in range(1, 256)]
    plain = next(s for s in candidates if noised(s) == value)
    noisy = next(s for s in candidates if noised(s) != value)
    answers = []
    grant_id = None
    for secret in (noisy, plain):
        served_vault = _WithNoiseSecret(owner_vault, secret)
        settings = daemon_settings(owner_vault)
        with running(settings, served_vault, embedded_chain, clock) as served:  # type: ignore[arg-type]
            served.sync()
            grant_id = grant_id or served.grant()
            response = served.release(grant_id)
            assert response.status_code == 200, response.text
            answers.append(response.json()["preferences"]["preferences.music"])
    assert answers == [noised(noisy), value]
    assert answers[0] != answers[1]


def test_privacy_budget_holds_across_a_daemon_restart(  # type: ignore[no-untyped-def]
    embedded_chain, owner_vault, clock
) -> None:
    """THREATS row 38: a budget of one music answer. The first answer is charged its
    entries; after a restart, a week later, the restarted daemon (its book rebuilt from the
    log) refuses noisy scopes with a detail that says what was spent — and serves others."""
    fund(embedded_chain, owner_vault.owner_address)
    budget = privacy.worst_case_epsilon(scopes.bitmap(MUSIC))
    with running(daemon_settings(owner_vault, privacy_budget=budget), owner_vault,
                 embedded_chain, clock) as served:
        grant_id = served.grant(duration=60 * 86_400)
        assert served.release(grant_id, MUSIC).status_code == 200
    clock.offset += privacy.EPOCH_SECONDS
    with running(daemon_settings(owner_vault, privacy_budget=budget), owner_vault,
                 embedded_chain, clock) as again:
        again.sync()
        refused = again.release(grant_id, MUSIC)
        assert error_of(refused) == (429, "budget_exhausted")
        assert refused.json()["detail"].startswith("this company has spent ε ")
        assert f"of its privacy budget of ε {budget:g}" in refused.json()["detail"]
        assert again.release(grant_id, ["profile.age_range"]).status_code == 200
