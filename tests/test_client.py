"""The company SDK against a real daemon (uvicorn on a loopback port, and the same app
in-process through ``httpx.ASGITransport``) on a real chain (py-evm).

The daemon's sync loop is slowed right down; ``served.sync()`` makes it see the chain, so
what it knows at each step is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from vault import chain as chains
from vault import client, crypto, errors, ledger
from vault.client import AsyncCompany, Company
from vault.config import Settings
from vault.daemon.app import Daemon, create_app
from vault.importers import importer_for, sample_exports
from vault.store import Vault

PASS = "correct horse battery staple"
MUSIC_AGE = ["preferences.music", "profile.age_range"]
DAY = 86_400


@dataclass
class Served:
    base: str
    app: Any
    daemon: Daemon
    chain: chains.EmbeddedChain
    vault: Vault

    def sync(self) -> None:
        self.daemon.sync_round()

    @property
    def owner(self) -> str:
        return self.vault.owner_address

    def company(self, index: int = 1, **kw: Any) -> Company:
        account = ledger.local_account(self.chain.dev_keys[index])
        return Company(account, self.chain, self.chain.ledger_address, poll_interval=0.01, **kw)

    def async_company(self, index: int = 1, **kw: Any) -> AsyncCompany:
        account = ledger.local_account(self.chain.dev_keys[index])
        kw.setdefault("transport", httpx.ASGITransport(app=self.app))
        return AsyncCompany(
            account, self.chain.w3, self.chain.ledger_address, poll_interval=0.01, **kw
        )

    def approve(self, request_id: int, *, submit: bool = False) -> None:
        self.sync()
        self.daemon.owner.approve(request_id, submit=submit)

    def granted(self, company: Company, names: list[str] | None = None, **kw: Any
                ) -> client.Grant:
        request = company.request_access(
            self.owner, names or MUSIC_AGE, 30 * DAY, 10**16, "playlist suggestions", **kw
        )
        self.approve(request.id)
        grant = company.wait_for_grant(request, timeout=30, vault_synced=False)
        self.sync()
        return grant


@pytest.fixture
def served(embedded_chain: chains.EmbeddedChain, tmp_path: Path) -> Iterator[Served]:
    vault = Vault.create(tmp_path / "home", PASS, kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    embedded_chain.w3.eth.send_transaction(
        {"from": embedded_chain.accounts[0], "to": vault.owner_address, "value": 10**18}
    )
    port = chains.free_port()
    settings = Settings(home=vault.home, chain="embedded", port=port,
                        sync_interval_seconds=3600.0)
    app = create_app(settings, vault=vault, chain=embedded_chain)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    served = Served(base, app, app.state.daemon, embedded_chain, vault)
    served.daemon.owner.publish_terms(base)
    served.sync()
    try:
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        vault.close()


# --------------------------------------------------------------------------- the story


def test_terms_are_found_from_the_owner_address_and_match_the_published_hash(
    served: Served,
) -> None:
    with served.company() as company:
        found = company.terms(served.owner)
        assert found.endpoint == served.base
        assert found.owner == served.owner
        assert found.matches_published
        assert company.endpoint_of(served.owner) == served.base
        by_url = company.terms(served.base)
        assert by_url.terms == found.terms and by_url.published_terms_hash is None


def test_request_relay_fetch_and_verified_receipt(served: Served) -> None:
    with served.company() as company:
        request = company.request_access(
            served.owner, MUSIC_AGE, 30 * DAY, 10**16, "playlist suggestions", max_releases=5
        )
        assert request.endpoint == served.base
        assert request.scopes == ["profile.age_range", "preferences.music"]
        served.approve(request.id)
        grant = company.wait_for_grant(request, timeout=30, vault_synced=False)
        assert grant.relay_tx_hash is not None  # the company paid the gas, not the owner
        assert grant.expires_at - grant.starts_at == 30 * DAY
        assert served.chain.client().get_request(request.id).status is ledger.Status.ACTIVE
        served.sync()
        release = company.fetch(grant)
        assert set(release.preferences) == set(MUSIC_AGE)
        assert release.owner == served.owner and release.company == company.address
        assert release.receipt.content_hash == "0x" + client.content_hash(
            release.preferences).hex()
        only_music = company.fetch(grant, ["preferences.music"])
        assert set(only_music.preferences) == {"preferences.music"}


class SyncOnHealth(httpx.BaseTransport):
    """The real daemon, which syncs its ledger index only when asked the second time how
    far it has synced: so a company that does not wait for it would be refused."""

    def __init__(self, served: Served) -> None:
        self.inner = httpx.HTTPTransport()
        self.served = served
        self.health_calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/health":
            self.health_calls += 1
            if self.health_calls == 2:
                self.served.sync()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_wait_for_grant_waits_until_the_vault_has_seen_the_approval(served: Served) -> None:
    transport = SyncOnHealth(served)
    with served.company(transport=transport) as company:
        request = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        served.approve(request.id)
        grant = company.wait_for_grant(request, timeout=30)
        assert transport.health_calls == 2
        assert company.fetch(grant).grant_id == request.id  # no sync needed in between


def test_an_owner_submitted_approval_is_seen_on_chain(served: Served) -> None:
    with served.company() as company:
        request = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        served.approve(request.id, submit=True)
        grant = company.wait_for_grant(request, timeout=30, vault_synced=False)
        assert grant.relay_tx_hash is None


def test_a_denied_request_raises_request_denied_and_refunds(served: Served) -> None:
    with served.company() as company:
        request = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        served.sync()
        served.daemon.owner.deny(request.id)
        with pytest.raises(client.RequestDenied):
            company.wait_for_grant(request, timeout=30, vault_synced=False)
        assert company.owed() == 10**15
        assert company.withdraw() == 10**15
        assert company.owed() == 0


def test_waiting_too_long_raises_grant_timeout_and_cancel_refunds(served: Served) -> None:
    with served.company() as company:
        request = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        with pytest.raises(client.GrantTimeout):
            company.wait_for_grant(request, timeout=0, vault_synced=False)
        assert company.cancel(request).startswith("0x")
        with pytest.raises(client.RequestClosed):
            company.wait_for_grant(request, timeout=1, vault_synced=False)
        assert company.withdraw() == 10**15
        with pytest.raises(errors.ContractReverted) as nothing:
            company.withdraw()
        assert nothing.value.name == "NothingOwed"


# --------------------------------------------------------------------------- typed errors


def test_refusals_are_typed(served: Served) -> None:
    """THREATS rows 15, 16 and 20 seen from the company: revoked, scope escalation and
    another company's signature each raise their own error class."""
    with served.company(1) as company, served.company(2) as other:
        grant = served.granted(company, ["preferences.music"])
        with pytest.raises(client.ScopeNotGranted) as escalated:
            company.fetch(grant, ["profile.age_range"])
        assert escalated.value.status == 403 and escalated.value.error_code == "scope_not_granted"
        with pytest.raises(errors.UnknownScope):
            company.fetch(grant, ["nope.unknown"])  # refused before anything is sent
        served.granted(other)  # a known company on this ledger, using another's grant
        stolen = grant.model_copy(update={"company": other.address})
        with pytest.raises(client.WrongCompany):
            other.fetch(stolen)
        served.daemon.owner.revoke(grant.id)
        with pytest.raises(client.Revoked) as revoked:
            company.fetch(grant)
        assert revoked.value.status == 403
        assert isinstance(revoked.value, client.ClientError)
        assert company.owed() > 0  # the unearned part came back


