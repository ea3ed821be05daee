"""The CLI finds `vault serve` on any port and proves it before any secret moves
(THREATS row 34: a process squatting the daemon's port, a stale token file).

Real processes over real HTTP on a real anvil: `vault serve --port <free port>` (never the
default 8787) as a subprocess, the CLI as subprocesses, and a squatter — a tiny HTTP server
in this test that records every byte it is sent and answers whatever would fool a CLI that
trusted it (a made-up proof, a fake success).
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault import chain as chains
from vault import client, crypto, ledger
from vault.daemon import runtime
from vault.importers import importer_for, sample_exports
from vault.store import Vault, take_lock

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
MUSIC_AGE = ["preferences.music", "profile.age_range"]
EXIT_UNVERIFIED = 14


@dataclass
class Owner:
    home: Path
    address: str
    env: dict[str, str]  # no VAULT_PASSPHRASE: a command that needs it went in process
    chain: chains.RpcChain
    anvil: Any

    def cli(self, *args: str, passphrase: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        env.pop("VAULT_PASSPHRASE", None)
        if passphrase:
            env["VAULT_PASSPHRASE"] = PASS
        return subprocess.run([VAULT, *args], capture_output=True, text=True, timeout=120,
                              env=env, stdin=subprocess.DEVNULL)

    def company(self) -> client.Company:
        return client.Company(self.anvil.accounts[1], self.chain, self.chain.ledger_address,
                              poll_interval=0.02)

    def status(self, request_id: int) -> ledger.Status:
        return self.chain.client().get_request(request_id).status


@pytest.fixture
def owner(anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path) -> Owner:
    home = tmp_path / "owner"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        for kind, path in sample_exports():
            with path.open("rb") as stream:
                vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
        address = vault.owner_address
    anvil.w3.eth.send_transaction({"from": anvil.addresses[0], "to": address, "value": 10**18})
    env = {
        "VAULT_HOME": str(home), "VAULT_CHAIN": "rpc", "VAULT_RPC_URL": anvil.rpc_url,
        "VAULT_CHAIN_ID": str(anvil.chain_id), "VAULT_LEDGER": anvil_chain.ledger_address,
        "VAULT_SYNC_INTERVAL_SECONDS": "0.1",
    }
    return Owner(home, address, env, anvil_chain, anvil)


def free_port_not_default() -> int:
    port = chains.free_port()
    return port if port != 8787 else free_port_not_default()


@contextmanager
def serving(owner: Owner, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`vault serve --port P` for the owner's home, once its runtime file names it."""
    port = free_port_not_default()
    env = {**os.environ, **owner.env, "VAULT_PASSPHRASE": PASS}
    log = tmp_path / f"serve-{port}.txt"
    with log.open("wb") as stderr:
        process = subprocess.Popen([VAULT, "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            published = runtime.read(owner.home)
            if published is not None and published.pid == process.pid:
                break
            assert time.monotonic() < deadline, "vault serve did not publish its runtime file"
            time.sleep(0.1)
        assert published.port == port
        assert httpx.get(published.url + "/v1/health", timeout=5).status_code == 200
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class Squatter:
    """An HTTP server on ``port`` that records every request and tries to look like the
    daemon: a made-up identity proof for the owner, a fake success for anything else."""

    port: int
    owner: str
    answer: str = "forged"  # forged | not_found | garbage | huge
    seen: list[bytes] = field(default_factory=list)

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        squatter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                squatter.seen.append(
                    self.requestline.encode() + b"\r\n" + bytes(self.headers) + body
                )
                status, payload = squatter.reply(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    def reply(self, path: str) -> tuple[int, bytes]:
        if self.answer == "not_found":
            return 404, b'{"error": "not_found", "detail": "no"}'
        if self.answer == "garbage":
            return 200, b"<html>hello</html>"
        if self.answer == "huge":
            return 200, b'{"owner": "' + b"0" * 2_000_000 + b'"}'
        if path.startswith("/v1/identity"):
            proof = "0x" + secrets.token_hex(32)
            return 200, json.dumps({"owner": self.owner, "proof": proof}).encode()
        # What a fake revoke / log verify would say.
        return 200, json.dumps({"ok": True, "entries": 0, "first_bad_seq": None}).encode()


@contextmanager
def squatting(squatter: Squatter) -> Iterator[Squatter]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", squatter.port), squatter.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield squatter
    finally:
        server.shutdown()
        server.server_close()


def assert_never_saw_the_token(squatter: Squatter, token: str) -> None:
    for raw in squatter.seen:
        assert b"authorization" not in raw.lower()
        assert token.encode() not in raw


def one_line(stderr: str) -> None:
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


# --------------------------------------------------------------------------- the daemon


def test_the_cli_finds_the_daemon_on_any_port_and_approves_revokes_and_logs_through_it(
    owner: Owner, tmp_path: Path
) -> None:
    """THREATS row 34: found from the runtime file (0600), not from VAULT_PORT; every
    command below runs without a passphrase, so only the daemon can have answered."""
    with serving(owner, tmp_path) as (process, port):
        path = owner.home / runtime.RUNTIME_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        published = runtime.read(owner.home)
        assert published is not None
        assert (published.port, published.pid, published.owner) == (port, process.pid,
                                                                     owner.address)
        assert not (owner.home / "daemon.token").exists()
        with owner.company() as company:
            request = company.request_access(owner.address, MUSIC_AGE, 30 * 86_400,
                                             3 * 10**16, "playlist suggestions")
        deadline = time.monotonic() + 30
        while True:
            listed = owner.cli("requests", "--json")
            assert listed.returncode == 0, listed.stderr
            if [r["id"] for r in json.loads(listed.stdout)] == [request.id]:
                break
            assert time.monotonic() < deadline, "the daemon did not index the request"
            time.sleep(0.2)
        approved = owner.cli("approve", str(request.id), "--yes", "--submit")
        assert approved.returncode == 0, approved.stderr
        assert owner.status(request.id) is ledger.Status.ACTIVE
        revoked = owner.cli("revoke", str(request.id), "--yes", "--json")
        assert revoked.returncode == 0, revoked.stderr
        assert owner.status(request.id) is ledger.Status.REVOKED
        logged = owner.cli("log", "--json")
        assert logged.returncode == 0, logged.stderr
        assert {"approve", "revoke"} <= {entry["kind"] for entry in json.loads(logged.stdout)}
        verified = owner.cli("log", "verify", "--json", "--daemon")
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"]
        for result in (listed, approved, revoked, logged, verified):
            assert published.token.reveal() not in result.stdout + result.stderr

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not path.exists()  # removed on a clean stop


def test_after_kill_9_a_squatter_on_the_port_never_sees_the_token(
    owner: Owner, tmp_path: Path
) -> None:
    """THREATS row 34: the killed daemon's runtime file is stale (its pid is gone and the
    vault's lock is free); the CLI removes it and works in process, sending the squatter
    nothing at all — its revoke is real, on chain, not the squatter's fake success."""
    with serving(owner, tmp_path) as (process, port):
        published = runtime.read(owner.home)
        assert published is not None
        with owner.company() as company:
            request = company.request_access(owner.address, MUSIC_AGE, 30 * 86_400,
                                             3 * 10**16, "playlist suggestions")
        deadline = time.monotonic() + 30
        while owner.cli("approve", str(request.id), "--yes", "--submit").returncode != 0:
            assert time.monotonic() < deadline, "the daemon did not index the request"
            time.sleep(0.2)
        process.kill()
        process.wait(timeout=30)
    assert (owner.home / runtime.RUNTIME_FILE).exists()  # kill -9 leaves it behind

    with squatting(Squatter(port, owner.address)) as squatter:
        required = owner.cli("grants", "--daemon")
        assert required.returncode == 9 and "no vault daemon answers" in required.stderr
        one_line(required.stderr)
        assert not (owner.home / runtime.RUNTIME_FILE).exists()  # the stale file is gone
        revoked = owner.cli("revoke", str(request.id), "--yes", "--json", passphrase=True)
        assert revoked.returncode == 0, revoked.stderr
        verified = owner.cli("log", "verify", "--json", passphrase=True)
        assert verified.returncode == 0 and json.loads(verified.stdout)["entries"] > 0
    assert owner.status(request.id) is ledger.Status.REVOKED
    assert squatter.seen == []
    assert_never_saw_the_token(squatter, published.token.reveal())


@pytest.mark.parametrize("answer", ["forged", "not_found", "garbage", "huge"])
def test_a_server_that_fails_the_challenge_gets_no_token_and_exit_14(
    owner: Owner, answer: str
) -> None:
    """THREATS row 34: a runtime file that names a live process holding the vault's lock,
    but the port answers with anything but the proof (a made-up HMAC for the right owner,
    404, garbage, 2 MB): one line on stderr, exit 14, and the server saw only the nonce."""
    lock = take_lock(owner.home)  # as the daemon would hold it
    try:
        token = runtime.new_token()
        port = free_port_not_default()
        runtime.publish(owner.home, runtime.RuntimeFile(
            host="127.0.0.1", port=port, pid=os.getpid(), owner=owner.address,
            started_at=int(time.time()), token=token,
        ))
        with squatting(Squatter(port, owner.address, answer=answer)) as squatter:
            result = owner.cli("revoke", "1", "--yes", passphrase=True)
        assert result.returncode == EXIT_UNVERIFIED, result.stderr
        one_line(result.stderr)
        assert "did not prove it is this vault's daemon" in result.stderr
        assert f"127.0.0.1:{port}" in result.stderr and token.reveal() not in result.stderr
        assert len(squatter.seen) == 1 and squatter.seen[0].startswith(b"POST /v1/identity ")
        assert_never_saw_the_token(squatter, token.reveal())
        assert (owner.home / runtime.RUNTIME_FILE).exists()  # a live claim is not removed
    finally:
        os.close(lock)


def test_a_runtime_file_readable_by_others_is_never_used(owner: Owner) -> None:
    """THREATS row 34: a token that others could have read proves nothing; the CLI does not
    contact the address at all and says which file is wrong (exit 9)."""
    lock = take_lock(owner.home)
    try:
        token = runtime.new_token()
        port = free_port_not_default()
        runtime.publish(owner.home, runtime.RuntimeFile(
            host="127.0.0.1", port=port, pid=os.getpid(), owner=owner.address,
            started_at=int(time.time()), token=token,
        ))
        os.chmod(owner.home / runtime.RUNTIME_FILE, 0o644)
        with squatting(Squatter(port, owner.address)) as squatter:
            result = owner.cli("grants", passphrase=True)
        assert result.returncode == 9 and "not a private file" in result.stderr
        one_line(result.stderr)
        assert squatter.seen == []
    finally:
        os.close(lock)
