"""Attack the noise as colluding companies would, against a real daemon over HTTP (THREATS
row 38).

One vault holds Ada's sample exports. Each trial serves it under a fresh noise secret (as if
it were another person's vault: the noise is keyed by the vault's own secret), on the
embedded chain, with K sybil companies each holding an active grant for every noisy scope
(injected into the daemon's ledger index the way the sync adds them, as
scripts/bench_release.py does). Every company asks once in each of E weekly epochs (the
daemon's clock moves a week at a time). The companies then pool their answers and estimate
each noisy entry by

* majority vote: the most frequent value at each position;
* the best Bayesian estimate: the maximum a posteriori list of distinct values, assuming
  every answer an independent randomized response with the catalog's keep probability
  (the assumption under which pooling helps most), uniform prior.

Printed: the fraction of true entries recovered exactly, against one answer's, for
K ∈ {1, 3, 10} and E ∈ {1, 12}, with the binomial standard error. The goal: pooling recovers
no more than one answer (within sampling error), and one answer keeps ≥ 95 % of the true
entries. For contrast, the same attack on the recipe before catalog v2 (noise drawn per
company and epoch, recomputed here from that recipe), and what a per-company noise layer
on top of the memoised one would give up to collusion at the same single-answer utility.

    .venv/bin/python scripts/eval_privacy.py [--trials 200]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import math
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_release import inject_grants  # a sibling script, not a package

COMPANIES = (1, 3, 10)
EPOCHS = (1, 12)
WEEK = 7 * 86_400


class Clock:
    """The daemon's clock; ``offset`` moves it a week at a time without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class NoiseSecretVault:
    """The unlocked vault with another noise secret: another person's noise, same data."""

    def __init__(self, vault: Any, noise: bytes) -> None:
        self._vault = vault
        self._noise = noise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vault, name)

    def secret(self, name: str) -> bytes:
        return self._noise if name == "noise" else bytes(self._vault.secret(name))