def test_max_releases_is_releases_exhausted(served: Served) -> None:
    with served.company() as company:
        grant = served.granted(company, max_releases=1)
        company.fetch(grant)
        with pytest.raises(client.ReleasesExhausted) as exhausted:
            company.fetch(grant)
        assert exhausted.value.status == 429 and not exhausted.value.retryable


def test_unreachable_vault_is_vault_unreachable(served: Served) -> None:
    with served.company() as company:
        grant = served.granted(company)
        gone = grant.model_copy(update={"endpoint": f"http://127.0.0.1:{chains.free_port()}"})
        with pytest.raises(client.VaultUnreachable):
            company.fetch(gone)


def test_every_wire_code_maps_to_its_class() -> None:
    for code, cls in client._REFUSALS.items():
        error = client.refusal(403, {"error": code, "detail": "d"})
        assert type(error) is cls and error.error_code == code
    assert type(client.refusal(503, {"error": "weird"})) is client.VaultLedgerUnavailable
    assert type(client.refusal(429, None)) is client.RateLimited
    assert type(client.refusal(418, None)) is client.VaultRefused


# --------------------------------------------------------------------------- receipts


class Tamper(httpx.BaseTransport):
    """Passes requests to the real daemon and edits its release answers."""

    def __init__(self, edit: Any) -> None:
        self.inner = httpx.HTTPTransport()
        self.edit = edit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path != "/v1/release":
            return response
        response.read()
        response.close()
        if response.status_code != 200:
            return response
        body = response.json()
        self.edit(body)
        return httpx.Response(200, json=body)

    def close(self) -> None:
        self.inner.close()


