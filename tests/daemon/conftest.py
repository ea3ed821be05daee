"""A real daemon on a free loopback port (uvicorn in a thread) over a real vault and chain.

``daemon`` serves an unlocked vault holding Ada's sample exports (with the canary track)
on the ``embedded_chain``. The background sync loop is slowed right down: tests call
``served.sync()`` to make the daemon see the chain, so what it knows is deterministic.
``served.clock`` is the daemon's clock; ``clock.offset`` moves it without sleeping.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from vault import chain as chains
from vault import crypto, ledger, scopes
from vault.config import Settings
from vault.daemon.app import Daemon, create_app
from vault.importers import importer_for, sample_exports
from vault.store import Vault

PASS = "correct horse battery staple"
CANARY = "CANARY-7f3a-raw-track"
MUSIC = ["preferences.music"]
MUSIC_AGE = ["preferences.music", "profile.age_range"]


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def owner_vault(tmp_path: Path) -> Iterator[Vault]:
    home = tmp_path / "home"
    vault = Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    yield vault
    vault.close()


@dataclass
class Served:
    """A running daemon and the helpers a test drives it with."""

    base: str
    daemon: Daemon
    chain: Any
    vault: Vault
    clock: Clock
    token: str  # the per-start owner token (`vault serve` publishes it in daemon.json)
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def owner_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def domain(self) -> ledger.Domain:
        return ledger.Domain(self.chain.chain_id, self.chain.ledger_address)

    def sync(self) -> None:
        self.daemon.sync_round()

    def _keep(self, response: httpx.Response) -> httpx.Response:
        self.responses.append(response)
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self._keep(httpx.get(self.base + path, **kw))

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self._keep(httpx.post(self.base + path, **kw))

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self._keep(httpx.put(self.base + path, **kw))

    def owner_get(self, path: str) -> httpx.Response:
        return self.get(path, headers=self.owner_headers)

    def owner_post(self, path: str, body: Any = None) -> httpx.Response:
        return self.post(path, headers=self.owner_headers, json=body)

    def on_chain(self, action: Callable[[], Any]) -> Any:
        """Run a chain transaction while the daemon's sync cannot touch the chain."""
        with self.daemon.owner.state.chain_lock:
            return action()

    def request(self, *, company: int = 1, names: list[str] | None = None,
                duration: int = 30 * 86_400, price: int = 10**16, max_releases: int = 0,
                purpose: str = "playlist suggestions") -> int:
        client = self.chain.client(sender=self.chain.accounts[company])
        return int(self.on_chain(lambda: client.request_access(
            self.vault.owner_address, scopes.bitmap(names or MUSIC_AGE), duration,
            price=price, max_releases=max_releases, catalog_hash=scopes.catalog_hash(),
            purpose=purpose,
        )))

    def grant(self, *, company: int = 1, **kw: Any) -> int:
        """A request approved by the owner's signature and relayed by the company."""
        request_id = self.request(company=company, **kw)
        self.sync()
        approval = self.owner_post(f"/v1/owner/requests/{request_id}/approve", {"submit": False})
        assert approval.status_code == 200, approval.text
        signature = bytes.fromhex(approval.json()["signature"][2:])
        client = self.chain.client(sender=self.chain.accounts[company])
        self.on_chain(lambda: client.approve_by_sig(
            request_id, approval.json()["deadline"], signature))
        self.sync()
        return request_id

    def release_body(self, grant_id: int, names: list[str] | None = None, *, company: int = 1,
                     key: bytes | None = None, nonce: str | None = None,
                     issued_at: int | None = None, domain: ledger.Domain | None = None
                     ) -> dict[str, Any]:
        names = names or MUSIC
        nonce = nonce or "0x" + secrets.token_hex(32)
        issued_at = int(self.clock()) if issued_at is None else issued_at
        signature = ledger.sign_release(
            key or self.chain.dev_keys[company], domain or self.domain, grant_id,
            scopes.bitmap(names), nonce, issued_at,
        )
        return {"grant_id": grant_id, "scopes": names, "nonce": nonce, "issued_at": issued_at,
                "signature": "0x" + signature.hex()}

    def release(self, grant_id: int, names: list[str] | None = None, **kw: Any) -> httpx.Response:
        return self.post("/v1/release", json=self.release_body(grant_id, names, **kw))


@contextmanager
def running(settings: Settings, vault: Vault, chain: Any, clock: Clock) -> Iterator[Served]:
    """Serve a daemon on ``settings.port`` until the block ends (a clean uvicorn shutdown)."""
    app = create_app(settings, vault=vault, chain=chain, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                       lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{settings.port}", app.state.daemon, chain, vault, clock,
                     app.state.token.reveal())
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def daemon_settings(vault: Vault, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": vault.home, "chain": "embedded", "port": chains.free_port(),
        "sync_interval_seconds": 3600.0, "max_index_lag_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


def fund(chain: Any, address: str) -> None:
    chain.w3.eth.send_transaction({"from": chain.accounts[0], "to": address, "value": 10**18})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def daemon(embedded_chain: chains.EmbeddedChain, owner_vault: Vault, clock: Clock
           ) -> Iterator[Served]:
    fund(embedded_chain, owner_vault.owner_address)
    with running(daemon_settings(owner_vault), owner_vault, embedded_chain, clock) as served:
        yield served
