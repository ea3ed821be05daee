"""Benchmark POST /v1/release against GET /v1/health on a real daemon over loopback.

The daemon (uvicorn, plus its signing process) serves an unlocked vault with Ada's sample
data on the embedded chain. One real grant goes through the ledger (request, owner
signature, relayed approveBySig); the other active grants are injected into the daemon's
ledger index as the same AccessRequested/AccessApproved events the sync would apply —
creating 10,000 grants on py-evm would take hours, and the hot path never touches the
chain, only the index.

A separate load process pre-signs every release request (company EIP-712 signatures, fresh
nonces), then drives them over keep-alive HTTP/1.1 connections with N requests in flight,
and prints releases/s, p50 and p99 — and the same for /v1/health in the same run. At 16 in
flight health and release take turns for ``--rounds`` rounds and the medians are compared,
so a burst of noise from the rest of the machine cannot decide the ratio on its own.

    .venv/bin/python scripts/bench_release.py [--requests 6000] [--rounds 3] [--grants 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SCOPES = ["preferences.music", "profile.age_range"]


# --------------------------------------------------------------------------- load process


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


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def load_process(job: dict[str, Any], results: Any) -> None:
    """Pre-sign, then drive each measurement; put the figures on ``results``."""
    from vault import ledger, scopes

    domain = ledger.Domain(job["chain_id"], job["ledger"])
    key = bytes.fromhex(job["company_key"])
    bitmap = scopes.bitmap(SCOPES)
    figures = {}
    for name, path, concurrency, count in job["runs"]:
        warm = max(concurrency * 4, 32)
        if path == "/v1/release":
            payloads = []
            for i in range(count + warm):
                grant_id = job["grant_ids"][i % len(job["grant_ids"])]
                nonce = "0x" + secrets.token_hex(32)
                issued_at = int(time.time())
                signature = ledger.sign_release(key, domain, grant_id, bitmap, nonce, issued_at)
                body = json.dumps({"grant_id": grant_id, "scopes": SCOPES, "nonce": nonce,
                                   "issued_at": issued_at,
                                   "signature": "0x" + signature.hex()}).encode()
                payloads.append(_request("POST", path, body))
        else:
            payloads = [_request("GET", path)] * (count + warm)
        asyncio.run(_drive(job["port"], payloads[:warm], concurrency))
        figures[name] = asyncio.run(_drive(job["port"], payloads[warm:], concurrency))
    results.put(figures)


# --------------------------------------------------------------------------- the daemon side


def inject_grants(daemon: Any, *, count: int, first_id: int, company: str,
                  names: list[str] = SCOPES, duration: int = 30 * 86_400) -> list[int]:
    """Active grants for ``names`` added to the index the way the sync adds them
    (AccessRequested then AccessApproved events), at the index's current block."""
    from vault import scopes
    from vault.grant import Grant, Status
    from vault.ledger import LedgerEvent

    index = daemon.index
    block, block_hash = index.cursor
    now = int(time.time())
    events = []
    for offset in range(count):
        grant_id = first_id + offset
        common = {"id": grant_id, "owner": daemon.vault.owner_address, "company": company}
        events.append(LedgerEvent("AccessRequested", {
            **common, "scopes": scopes.bitmap(names), "price": 10**15, "duration": duration,
            "maxReleases": 0, "catalogHash": scopes.catalog_hash(), "purpose": "bench",
        }, block, block_hash, bytes(32), 2 * offset))
        events.append(LedgerEvent("AccessApproved", {**common, "startsAt": now},
                                  block, block_hash, bytes(32), 2 * offset + 1))
    lag = index.lag()
    index.apply(events, block_number=block, block_hash=block_hash,
                head_block=lag.head_block or block, head_timestamp=lag.head_timestamp or now,
                synced_at=time.time())
    # What the contract read after a sync round records (the grants are not on py-evm, so
    # the daemon's own read would drop them; its sync loop is idle for the whole run).
    ids = [first_id + i for i in range(count)]
    index.confirm({i: Grant(
        id=i, company=company, scopes=scopes.bitmap(names), max_releases=0,
        owner=daemon.vault.owner_address, price=10**15, starts_at=now, duration=duration,
        status=Status.ACTIVE, claimed=0,
    ) for i in ids}, at=time.time())
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="per measurement (16 in flight)")
    parser.add_argument("--serial", type=int, default=500, help="per measurement (1 in flight)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of health and release at 16")
    parser.add_argument("--grants", type=int, default=10_000, help="active grants, large case")
    args = parser.parse_args()

    import uvicorn

    from vault import crypto, scopes
    from vault.chain import EmbeddedChain, free_port
    from vault.config import Settings
    from vault.daemon.app import create_app
    from vault.importers import importer_for, sample_exports
    from vault.store import Vault

    home = Path(tempfile.mkdtemp(prefix="bench-release-"))
    vault = Vault.create(home, "bench", kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    chain = EmbeddedChain()
    company = chain.accounts[1]
    port = free_port()
    settings = Settings(home=home, chain="embedded", port=port, sync_interval_seconds=3600,
                        max_index_lag_seconds=3600, request_skew_seconds=3600,
                        company_releases_per_day=0, privacy_budget=0)
    app = create_app(settings, vault=vault, chain=chain)
    daemon = app.state.daemon
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    client = chain.client(sender=company)
    with daemon.owner.state.chain_lock:
        real = client.request_access(vault.owner_address, scopes.bitmap(SCOPES), 30 * 86_400,
                                     price=10**15, catalog_hash=scopes.catalog_hash(),
                                     purpose="bench")
    daemon.sync_round()
    approval = daemon.owner.approve(real, submit=False)
    with daemon.owner.state.chain_lock:
        client.approve_by_sig(real, approval.deadline, bytes.fromhex(approval.signature[2:]))
    daemon.sync_round()

    def measure(grant_ids: list[int], label: str) -> dict[str, Any]:
        runs = [
            (f"health c1 {label}", "/v1/health", 1, args.serial),
            (f"release c1 {label}", "/v1/release", 1, args.serial),
        ]
        for turn in range(1, args.rounds + 1):
            runs += [
                (f"health c16 {label} #{turn}", "/v1/health", 16, args.requests),
                (f"release c16 {label} #{turn}", "/v1/release", 16, args.requests),
            ]
        job = {"port": port, "chain_id": chain.chain_id, "ledger": chain.ledger_address,
               "company_key": chain.dev_keys[1].hex(), "grant_ids": grant_ids, "runs": runs}
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        process = context.Process(target=load_process, args=(job, results))
        process.start()
        figures: dict[str, Any] = results.get()
        process.join()
        return figures

    small = [real, *inject_grants(daemon, count=9, first_id=real + 1, company=company)]
    figures = measure(small, "10 grants")
    large = [*small, *inject_grants(daemon, count=args.grants - 10, first_id=real + 10,
                                    company=company)]
    figures.update(measure(large, f"{len(large)} grants"))

    print(f"{'measurement':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    for name, f in figures.items():
        print(f"{name:34} {f['rps']:9.0f} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {f['non_200']:8d}")

    def median_rps(prefix: str) -> float:
        return statistics.median(f["rps"] for name, f in figures.items()
                                 if name.startswith(prefix + " #"))

    labels = ("10 grants", f"{len(large)} grants")
    for label in labels:
        health, release = median_rps(f"health c16 {label}"), median_rps(f"release c16 {label}")
        print(f"16 in flight, {label}, median of {args.rounds} rounds: health {health:.0f}/s, "
              f"release {release:.0f}/s, release/health {release / health:.0%}")
    fast, slow = (median_rps(f"release c16 {label}") for label in labels)
    print(f"releases/s, 10 grants vs {len(large)} grants: {fast / slow:.2f}x")
    print(f"audit log verifies: {daemon.audit.verify().ok}")

    server.should_exit = True
    thread.join()
    vault.close()


if __name__ == "__main__":
    main()