def _change_preferences(body: dict[str, Any]) -> None:
    body["preferences"]["preferences.music"] = {"status": "ok", "genres": []}


def _forge_receipt(body: dict[str, Any]) -> None:
    """A well-formed signature by someone other than the owner."""
    forger = bytes(range(1, 33))
    digest = bytes.fromhex(body["receipt"]["content_hash"][2:])
    body["receipt"]["signature"] = "0x" + ledger.sign_digest(forger, digest).hex()


def _other_grant(body: dict[str, Any]) -> None:
    body["grant_id"] += 1


@pytest.mark.parametrize("edit", [_change_preferences, _forge_receipt, _other_grant])
def test_a_release_whose_receipt_does_not_verify_is_refused(served: Served, edit: Any) -> None:
    with served.company() as honest:
        grant = served.granted(honest)
    with served.company(transport=Tamper(edit)) as company, pytest.raises(client.ReceiptInvalid):
        company.fetch(grant)


# --------------------------------------------------------------------------- async


class Flaky(httpx.AsyncBaseTransport):
    """Answers the first ``failures`` releases with ``status``/``code``, then the daemon;
    counts attempts and the most releases in flight at once."""

    def __init__(self, app: Any, *, failures: int = 0, status: int = 503,
                 code: str = "ledger_unavailable", delay: float = 0.0) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.failures = failures
        self.status = status
        self.code = code
        self.delay = delay
        self.attempts = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/release":
            return await self.inner.handle_async_request(request)
        self.attempts += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.attempts <= self.failures:
                return httpx.Response(self.status, json={"error": self.code, "detail": "busy"})
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


def test_async_fetch_many_is_bounded_and_verifies_every_receipt(served: Served) -> None:
    with served.company() as company:
        grants = [served.granted(company) for _ in range(6)]
    flaky = Flaky(served.app, delay=0.02)

    async def run() -> list[client.Release | client.ClientError]:
        async with served.async_company(transport=flaky, max_concurrency=2) as many:
            return await many.fetch_many(grants)

    results = asyncio.run(run())
    assert all(isinstance(r, client.Release) for r in results)
    assert [r.grant_id for r in results if isinstance(r, client.Release)] == [g.id for g in grants]
    assert flaky.most_in_flight == 2


@pytest.mark.parametrize(("status", "code"), [(503, "ledger_unavailable"), (429, "rate_limited")])
def test_async_fetch_retries_transient_answers_with_fresh_nonces(
    served: Served, status: int, code: str
) -> None:
    with served.company() as company:
        grant = served.granted(company)
    flaky = Flaky(served.app, failures=2, status=status, code=code)

    async def run() -> client.Release:
        async with served.async_company(transport=flaky, backoff_seconds=0.001) as one:
            return await one.fetch(grant)

    assert isinstance(asyncio.run(run()), client.Release)
    assert flaky.attempts == 3


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(429, "releases_exhausted", client.ReleasesExhausted), (403, "revoked", client.Revoked),
     (503, "ledger_unavailable", client.VaultLedgerUnavailable)],
)
def test_async_fetch_gives_up_on_permanent_answers_and_after_max_attempts(
    served: Served, status: int, code: str, cls: type[client.VaultRefused]
) -> None:
    with served.company() as company:
        grant = served.granted(company)
    flaky = Flaky(served.app, failures=10, status=status, code=code)

    async def run() -> None:
        async with served.async_company(transport=flaky, backoff_seconds=0.001,
                                        max_attempts=3) as one:
            await one.fetch(grant)

    with pytest.raises(cls):
        asyncio.run(run())
    assert flaky.attempts == (3 if cls.retryable else 1)


