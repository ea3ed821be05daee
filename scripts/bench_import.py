"""Import throughput and memory of the encrypted store.

Imports N synthetic events (plays, views, purchases, moods; default 1,000,000) into a fresh
vault in ONE `import_records` call — sealed, MACed, folded into the aggregates and
committed — and prints events/s and the process's peak RSS. Baseline, same run: the cost of
only producing and canonicalising the same events (what any importer pays anyway). Then
unlock time of the full vault against an empty one (unlock must not grow with size).

    .venv/bin/python scripts/bench_import.py [--events N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from vault import crypto
from vault.identity import Event, EventKind
from vault.store import Vault

PASS = "benchmark passphrase"
MOODS = ("happy", "calm", "energetic", "tired", "sad", "stressed", "excited", "bored")


def events(n: int) -> Iterator[Event]:
    start = 1_600_000_000
    for i in range(n):
        at = start + i * 37
        kind = i % 10
        if kind < 6:
            yield Event(EventKind.PLAY, at, "spotify",
                        {"artist": f"Artist {i % 997}", "track": f"Track {i % 50_021}",
                         "ms_played": 30_000 + (i * 7919) % 240_000})
        elif kind < 8:
            yield Event(EventKind.VIEW, at, "youtube",
                        {"title": f"Video {i}", "channel": f"Channel {i % 211}",
                         "platform": "youtube", "seconds": 60 + i % 3600})
        elif kind < 9:
            yield Event(EventKind.PURCHASE, at, "jsonl",
                        {"item": f"Item {i % 5003}", "category": "books",
                         "price": float(5 + i % 200), "currency": "EUR"})
        else:
            yield Event(EventKind.MOOD, at, "manual", {"mood": MOODS[i % len(MOODS)]})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unlock_seconds(home: Path) -> float:
    """Best of three: the machine is shared, the minimum is the least disturbed figure."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        Vault.open(home, PASS).close()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    n = parser.parse_args().events

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "vault"
        with Vault.create(home, PASS, kdf=crypto.KDF_DEFAULT) as vault:
            rss_before = peak_rss_mib()
            started = time.perf_counter()
            summary = vault.import_records(events(n))
            elapsed = time.perf_counter() - started
            rss = peak_rss_mib()
            assert summary.new_events == n, summary
            size = vault.stats().database_bytes

        started = time.perf_counter()
        for ev in events(n):
            ev.canonical()
        baseline = time.perf_counter() - started

        empty = Path(tmp) / "empty"
        Vault.create(empty, PASS, kdf=crypto.KDF_DEFAULT).close()
        unlock_full, unlock_empty = unlock_seconds(home), unlock_seconds(empty)

    rate = n / elapsed
    print(f"events imported:        {n:,} in {elapsed:.1f} s (one transaction)")
    print(f"import rate:            {rate:,.0f} events/s sealed + committed (target >= 25,000)")
    print(f"baseline (generate + canonicalise only): {n / baseline:,.0f} events/s; "
          f"import costs {elapsed / baseline:.1f}x the baseline")
    print(f"peak RSS:               {rss:.0f} MiB (before import {rss_before:.0f} MiB; "
          f"target < 300)")
    print(f"database size:          {size / 2**20:.0f} MiB ({size / n:.0f} bytes/event)")
    print(f"unlock (Argon2id 64 MiB, t=3, p=4): {unlock_full * 1000:.0f} ms with {n:,} events, "
          f"{unlock_empty * 1000:.0f} ms empty (ratio {unlock_full / unlock_empty:.2f})")


if __name__ == "__main__":
    main()
