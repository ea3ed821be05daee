"""What bench_release and bench_match share: a real daemon over loopback, grants, and a load
process that drives pre-built HTTP requests over keep-alive connections.

The daemon (uvicorn, plus its signing process) serves an unlocked vault with Ada's sample
data on the embedded chain. One real grant goes through the ledger (request, owner
signature, relayed approveBySig); further grants are injected into the daemon's ledger
index as the same AccessRequested/AccessApproved events the sync would apply — creating
10,000 grants on py-evm would take hours, and the hot path never touches the chain, only
the index.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: The release measured by both benchmarks.
RELEASE_SCOPES = ["preferences.music", "profile.age_range"]


# --------------------------------------------------------------------------- load process


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request's bytes."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _one_connection(port: int, payloads: list[bytes], latencies: list[float],
                          statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for payload in payloads:
            started = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
    finally:
        writer.close()


async def _drive(port: int, payloads: list[bytes], concurrency: int) -> dict[str, Any]:
    lanes = [payloads[i::concurrency] for i in range(concurrency)]
    latencies: list[float] = []
    statuses: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_one_connection(port, lane, latencies, statuses) for lane in lanes))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "non_200": sum(1 for s in statuses if s != 200),
    }


def measure(port: int, payloads: list[bytes], *, concurrency: int, warm: int
            ) -> dict[str, Any]:
    """Send ``warm`` of ``payloads`` unmeasured, then the rest with ``concurrency`` in
    flight: requests/s, p50 and p99 latency, answers other than 200."""
    asyncio.run(_drive(port, payloads[:warm], concurrency))
    return asyncio.run(_drive(port, payloads[warm:], concurrency))


def sign_release(job: dict[str, Any], grant_id: int) -> bytes:
    """A ``POST /v1/release`` of :data:`RELEASE_SCOPES`, signed with a fresh nonce."""
    import json
    import secrets

    from vault import ledger, scopes

    nonce = "0x" + secrets.token_hex(32)
    issued_at = int(time.time())
    signature = ledger.sign_release(
        bytes.fromhex(job["company_key"]), ledger.Domain(job["chain_id"], job["ledger"]),
        grant_id, scopes.bitmap(RELEASE_SCOPES), nonce, issued_at,
    )
    body = {"grant_id": grant_id, "scopes": RELEASE_SCOPES, "nonce": nonce,
            "issued_at": issued_at, "signature": "0x" + signature.hex()}
    return http_request("POST", "/v1/release", json.dumps(body).encode())


# --------------------------------------------------------------------------- the daemon side


class BenchDaemon:
    """A daemon serving a fresh vault over loopback in a thread of this process, with one
    real grant of ``names`` on the embedded chain (:attr:`grant_id`)."""

    def __init__(self, *, names: list[str], extra_events: Iterable[Any] = (),
                 matches_per_epoch: int | None = None) -> None:
        import uvicorn

        from vault import crypto, scopes
        from vault.chain import EmbeddedChain, free_port
        from vault.config import Settings
        from vault.daemon.app import create_app
        from vault.importers import importer_for, sample_exports
        from vault.store import Vault

        home = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
        self.vault = vault = Vault.create(home, "bench", kdf=crypto.KDF_MINIMUM)
        for kind, path in sample_exports():
            with path.open("rb") as stream:
                vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
        if extra := list(extra_events):
            vault.import_records(extra)
        self.chain = chain = EmbeddedChain()
        self.company = chain.accounts[1]
        self.port = free_port()
        # Wide clocks and no caps: the figures are the hot path's, not its refusals'.
        settings = Settings(home=home, chain="embedded", port=self.port,
                            sync_interval_seconds=3600, max_index_lag_seconds=3600,
                            request_skew_seconds=3600, company_releases_per_day=0,
                            privacy_budget=0)
        app = create_app(settings, vault=vault, chain=chain)
        self.daemon = daemon = app.state.daemon
        if matches_per_epoch is not None:
            terms = daemon.owner.terms().model_copy(
                update={"matches_per_epoch": matches_per_epoch})
            daemon.owner.set_terms(terms)
        self._server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)

        client = chain.client(sender=self.company)
        with daemon.owner.state.chain_lock:
            self.grant_id = client.request_access(
                vault.owner_address, scopes.bitmap(names), 30 * 86_400, price=10**15,
                catalog_hash=scopes.catalog_hash(), purpose="bench")
        daemon.sync_round()
        approval = daemon.owner.approve(self.grant_id, submit=False)
        with daemon.owner.state.chain_lock:
            client.approve_by_sig(self.grant_id, approval.deadline,
                                  bytes.fromhex(approval.signature[2:]))
        daemon.sync_round()

    def job(self, **more: Any) -> dict[str, Any]:
        """What a load process needs to reach and sign for this daemon, plus ``more``."""
        return {"port": self.port, "chain_id": self.chain.chain_id,
                "ledger": self.chain.ledger_address,
                "company_key": self.chain.dev_keys[1].hex(), **more}

    def inject_grants(self, *, count: int, first_id: int, names: list[str],
                      duration: int = 30 * 86_400) -> list[int]:
        """Active grants of ``names`` to the company, added to the index the way the sync
        adds them (AccessRequested then AccessApproved events), at its current block."""
        from vault import scopes
        from vault.grant import Grant, Status
        from vault.ledger import LedgerEvent

        index = self.daemon.index
        owner = self.vault.owner_address
        block, block_hash = index.cursor
        now = int(time.time())
        events = []
        for offset in range(count):
            grant_id = first_id + offset
            common = {"id": grant_id, "owner": owner, "company": self.company}
            events.append(LedgerEvent("AccessRequested", {
                **common, "scopes": scopes.bitmap(names), "price": 10**15,
                "duration": duration, "maxReleases": 0, "catalogHash": scopes.catalog_hash(),
                "purpose": "bench",
            }, block, block_hash, bytes(32), 2 * offset))
            events.append(LedgerEvent("AccessApproved", {**common, "startsAt": now},
                                      block, block_hash, bytes(32), 2 * offset + 1))
        lag = index.lag()
        index.apply(events, block_number=block, block_hash=block_hash,
                    head_block=lag.head_block or block,
                    head_timestamp=lag.head_timestamp or now, synced_at=time.time())
        # What the contract read after a sync round records (the grants are not on py-evm,
        # so the daemon's own read would drop them; its sync loop is idle for the run).
        ids = [first_id + i for i in range(count)]
        index.confirm({i: Grant(
            id=i, company=self.company, scopes=scopes.bitmap(names), max_releases=0,
            owner=owner, price=10**15, starts_at=now, duration=duration,
            status=Status.ACTIVE, claimed=0,
        ) for i in ids}, at=time.time())
        return ids

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join()
        self.vault.close()


def in_load_process(target: Callable[[dict[str, Any], Any], None], job: dict[str, Any]
                    ) -> dict[str, Any]:
    """Run ``target(job, results)`` in a fresh process (the load must not share this one's
    GIL with the daemon) and return the figures it puts on ``results``."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(job, results))
    process.start()
    figures: dict[str, Any] = results.get()
    process.join()
    return figures


def print_figures(figures: dict[str, dict[str, Any]]) -> None:
    width = max(map(len, figures), default=10) + 2
    print(f"{'measurement':{width}} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    for name, f in figures.items():
        print(f"{name:{width}} {f['rps']:9.0f} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} "
              f"{f['non_200']:8d}")
