"""Benchmark POST /v1/release against GET /v1/health on a real daemon over loopback.

The daemon and its grants are bench_daemon's: one real grant through the ledger, the other
active grants injected into the daemon's ledger index. A separate load process pre-signs
every release request (company EIP-712 signatures, fresh nonces), then drives them over
keep-alive HTTP/1.1 connections with N requests in flight, and prints releases/s, p50 and
p99 — and the same for /v1/health in the same run. At 16 in flight health and release take
turns for ``--rounds`` rounds and the medians are compared, so a burst of noise from the
rest of the machine cannot decide the ratio on its own.

    .venv/bin/python scripts/bench_release.py [--requests 6000] [--rounds 3] [--grants 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def load_process(job: dict[str, Any], results: Any) -> None:
    """Pre-sign, then drive each measurement; put the figures on ``results``."""
    figures = {}
    for name, path, concurrency, count in job["runs"]:
        warm = max(concurrency * 4, 32)
        if path == "/v1/release":
            grants = job["grant_ids"]
            payloads = [sign_release(job, grants[i % len(grants)]) for i in range(count + warm)]
        else:
            payloads = [http_request("GET", path)] * (count + warm)
        figures[name] = measure(job["port"], payloads, concurrency=concurrency, warm=warm)
    results.put(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="per measurement (16 in flight)")
    parser.add_argument("--serial", type=int, default=500, help="per measurement (1 in flight)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of health and release at 16")
    parser.add_argument("--grants", type=int, default=10_000, help="active grants, large case")
    args = parser.parse_args()

    bench = BenchDaemon(names=RELEASE_SCOPES)

    def measured(grant_ids: list[int], label: str) -> dict[str, Any]:
        runs = [
            (f"health c1 {label}", "/v1/health", 1, args.serial),
            (f"release c1 {label}", "/v1/release", 1, args.serial),
        ]
        for turn in range(1, args.rounds + 1):
            runs += [
                (f"health c16 {label} #{turn}", "/v1/health", 16, args.requests),
                (f"release c16 {label} #{turn}", "/v1/release", 16, args.requests),
            ]
        return in_load_process(load_process, bench.job(grant_ids=grant_ids, runs=runs))

    small = [bench.grant_id, *bench.inject_grants(count=9, first_id=bench.grant_id + 1,
                                                  names=RELEASE_SCOPES)]
    figures = measured(small, "10 grants")
    large = [*small, *bench.inject_grants(count=args.grants - 10, first_id=bench.grant_id + 10,
                                          names=RELEASE_SCOPES)]
    figures.update(measured(large, f"{len(large)} grants"))
    print_figures(figures)

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
    print(f"audit log verifies: {bench.daemon.audit.verify().ok}")
    bench.close()


if __name__ == "__main__":
    main()
