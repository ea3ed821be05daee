"""scripts/mutants.py stays aimed at the code: each mutant's original text is in its file
exactly once (two guard mutants once went stale unnoticed when the guard's code moved, and
the script is too slow for `make test` to run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import mutants  # noqa: E402


@pytest.mark.parametrize("mutant", mutants.MUTANTS, ids=lambda m: m.name)
def test_each_mutant_finds_its_original_once(mutant: mutants.Mutant) -> None:
    source = (ROOT / mutant.file).read_text()
    assert source.count(mutant.original) == 1, f"{mutant.name}: update its original text"
    for test in mutant.tests:
        assert (ROOT / test).is_file(), f"{mutant.name}: no test file {test}"
