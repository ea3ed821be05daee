"""The house's layout holds: pure cores load no edge, nothing imports back up.

Each check runs in a fresh interpreter and reads ``sys.modules``, so what an import drags in
is measured, not assumed (issue: `import vault.policy` used to load web3's 862 modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

VAULT = Path(__file__).resolve().parents[1] / "vault"
HEAVY = ("web3", "fastapi", "starlette", "sqlalchemy", "eth_account", "uvicorn")


def _loaded_after(module: str) -> set[str]:
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "module",
    ["vault.policy", "vault.wire", "vault.grant", "vault.eth.eip712", "vault.eth.secp256k1",
     "vault.errors", "vault.scopes", "vault.privacy", "vault.match"],
)
def test_pure_cores_load_no_edge(module: str) -> None:
    assert _loaded_after(module) == set()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("owner", ("vault.daemon", "vault.cli")),
        ("eth", ("vault.daemon", "vault.cli", "vault.owner", "vault.store")),
        ("daemon", ("vault.cli",)),
    ],
)
def test_no_import_runs_back_up(package: str, never: tuple[str, ...]) -> None:
    """The owner's side is below the daemon and the CLI; the Ethereum edge below them all."""
    for path in sorted((VAULT / package).rglob("*.py")):
        upward = {m for m in _imports(path) if m.startswith(never)}
        assert not upward, f"{path.relative_to(VAULT)} imports {sorted(upward)}"


@pytest.mark.parametrize("module", ["vault/policy.py", "vault/wire.py", "vault/grant.py"])
def test_cores_import_no_edge_module(module: str) -> None:
    edges = ("vault.eth.ledger", "vault.eth.chain", "vault.eth.sync", "vault.daemon",
             "vault.cli", "vault.store", "vault.owner", "vault.ledger", "vault.sync")
    path = VAULT.parent / module
    assert not {m for m in _imports(path) if m.startswith(edges)}
