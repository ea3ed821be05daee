"""Benchmark POST /v1/match beside POST /v1/release on a real daemon over loopback.

The daemon serves a vault with Ada's sample exports plus 5,000 plays and views of 500
artists and 1,000 films (so the history summary has a realistic size), on the embedded
chain, with matches and the privacy budget uncapped. Grants for ``match.history`` are
injected into the ledger index as bench_release does. A separate load process pre-signs
every request (ten different lists per size, rotated, each candidate with genres, a prior
and 20 ``similar`` references, a fifth of them from the person's history) and drives them
over keep-alive connections, 1 and 16 in flight; release is measured in the same run.
The goals (issue 16): 100 candidates p50 ≤ 10 ms and 1,000 candidates p50 ≤ 50 ms at one
in flight; ≥ 200 matches/s of 100 candidates at 16 in flight.

    .venv/bin/python scripts/bench_match.py [--serial 300] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_release import SCOPES, _drive, _request, inject_grants

MATCH = ["match.history"]
ARTISTS = [f"Artist {i}" for i in range(500)]
FILMS = [f"Film {i} ({1950 + i % 70})" for i in range(1000)]
GENRES = ["drama", "comedy", "jazz", "rock", "animation", "thriller", "pop", "documentary"]


def candidates(size: int, rng: random.Random) -> list[dict[str, Any]]:
    listed = []
    for i in range(size):
        known = rng.sample(ARTISTS + FILMS, 4)
        unknown = [f"Stranger {rng.randrange(10**6)}" for _ in range(16)]
        listed.append({
            "id": f"item-{i}", "title": f"Candidate {i}", "kind": rng.choice(["movie", "track"]),
            "genres": rng.sample(GENRES, 2), "tags": ["bench"], "prior": round(rng.random(), 3),
            "similar": [{"ref": ref, "weight": round(rng.random(), 3)}
                        for ref in known + unknown],
        })
    return listed


def load_process(job: dict[str, Any], results: Any) -> None:
    import asyncio

    from vault import ledger, match, scopes
    from vault.eth import eip712

    domain = ledger.Domain(job["chain_id"], job["ledger"])
    key = bytes.fromhex(job["company_key"])
    rng = random.Random(7)
    lists = {size: [candidates(size, rng) for _ in range(10)] for size in (100, 1000)}
    figures = {}
    for name, kind, size, concurrency, count in job["runs"]:
        warm = max(concurrency * 4, 16)
        payloads = []
        for i in range(count + warm):
            nonce = "0x" + secrets.token_hex(32)
            issued_at = int(time.time())
            if kind == "release":
                grant_id = job["release_grant"]
                signature = ledger.sign_release(key, domain, grant_id, scopes.bitmap(SCOPES),
                                                nonce, issued_at)
                body = {"grant_id": grant_id, "scopes": SCOPES, "nonce": nonce,
                        "issued_at": issued_at, "signature": "0x" + signature.hex()}
                path = "/v1/release"
            else:
                grant_id = job["match_grants"][i % len(job["match_grants"])]
                listed = lists[size][i % 10]
                signature = eip712.sign_match(
                    key, domain, grant_id, scopes.bitmap(MATCH), match.candidates_hash(listed),
                    10, nonce, issued_at)
                body = {"grant_id": grant_id, "scopes": MATCH, "k": 10, "candidates": listed,
                        "nonce": nonce, "issued_at": issued_at,
                        "signature": "0x" + signature.hex()}
                path = "/v1/match"
            payloads.append(_request("POST", path, json.dumps(body).encode()))
        asyncio.run(_drive(job["port"], payloads[:warm], concurrency))
        figures[name] = asyncio.run(_drive(job["port"], payloads[warm:], concurrency))
    results.put(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serial", type=int, default=300, help="per measurement (1 in flight)")
    parser.add_argument("--requests", type=int, default=3000, help="per measurement (16)")
    args = parser.parse_args()

    import uvicorn

    from vault import crypto, scopes
    from vault.chain import EmbeddedChain, free_port
    from vault.config import Settings
    from vault.daemon.app import create_app
    from vault.identity import Event, EventKind
    from vault.importers import importer_for, sample_exports
    from vault.store import Vault

    home = Path(tempfile.mkdtemp(prefix="bench-match-"))
    vault = Vault.create(home, "bench", kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    rng = random.Random(1)
    now = int(time.time())
    vault.import_records([
        Event(EventKind.PLAY, now - i * 600, "bench",
              {"artist": rng.choice(ARTISTS), "track": f"Track {i % 900}", "ms_played": 180_000})
        for i in range(3000)
    ] + [Event(EventKind.VIEW, now - i * 900, "bench", {"title": rng.choice(FILMS)})
         for i in range(2000)])
    chain = EmbeddedChain()
    company = chain.accounts[1]
    port = free_port()
    settings = Settings(home=home, chain="embedded", port=port, sync_interval_seconds=3600,
                        max_index_lag_seconds=3600, request_skew_seconds=3600,
                        company_releases_per_day=0, privacy_budget=0)
    app = create_app(settings, vault=vault, chain=chain)
    daemon = app.state.daemon
    terms = daemon.owner.terms()
    daemon.owner.set_terms(terms.model_copy(update={"matches_per_epoch": 1_000_000}))
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
    match_grants = inject_grants(daemon, count=10, first_id=real + 1, company=company,
                                 names=MATCH)

    runs = [
        ("release c1", "release", 0, 1, args.serial),
        ("match 100 c1", "match", 100, 1, args.serial),
        ("match 1000 c1", "match", 1000, 1, max(args.serial // 3, 30)),
        ("release c16", "release", 0, 16, args.requests),
        ("match 100 c16", "match", 100, 16, args.requests),
    ]
    job = {"port": port, "chain_id": chain.chain_id, "ledger": chain.ledger_address,
           "company_key": chain.dev_keys[1].hex(), "release_grant": real,
           "match_grants": match_grants, "runs": runs}
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=load_process, args=(job, results))
    process.start()
    figures: dict[str, Any] = results.get()
    process.join()

    print(f"{'measurement':20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    for name, f in figures.items():
        print(f"{name:20} {f['rps']:9.0f} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {f['non_200']:8d}")
    goals = [
        ("100 candidates p50 ≤ 10 ms", figures["match 100 c1"]["p50_ms"] <= 10),
        ("1,000 candidates p50 ≤ 50 ms", figures["match 1000 c1"]["p50_ms"] <= 50),
        ("≥ 200 matches/s of 100 at 16 in flight", figures["match 100 c16"]["rps"] >= 200),
    ]
    for goal, met in goals:
        print(f"{goal}: {'met' if met else 'NOT met'}")
    print(f"audit log verifies: {daemon.audit.verify().ok}")
    server.should_exit = True
    thread.join()
    vault.close()


if __name__ == "__main__":
    main()
