"""Benchmark a household answer (issue 18) beside one owner's: two vaults' daemons over
loopback on one anvil, a group grant approved by both owners and a single-owner grant of
the first; sequential matches of 100 candidates (match.history, 20 ``similar`` references
each) and releases of preferences.music through the SDK, every receipt verified.

A household answer adds the second vault's checks and scoring, the coordinator's forward
(one HTTP round trip on loopback) and the combining; the figures show what that costs.
Matches and the privacy budget are uncapped for the run (the terms' matches_per_epoch, the
daemon's privacy_budget).

    .venv/bin/python scripts/bench_household.py [--requests 100]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from vault import chain as chains
from vault import crypto, ledger
from vault.client import Company
from vault.config import Settings
from vault.daemon.app import create_app
from vault.identity import Event, EventKind
from vault.store import Vault

PASS = "bench household passphrase"
ARTISTS = [f"Artist {i}" for i in range(50)]
MUSIC = ["preferences.music"]
GRANTED = [*MUSIC, "match.history"]
DAY = 86_400


def plays(rng: random.Random, artists: list[str], count: int) -> list[Event]:
    now = int(time.time())
    return [
        Event(EventKind.PLAY, now - rng.randrange(200 * DAY), "manual",
              {"artist": artist, "track": f"{artist} song {rng.randrange(8)}",
               "ms_played": 200_000})
        for artist in (rng.choice(artists) for _ in range(count))
    ]


def candidates(rng: random.Random, size: int = 100) -> list[dict[str, Any]]:
    return [
        {"id": f"item-{i}", "title": f"Candidate {i}", "kind": "track", "genres": ["rock"],
         "similar": [{"ref": ref, "weight": round(rng.random(), 3)} for ref in
                     rng.sample(ARTISTS, 4) + [f"Stranger {rng.randrange(10**6)}"
                                               for _ in range(16)]]}
        for i in range(size)
    ]


@contextmanager
def serving(vault: Vault, chain: chains.RpcChain, rpc_url: str) -> Iterator[tuple[str, str]]:
    """The vault's daemon on a free loopback port: its base URL and owner token."""
    settings = Settings(
        home=vault.home, chain="rpc", rpc_url=rpc_url, chain_id=chain.chain_id,
        ledger=chain.ledger_address, port=chains.free_port(), sync_interval_seconds=0.2,
        privacy_budget=0,
    )
    app = create_app(settings, vault=vault, chain=chain)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{settings.port}", app.state.token.reveal()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def timed(label: str, count: int, call: Callable[[], object]) -> None:
    call()  # warm: memoised answers, connections
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    print(f"{label:<34} p50 {statistics.median(samples):7.1f} ms   "
          f"p95 {samples[int(0.95 * (len(samples) - 1))]:7.1f} ms   (n={count})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(18)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        anvil = stack.enter_context(chains.AnvilNode())
        address = ledger.deploy_ledger(anvil.w3, sender=anvil.addresses[0])
        chain = chains.RpcChain(anvil.rpc_url, chain_id=anvil.chain_id, ledger_address=address,
                                timeout=10.0)
        stack.callback(chain.close)
        vaults = []
        for name, artists in (("first", ARTISTS[:30]), ("second", ARTISTS[20:])):
            vault = Vault.create(Path(tmp) / name, PASS, kdf=crypto.KDF_MINIMUM)
            stack.callback(vault.close)
            vault.import_records(plays(rng, artists, 2_000))
            anvil.w3.eth.send_transaction(
                {"from": anvil.addresses[0], "to": vault.owner_address, "value": 10**18})
            vaults.append(vault)
        served = [stack.enter_context(serving(v, chain, anvil.rpc_url)) for v in vaults]
        for base, token in served:
            headers = {"Authorization": f"Bearer {token}"}
            terms = httpx.get(base + "/v1/owner/terms", headers=headers).json()
            httpx.put(base + "/v1/owner/terms", headers=headers,
                      json={**terms, "matches_per_epoch": 1_000_000}).raise_for_status()
            httpx.post(base + "/v1/owner/terms/publish", headers=headers,
                       json={"endpoint": base}).raise_for_status()

        company = stack.enter_context(
            Company(anvil.accounts[2], chain, address, poll_interval=0.05))
        owners = [v.owner_address for v in vaults]
        solo = company.request_access(owners[0], GRANTED, 30 * DAY, 10**16, "bench")
        group = company.request_group_access(owners, GRANTED, 30 * DAY, 2 * 10**16, "bench")
        time.sleep(1.0)  # both sync loops see the requests
        for request, approvers in ((solo, served[:1]), (group, served)):
            for base, token in approvers:
                httpx.post(f"{base}/v1/owner/requests/{request.id}/approve",
                           headers={"Authorization": f"Bearer {token}"},
                           json={"submit": False}).raise_for_status()
        solo_grant = company.wait_for_grant(solo, timeout=60)
        group_grant = company.wait_for_grant(group, timeout=60)

        listed = candidates(rng)
        print(f"one owner vs a household of two, sequential, {args.requests} each")
        timed("release, one owner", args.requests, lambda: company.fetch(solo_grant, MUSIC))
        timed("release, household of two", args.requests,
              lambda: company.fetch(group_grant, MUSIC))
        timed("match of 100, one owner", args.requests,
              lambda: company.match(solo_grant, listed, k=10))
        timed("match of 100, household of two", args.requests,
              lambda: company.match(group_grant, listed, k=10))


if __name__ == "__main__":
    main()
