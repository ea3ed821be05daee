"""How fast `vault` starts: `vault --help` and `vault scopes` against the cost of Python
loading Typer and Rich at all (`python -c "import typer, rich.console"`).

Each command runs as a whole process, as a person or a script runs it. The three run in
turn, round after round, and each ratio is the median of the rounds' own ratios, so a
machine that slows down midway moves both sides of a ratio alike. Exits 1 when a ratio
misses its goal (issue 12: at most 1.5x for --help, 2x for scopes).

Usage: .venv/bin/python scripts/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

VAULT = str(Path(sys.executable).with_name("vault"))
BASELINE = [sys.executable, "-c", "import typer, rich.console"]
#: Each measured command and the most it may take, as a multiple of the baseline.
GOALS: dict[str, tuple[list[str], float]] = {
    "vault --help": ([VAULT, "--help"], 1.5),
    "vault scopes": ([VAULT, "scopes"], 2.0),
}
WARMUP_ROUNDS = 2


def wall_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="measured rounds (default 15)")
    args = parser.parse_args()

    baseline: list[float] = []
    seconds: dict[str, list[float]] = {name: [] for name in GOALS}
    for round_number in range(WARMUP_ROUNDS + args.runs):
        measured = {name: wall_seconds(command) for name, (command, _) in GOALS.items()}
        base = wall_seconds(BASELINE)
        if round_number < WARMUP_ROUNDS:  # disk cache and .pyc files settle first
            continue
        baseline.append(base)
        for name, value in measured.items():
            seconds[name].append(value)

    print(f"{args.runs} rounds; median wall seconds; ratio = median of per-round ratios")
    print(f"{'baseline (import typer, rich.console)':40} {statistics.median(baseline):7.3f} s")
    missed = False
    for name, (_, goal) in GOALS.items():
        ratio = statistics.median(v / b for v, b in zip(seconds[name], baseline, strict=True))
        verdict = "ok" if ratio <= goal else "MISSED"
        missed |= ratio > goal
        print(f"{name:40} {statistics.median(seconds[name]):7.3f} s"
              f"   {ratio:4.2f}x baseline (goal <= {goal}x) {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
