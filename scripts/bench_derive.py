"""Benchmark: materialised scope reads and incremental derivation through the real store.

Targets (issue 5): reading any 5 materialised scopes ≤ 1 ms at both 10,000 and 1,000,000
events (ratio ≤ 1.5); importing 1,000 new events into a 1,000,000-event vault (fold only
the new events, re-derive, seal, commit) ≤ 1 s. Also prints the pure costs (fold per event,
derive_all, summary size) measured in the same run.

    .venv/bin/python scripts/bench_derive.py [--big 1000000] [--small 10000]

Building the big vault imports every event through ``Vault.import_records`` (sealed,
deduplicated), which takes minutes; the folder is a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vault import crypto, derive, scopes
from vault.identity import Event, EventKind, Fact
from vault.store import Vault

PASS = "bench passphrase"
START = 1_700_000_000
STABLE_5 = ["preferences.music", "preferences.video", "interests.topics",
            "shopping.price_band", "activity.dayparts"]
TIMED_5 = ["profile.age_range", "mood.current", "mood.recent", "preferences.music",
           "household.size"]
FACTS = [Fact("birth_date", "1991-06-14"), Fact("country", "GB"), Fact("household_size", 2),
         Fact("favourite_colors", ["teal"]), Fact("gift_wishes", ["a kite"])]


def events(n: int, *, seed: int, offset: int = 0) -> Iterator[Event]:
    """``n`` distinct, realistic events: mostly plays, some views, purchases and moods."""
    rng = random.Random(seed)
    artists = list(derive.ARTIST_GENRES) + [f"local band {i}" for i in range(5000)]
    channels = list(derive.CHANNEL_GENRES) + [f"channel {i}" for i in range(2000)]
    for i in range(offset, offset + n):
        at = START + i * 37
        roll = rng.random()
        if roll < 0.80:
            yield Event(EventKind.PLAY, at, "spotify",
                        {"artist": rng.choice(artists), "track": f"track {i}",
                         "ms_played": rng.randrange(1_000, 400_000)})
        elif roll < 0.93:
            yield Event(EventKind.VIEW, at, "youtube",
                        {"title": f"video {i}", "platform": "youtube",
                         "channel": rng.choice(channels)})
        elif roll < 0.99:
            yield Event(EventKind.PURCHASE, at, "csv",
                        {"item": f"item {i}", "category": rng.choice(scopes.PURCHASE_CATEGORIES),
                         "price": round(rng.uniform(1, 400), 2), "currency": "GBP"})
        else:
            yield Event(EventKind.MOOD, at, "manual", {"mood": rng.choice(scopes.MOODS)})


def build(home: Path, n: int, clock: Callable[[], float]) -> float:
    began = time.perf_counter()
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM, clock=clock) as vault:
        vault.import_records(FACTS)
        step = 100_000
        for offset in range(0, n, step):
            vault.import_records(events(min(step, n - offset), seed=offset, offset=offset))
    return time.perf_counter() - began


def read_ms(vault: Vault, names: list[str], rounds: int) -> float:
    """Median milliseconds for one ``Vault.derived(names)`` call."""
    vault.derived(names)  # warm the page cache and the connection pool
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        vault.derived(names)
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def pure_costs() -> None:
    batch = list(events(100_000, seed=1))
    aggregates = derive.Aggregates.empty()
    began = time.perf_counter()
    aggregates.fold(batch)
    fold_us = (time.perf_counter() - began) / len(batch) * 1e6
    facts = {f.name: f.value for f in FACTS}
    now = START + 100_000 * 37
    rounds = 200
    began = time.perf_counter()
    for _ in range(rounds):
        derive.derive_all(facts, aggregates, now=now)
    derive_ms = (time.perf_counter() - began) / rounds * 1000
    blob = aggregates.to_json()
    began = time.perf_counter()
    for _ in range(rounds):
        derive.Aggregates.from_json(blob)
    load_ms = (time.perf_counter() - began) / rounds * 1000
    print(f"pure: fold {fold_us:.2f} µs/event; derive_all {derive_ms:.3f} ms; "
          f"summary {len(blob) / 1024:.1f} KiB, from_json {load_ms:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    pure_costs()
    with tempfile.TemporaryDirectory() as tmp:
        now = float(START + args.big * 37 + 3600)
        figures: dict[int, dict[str, float]] = {}
        for n in (args.small, args.big):
            home = Path(tmp) / f"v{n}"
            built = build(home, n, lambda: now)
            with Vault.open(home, PASS, clock=lambda: now) as vault:
                figures[n] = {name: read_ms(vault, names, args.rounds)
                              for name, names in (("stable", STABLE_5), ("timed", TIMED_5))}
                print(f"{n:>9,} events (built in {built:.0f} s): read 5 scopes "
                      f"{figures[n]['stable']:.3f} ms (materialised), "
                      f"{figures[n]['timed']:.3f} ms (incl. 3 time-dependent)")
                if n == args.big:
                    fresh = list(events(1000, seed=-1, offset=n))
                    began = time.perf_counter()
                    summary = vault.import_records(fresh)
                    took = time.perf_counter() - began
                    assert summary.new_events == 1000
                    print(f"incremental: import 1,000 new events into {n:,}: {took:.3f} s "
                          f"(target ≤ 1 s)")
        for kind in ("stable", "timed"):
            ratio = figures[args.big][kind] / figures[args.small][kind]
            print(f"ratio {kind} read {args.big:,} / {args.small:,}: {ratio:.2f} "
                  f"(target ≤ 1.5; each ≤ 1 ms)")


if __name__ == "__main__":
    main()
