"""Benchmark POST /v1/match beside POST /v1/release on a real daemon over loopback.

The daemon is bench_daemon's, its vault holding Ada's sample exports plus 5,000 plays and
views of 500 artists and 1,000 films (so the history summary has a realistic size), with
matches and the privacy budget uncapped; grants for ``match.history`` are injected into the
ledger index. A separate load process pre-signs every request (ten different lists per
size, rotated, each candidate with genres, a prior and 20 ``similar`` references, a fifth
of them from the person's history) and drives them over keep-alive connections, 1 and 16
in flight; release is measured in the same run. The goals (issue 16): 100 candidates p50
≤ 10 ms and 1,000 candidates p50 ≤ 50 ms at one in flight; ≥ 200 matches/s of 100
candidates at 16 in flight.

    .venv/bin/python scripts/bench_match.py [--serial 300] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_daemon import (
    RELEASE_SCOPES,
    BenchDaemon,
    http_request,
    in_load_process,
    measure,
    print_figures,
    sign_release,
)

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


def sign_match(job: dict[str, Any], grant_id: int, listed: list[dict[str, Any]],
               listed_hash: bytes) -> bytes:
    from vault import ledger, scopes
    from vault.eth import eip712

    nonce = "0x" + secrets.token_hex(32)
    issued_at = int(time.time())
    signature = eip712.sign_match(
        bytes.fromhex(job["company_key"]), ledger.Domain(job["chain_id"], job["ledger"]),
        grant_id, scopes.bitmap(MATCH), listed_hash, 10, nonce, issued_at)
    body = {"grant_id": grant_id, "scopes": MATCH, "k": 10, "candidates": listed,
            "nonce": nonce, "issued_at": issued_at, "signature": "0x" + signature.hex()}
    return http_request("POST", "/v1/match", json.dumps(body).encode())


def load_process(job: dict[str, Any], results: Any) -> None:
    from vault.canonical import json_hash

    rng = random.Random(7)
    lists = {size: [candidates(size, rng) for _ in range(10)] for size in (100, 1000)}
    hashes = {size: [json_hash(listed) for listed in lists[size]] for size in lists}
    grants = job["match_grants"]
    figures = {}
    for name, kind, size, concurrency, count in job["runs"]:
        warm = max(concurrency * 4, 16)
        payloads = [
            sign_release(job, job["release_grant"]) if kind == "release"
            else sign_match(job, grants[i % len(grants)], lists[size][i % 10],
                            hashes[size][i % 10])
            for i in range(count + warm)
        ]
        figures[name] = measure(job["port"], payloads, concurrency=concurrency, warm=warm)
    results.put(figures)


def cpu_parts(history: list[Any], *, rounds: int = 15) -> None:
    """Print the CPU time of each part of one match, in this process (best of ``rounds``
    process-time measurements, so other processes on the machine do not count): the parse
    and validation of the body, the candidates hash and the scoring with the Gumbel top-k."""
    from vault import match

    rng = random.Random(7)
    now = time.time()
    found = match.History()
    found.fold(history)
    who = match.person({}, found, never_shared=(), dislikes=(), now=now)

    def best(work: Any) -> float:
        times = []
        for _ in range(rounds):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
        return min(times) * 1000

    print(f"{'CPU per match, ms':20} {'parse':>8} {'hash':>8} {'score':>8} {'total':>8}")
    for size in (100, 1000):
        raw = json.dumps({"grant_id": 1, "scopes": MATCH, "k": 10,
                          "candidates": candidates(size, rng), "nonce": "0x" + "11" * 32,
                          "issued_at": 1, "signature": "0x" + "22" * 65}).encode()
        body = match.read_request(raw)
        listed = match.candidates_hash(body.candidates)
        figures = (
            best(lambda raw=raw: match.read_request(raw)),
            best(lambda body=body: match.candidates_hash(body.candidates)),
            best(lambda body=body, listed=listed: match.rank(
                body.candidates, who, k=10, tier=match.HISTORY, company="0x" + "ab" * 20,
                secret=b"\x07" * 32, now=now, listed=listed)),
        )
        print(f"{f'{size} candidates':20} " + " ".join(f"{f:8.2f}" for f in figures)
              + f" {sum(figures):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serial", type=int, default=300, help="per measurement (1 in flight)")
    parser.add_argument("--requests", type=int, default=3000, help="per measurement (16)")
    args = parser.parse_args()

    from vault.identity import Event, EventKind

    rng = random.Random(1)
    now = int(time.time())
    history = [
        Event(EventKind.PLAY, now - i * 600, "bench",
              {"artist": rng.choice(ARTISTS), "track": f"Track {i % 900}", "ms_played": 180_000})
        for i in range(3000)
    ] + [Event(EventKind.VIEW, now - i * 900, "bench", {"title": rng.choice(FILMS)})
         for i in range(2000)]
    bench = BenchDaemon(names=RELEASE_SCOPES, extra_events=history,
                        matches_per_epoch=1_000_000)
    match_grants = bench.inject_grants(count=10, first_id=bench.grant_id + 1, names=MATCH)
    runs = [
        ("release c1", "release", 0, 1, args.serial),
        ("match 100 c1", "match", 100, 1, args.serial),
        ("match 1000 c1", "match", 1000, 1, max(args.serial // 3, 30)),
        ("release c16", "release", 0, 16, args.requests),
        ("match 100 c16", "match", 100, 16, args.requests),
    ]
    figures = in_load_process(load_process, bench.job(
        release_grant=bench.grant_id, match_grants=match_grants, runs=runs))
    print_figures(figures)
    goals = [
        ("100 candidates p50 ≤ 10 ms", figures["match 100 c1"]["p50_ms"] <= 10),
        ("1,000 candidates p50 ≤ 50 ms", figures["match 1000 c1"]["p50_ms"] <= 50),
        ("≥ 200 matches/s of 100 at 16 in flight", figures["match 100 c16"]["rps"] >= 200),
    ]
    for goal, met in goals:
        print(f"{goal}: {'met' if met else 'NOT met'}")
    print(f"audit log verifies: {bench.daemon.audit.verify().ok}")
    bench.close()
    cpu_parts(history)


if __name__ == "__main__":
    main()