def test_async_request_wait_and_terms(served: Served) -> None:
    async def run() -> client.Release:
        async with served.async_company(2) as company:
            terms = await company.terms(served.owner)
            assert terms.matches_published
            request = await company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "x")
            await asyncio.to_thread(served.approve, request.id)
            grant = await company.wait_for_grant(request, timeout=30, vault_synced=False)
            await asyncio.to_thread(served.sync)
            return await company.fetch(grant)

    assert set(asyncio.run(run()).preferences) == set(MUSIC_AGE)


# --------------------------------------------------------------------------- packaging

_OWNER_ONLY = ("fastapi", "starlette", "sqlmodel", "sqlalchemy", "cryptography", "typer",
               "click", "rich", "eth_tester", "uvicorn", "platformdirs", "pydantic_settings")


def test_the_sdk_imports_without_the_owner_extra() -> None:
    """``import vault.client`` with every owner-only package made unimportable."""
    program = textwrap.dedent(f"""
        import sys
        BLOCKED = {_OWNER_ONLY!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        import vault.client
        from vault.client import AsyncCompany, Company
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --------------------------------------------------------------------------- rollback


def test_an_old_copy_of_the_vault_folder_still_enforces_a_revocation(
    embedded_chain: chains.EmbeddedChain, tmp_path: Path
) -> None:
    """THREATS row 6: the owner restores a copy of the whole vault folder taken before a
    revoke (vault, access log with the local revocation, ledger index); the revoked grant
    stays refused, because the ledger is the source of truth."""
    home = tmp_path / "home"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as created:
        owner = created.owner_address
    embedded_chain.w3.eth.send_transaction(
        {"from": embedded_chain.accounts[0], "to": owner, "value": 10**18}
    )

    def serve() -> tuple[Any, Vault]:
        vault = Vault.open(home, PASS)
        settings = Settings(home=home, chain="embedded", port=chains.free_port(),
                            sync_interval_seconds=3600.0)
        app = create_app(settings, vault=vault, chain=embedded_chain)
        app.state.daemon.sync_round()
        return app, vault

    app, vault = serve()
    account = ledger.local_account(embedded_chain.dev_keys[1])
    transport = httpx.ASGITransport(app=app)

    async def fetch(grant: client.Grant, via: httpx.ASGITransport) -> client.Release:
        async with AsyncCompany(account, embedded_chain, embedded_chain.ledger_address,
                                transport=via) as company:
            return await company.fetch(grant)

    with Company(account, embedded_chain, embedded_chain.ledger_address) as company:
        request = company.request_access(vault.owner_address, MUSIC_AGE, DAY, 10**15, "x",
                                         endpoint="http://127.0.0.1")
        app.state.daemon.sync_round()
        app.state.daemon.owner.approve(request.id, submit=True)
        grant = company.wait_for_grant(request, timeout=10, vault_synced=False)
    app.state.daemon.sync_round()
    assert asyncio.run(fetch(grant, transport)).grant_id == grant.id
    app.state.daemon.stop()
    vault.close()
    old = tmp_path / "old-copy"
    shutil.copytree(home, old)

    app, vault = serve()
    app.state.daemon.owner.revoke(grant.id)
    app.state.daemon.stop()
    vault.close()
    shutil.rmtree(home)
    shutil.copytree(old, home)  # the rollback

    app, vault = serve()
    try:
        with pytest.raises(client.Revoked):
            asyncio.run(fetch(grant, httpx.ASGITransport(app=app)))
    finally:
        app.state.daemon.stop()
        vault.close()


# --------------------------------------------------------------------------- issue 14: edges


def _candidates(count: int = 20) -> list[dict[str, Any]]:
    return [{"id": f"c-{i}", "title": f"Song {i}", "kind": "track", "genres": ["pop"]}
            for i in range(count)]


def test_a_stored_release_and_match_verify_later_with_verify_receipt(served: Served) -> None:
    """A release and a match kept as JSON verify later with nothing but the ledger's ids;
    each edit of what was received, and every other owner, chain or ledger, is refused."""
    with served.company() as company:
        grant = served.granted(company, ["preferences.music", "match.content"])
        stored = company.fetch(grant, ["preferences.music"]).model_dump_json()
        stored_match = company.match(grant, _candidates(), k=3).model_dump_json()
    where = {"owner": grant.owner, "chain_id": served.chain.chain_id,
             "ledger": served.chain.ledger_address}
    release = client.Release.model_validate_json(stored)
    ranked = client.MatchResult.model_validate_json(stored_match)
    client.verify_receipt(release, **where)
    client.verify_receipt(ranked, **where)

    edited = release.model_copy(update={"preferences": {"preferences.music": {"status": "ok"}}})
    reordered = ranked.model_copy(update={"ranking": list(reversed(ranked.ranking))})
    moved = release.model_copy(update={"grant_id": grant.id + 1})
    for forged in (edited, reordered, moved):
        with pytest.raises(client.ReceiptInvalid):
            client.verify_receipt(forged, **where)
    other_owner = served.chain.accounts[3]
    for elsewhere in ({"owner": other_owner}, {"chain_id": served.chain.chain_id + 1},
                      {"ledger": served.chain.accounts[4]}):
        with pytest.raises(client.ReceiptInvalid):
            client.verify_receipt(release, **{**where, **elsewhere})


def test_a_request_loads_back_from_the_ledger_and_waits_as_made(served: Served) -> None:
    """`company.request(id)` after a restart: the same AccessRequest (purpose and catalog hash
    from its event, endpoint from the owner's publication), and the grant follows from it."""
    with served.company() as company:
        made = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "playlists",
                                      max_releases=3)
    with served.company() as restarted:
        loaded = restarted.request(made.id)
        assert loaded == made
        served.approve(made.id)
        grant = restarted.wait_for_grant(loaded, timeout=30, vault_synced=False)
        assert grant.id == made.id and grant.max_releases == 3
        with pytest.raises(client.UnknownRequest) as unknown:
            restarted.request(made.id + 1000)
    assert isinstance(unknown.value, errors.NotFound)

    async def load() -> client.AccessRequest:
        async with served.async_company() as company:
            return await company.request(made.id)

    assert asyncio.run(load()) == made


_HOSTILE_DETAIL = "no such grant\n\x1b[2J\x1b[31mpay here: evil.example\r"


@pytest.mark.parametrize("code", sorted(client._REFUSALS))
def test_every_refusal_reads_as_one_line_name_what_and_what_to_do(code: str) -> None:
    cls = client._REFUSALS[code]
    error = client.refusal(403, {"error": code, "detail": _HOSTILE_DETAIL})
    shown = str(error)
    assert shown.startswith(f"{cls.__name__}: the vault refused (403 {code}): no such grant")
    assert shown.endswith(f" — {cls.hint}") and cls.hint
    assert cls.hint != client.VaultRefused.hint or cls is client.VaultRefused
    assert shown.isprintable()  # one line, no terminal escapes from the vault
    assert error.detail == "no such grant [2J [31mpay here: evil.example"


def test_a_real_refusal_and_a_closed_request_name_the_status(served: Served) -> None:
    with served.company() as company:
        grant = served.granted(company, ["preferences.music"])
        served.daemon.owner.revoke(grant.id)
        with pytest.raises(client.Revoked) as revoked:
            company.fetch(grant)
        assert str(revoked.value) == (
            f"Revoked: the vault refused (403 revoked): {revoked.value.detail} — "
            "the unearned part of the price is credited back: withdraw() takes it")
        pending = company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        company.cancel(pending)
        with pytest.raises(client.RequestClosed) as closed:
            company.wait_for_grant(pending, timeout=1, vault_synced=False)
        assert f"request {pending.id} is cancelled" in str(closed.value)
        with pytest.raises(errors.ContractReverted) as again:
            company.cancel(pending)
        assert again.value.name == "RequestNotPending"
        assert f"RequestNotPending(id={pending.id}, status=cancelled)" in str(again.value)


def test_a_company_without_funds_gets_one_typed_error_and_nothing_is_sent(
    served: Served,
) -> None:
    from eth_account import Account

    chain = served.chain
    poor = Account.create()
    before = chain.client().request_count()
    with Company(poor, chain, chain.ledger_address) as company:
        with pytest.raises(client.InsufficientFunds) as empty:
            company.request_access(served.owner, MUSIC_AGE, DAY, 10**15, "ads")
        chain.w3.eth.send_transaction(
            {"from": chain.accounts[0], "to": poor.address, "value": 10**15}
        )
        with pytest.raises(client.InsufficientFunds) as short:
            company.request_access(served.owner, MUSIC_AGE, DAY, 10**16, "ads")
        # Enough for the price and a bare transfer's gas, not for this transaction's: the
        # node refuses it, and the SDK says the same.
        with pytest.raises(client.InsufficientFunds) as node_refused:
            company.request_access(
                served.owner, MUSIC_AGE, DAY, 10**15 - 21_000 * chain.w3.eth.gas_price, "ads")
    assert chain.client().request_count() == before
    assert f"send ETH to {poor.address}" in str(node_refused.value)
    assert isinstance(empty.value, errors.InsufficientFunds)
    assert str(empty.value) == (
        f"InsufficientFunds: {poor.address} holds 0 ETH, too little to pay the price of "
        f"0.001 ETH and the gas of this request — send ETH to {poor.address}, then try again")
    assert f"{poor.address} holds 0.001 ETH" in str(short.value)
    assert "0.01 ETH" in str(short.value)


class FlakySync(httpx.BaseTransport):
    """The real daemon behind ``failures`` transient answers to releases and matches."""

    def __init__(self, *, failures: int, status: int = 503, code: str = "ledger_unavailable",
                 retry_after: str | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.failures = failures
        self.status = status
        self.code = code
        self.headers = {} if retry_after is None else {"Retry-After": retry_after}
        self.attempts = 0
        self.nonces: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path not in ("/v1/release", "/v1/match"):
            return self.inner.handle_request(request)
        self.attempts += 1
        self.nonces.add(json.loads(request.content)["nonce"])
        if self.attempts <= self.failures:
            return httpx.Response(self.status, headers=self.headers,
                                  json={"error": self.code, "detail": "busy"})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize(("status", "code"), [(503, "ledger_unavailable"), (429, "rate_limited"),
                                              (503, "signing_unavailable")])
def test_sync_fetch_and_match_retry_transient_answers_with_fresh_nonces(
    served: Served, status: int, code: str
) -> None:
    with served.company() as honest:
        grant = served.granted(honest, ["preferences.music", "match.content"])
    for call in ("fetch", "match"):
        flaky = FlakySync(failures=2, status=status, code=code, retry_after="0")
        with served.company(transport=flaky, backoff_seconds=0.001) as company:
            if call == "fetch":
                assert company.fetch(grant).grant_id == grant.id
            else:
                assert len(company.match(grant, _candidates(), k=2).ranking) == 2
        assert flaky.attempts == 3 and len(flaky.nonces) == 3


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(429, "releases_exhausted", client.ReleasesExhausted), (403, "revoked", client.Revoked),
     (503, "ledger_unavailable", client.VaultLedgerUnavailable)],
)
def test_sync_fetch_gives_up_on_permanent_answers_and_after_max_attempts(
    served: Served, status: int, code: str, cls: type[client.VaultRefused]
) -> None:
    with served.company() as honest:
        grant = served.granted(honest)
    flaky = FlakySync(failures=10, status=status, code=code)
    with served.company(transport=flaky, backoff_seconds=0.001, max_attempts=3) as company, \
            pytest.raises(cls):
        company.fetch(grant)
    assert flaky.attempts == (3 if cls.retryable else 1)


def test_retry_after_is_respected_and_bounded() -> None:
    retry = client._Retry(max_attempts=5, backoff=60.0, max_backoff=2.0)

    def answer(**headers: str) -> httpx.Response:
        return httpx.Response(503, headers=headers, json={"error": "ledger_unavailable"})

    assert retry.delay(1, answer(**{"Retry-After": "1"})) == 1.0
    assert retry.delay(1, answer(**{"Retry-After": "3600"})) == 2.0
    assert 1.0 <= retry.delay(1, answer()) <= 2.0  # backoff capped, with jitter
    with pytest.raises(client.VaultLedgerUnavailable):
        retry.delay(5, answer())