@contextmanager
def serving(vault: Any, chain: Any, clock: Clock) -> Iterator[tuple[str, Any]]:
    """A real daemon (uvicorn, its signing process) until the block ends."""
    import uvicorn

    from vault.chain import free_port
    from vault.config import Settings
    from vault.daemon.app import create_app

    port = free_port()
    settings = Settings(
        home=vault.home, chain="embedded", port=port, sync_interval_seconds=3600,
        # The clock runs up to E weeks ahead of the index's last sync and confirmations.
        max_index_lag_seconds=10**9, company_releases_per_day=0, privacy_budget=0,
    )
    app = create_app(settings, vault=vault, chain=chain, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app.state.daemon
    finally:
        server.should_exit = True
        thread.join()


def collect(vault: Any, chain: Any, noise: bytes, keys: list[bytes], names: list[str],
            epochs: int, *, first_id: int) -> list[list[dict[str, Any]]]:
    """answers[epoch][company]: the preferences each company received (grant ids from
    ``first_id``: the index file keeps earlier trials' injected events)."""
    import httpx

    from vault import scopes
    from vault.eth import eip712

    clock = Clock()
    domain = eip712.Domain(chain.chain_id, chain.ledger_address)
    bitmap = scopes.bitmap(names)
    answers: list[list[dict[str, Any]]] = []
    with serving(NoiseSecretVault(vault, noise), chain, clock) as (base, daemon), \
            httpx.Client(base_url=base) as http:
        grants = [inject_grants(daemon, count=1, first_id=first_id + n, names=names,
                                company=eip712.address_of(key), duration=(epochs + 1) * WEEK)[0]
                  for n, key in enumerate(keys)]
        for _ in range(epochs):
            this_epoch = []
            for key, grant_id in zip(keys, grants, strict=True):
                nonce, issued_at = "0x" + secrets.token_hex(32), int(clock())
                signature = eip712.sign_release(key, domain, grant_id, bitmap, nonce, issued_at)
                response = http.post("/v1/release", json={
                    "grant_id": grant_id, "scopes": names, "nonce": nonce,
                    "issued_at": issued_at, "signature": "0x" + signature.hex()})
                response.raise_for_status()
                this_epoch.append(response.json()["preferences"])
            answers.append(this_epoch)
            clock.offset += WEEK
    return answers


def noisy_lists(preferences: dict[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    """(scope, field, entries) of every noisy list in an answer."""
    from vault import privacy

    for name, value in sorted(preferences.items()):
        if value.get("status") != "ok":
            continue
        for field, key, _, _ in privacy._noise_targets(name):
            entries = value.get(field) or []
            yield name, field, [e[key] if key is not None else e for e in entries]


def majority(observed: list[list[str]]) -> list[str]:
    return [Counter(column).most_common(1)[0][0] for column in zip(*observed, strict=True)]


def bayes(observed: list[list[str]], vocabulary: tuple[str, ...], keep: float) -> list[str]:
    """The MAP list of distinct values, each position's observations taken as independent
    randomized responses (keep, else uniform over the other values); greedy by margin."""
    swap = math.log((1 - keep) / (len(vocabulary) - 1))
    scores = []
    for column in zip(*observed, strict=True):
        seen = Counter(column)
        scores.append({v: seen[v] * math.log(keep) + (len(column) - seen[v]) * swap
                       for v in vocabulary})
    order = sorted(range(len(scores)), key=lambda i: -max(scores[i].values()))
    chosen: dict[int, str] = {}
    for i in order:
        ranked = sorted(vocabulary, key=lambda v: -scores[i][v])
        chosen[i] = next(v for v in ranked if v not in chosen.values())
    return [chosen[i] for i in range(len(scores))]


def v1_answer(truth: dict[str, Any], secret: bytes, company: str,
              epoch: int) -> dict[str, list[str]]:
    """The recipe before catalog v2, recomputed for contrast: each entry replaced with
    probability 0.05 by a draw of HMAC(secret, "vault/noise/v1" ‖ company ‖ scope ‖ epoch ‖
    field ‖ position) — fresh for every company and every epoch."""
    from vault import privacy

    out: dict[str, list[str]] = {}
    for name, field, entries in noisy_lists(truth):
        vocabulary = next(v for f, _, v, _ in privacy._noise_targets(name) if f == field)
        released = list(entries)
        for position in range(len(released)):
            message = b"vault/noise/v1" + b"".join(
                b"\x00" + p.encode()
                for p in (company, name, str(epoch), field, str(position)))
            draw = hmac.new(secret, message, hashlib.sha256).digest()
            if int.from_bytes(draw[:8], "big") / float(1 << 64) >= 0.05:
                continue
            choices = [v for v in vocabulary if v not in released]
            released[position] = choices[int.from_bytes(draw[8:16], "big") % len(choices)]
        out[f"{name}/{field}"] = released
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200, help="noise secrets (vaults)")
    args = parser.parse_args()
    # Each new daemon's first sync reads the previous trials' injected grants back from its
    # index file and warns that the chain does not have them; that is expected here.
    logging.getLogger("vault").setLevel(logging.ERROR)

    from vault import crypto, privacy, scopes
    from vault.chain import EmbeddedChain
    from vault.importers import importer_for, sample_exports
    from vault.store import Vault

    home = Path(tempfile.mkdtemp(prefix="eval-privacy-"))
    vault = Vault.create(home, "eval", kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    chain = EmbeddedChain()
    names = [s.name for s in scopes.CATALOG if s.noisy]
    truth = vault.derived(names)
    truth_lists = {f"{n}/{f}": e for n, f, e in noisy_lists(truth)}
    vocabularies = {f"{n}/{f}": v for n in names for f, _, v, _ in privacy._noise_targets(n)}
    keys = [hashlib.sha256(b"eval sybil %d" % i).digest() for i in range(max(COMPANIES))]
    entries_per_trial = sum(map(len, truth_lists.values()))
    print(f"{args.trials} trials x {entries_per_trial} noisy entries of {len(names)} scopes; "
          f"keep probability {privacy.KEEP_PROBABILITY}")

    exact: Counter[tuple[str, int, int]] = Counter()  # (estimator, K, E) → entries right
    v1_exact: Counter[tuple[int, int]] = Counter()
    total = 0
    started = time.perf_counter()
    for trial in range(args.trials):
        noise = hashlib.sha256(b"eval noise secret %d" % trial).digest()
        answers = collect(vault, chain, noise, keys, names, max(EPOCHS),
                          first_id=1000 + trial * len(keys))
        grid = [[{f"{n}/{f}": e for n, f, e in noisy_lists(a)} for a in epoch]
                for epoch in answers]
        v1_grid = [[v1_answer(truth, noise, f"company-{c}", t) for c in range(len(keys))]
                   for t in range(max(EPOCHS))]
        for where, true_entries in truth_lists.items():
            total += len(true_entries)
            for k in COMPANIES:
                for e in EPOCHS:
                    pooled = [grid[t][c][where] for t in range(e) for c in range(k)]
                    vote = majority(pooled)
                    best = bayes(pooled, vocabularies[where], privacy.KEEP_PROBABILITY)
                    exact["vote", k, e] += sum(map(str.__eq__, vote, true_entries))
                    exact["bayes", k, e] += sum(map(str.__eq__, best, true_entries))
                    old = [v1_grid[t][c][where] for t in range(e) for c in range(k)]
                    v1_exact[k, e] += sum(map(str.__eq__, majority(old), true_entries))
            exact["one", 1, 1] += sum(map(str.__eq__, grid[0][0][where], true_entries))
        print(f"  trial {trial + 1}/{args.trials} ({time.perf_counter() - started:.0f} s)",
              end="\r", flush=True)
    print()

    def share(right: int) -> str:
        p = right / total
        return f"{p:6.2%} ± {math.sqrt(p * (1 - p) / total):.2%}"

    one = exact["one", 1, 1]
    print(f"\none answer (one company, one epoch) keeps {share(one)} of the true entries")
    print(f"\n{'K companies':>12} {'E epochs':>9} {'majority vote':>18} {'Bayes (MAP)':>18} "
          f"{'minus one answer':>17} {'v1 recipe vote':>18}")
    for k in COMPANIES:
        for e in EPOCHS:
            vote, best = exact["vote", k, e], exact["bayes", k, e]
            print(f"{k:>12} {e:>9} {share(vote):>18} {share(best):>18} "
                  f"{(max(vote, best) - one) / total:>+17.2%} {share(v1_exact[k, e]):>18}")
    print("\nA per-company noise layer on top of the memoised one, at the same utility: "
          "one answer keeps 95 %; pooled answers average the per-company layer away and "
          "keep the memoised layer's share.")
    print(f"{'per-company keep':>17} {'memoised keep':>14} {'pooled answers recover':>23}")
    for per_company in (1.0, 0.99, 0.975, 0.95):
        memoised = privacy.KEEP_PROBABILITY / per_company
        print(f"{per_company:>17.3f} {memoised:>14.4f} {memoised:>23.2%}")
    vault.close()
    chain.close()


if __name__ == "__main__":
    main()
