"""The install paths README.md and the guides give, run as a newcomer runs them: a fresh
virtual environment, `pip install .` (the company SDK alone), then `pip install '.[owner]'`,
then the documented commands.

pip takes packages from the index this machine is configured with, as a newcomer's would
(nothing is copied from the test's own environment). The package is built from a copy of
the checkout's `pyproject.toml`, `README.md` and `vault/`, so the build writes nothing into
the working tree. `make demo` is tests/test_demo.py; `make test` is the suite itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vault import _entry
from vault import chain as chains

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FreshEnv:
    venv: Path
    source: Path
    home: Path

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
        """``args[0]`` from the venv's bin/, with a newcomer's environment: no VAULT_*."""
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("VAULT_", "VIRTUAL_ENV", "PYTHON"))}
        clean |= {"VAULT_HOME": str(self.home), "NO_COLOR": "1", "COLUMNS": "100"}
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]],
                               env=clean | (env or {}), capture_output=True, text=True,
                               timeout=timeout, cwd=self.source)

    def pip_install(self, target: str) -> None:
        done = self.run("pip", "install", "--quiet", target, timeout=1200)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshEnv]:
    base = tmp_path_factory.mktemp("fresh-install")
    source = base / "checkout"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "vault", source / "vault",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    yield FreshEnv(venv, source, base / "home")


def _one_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_the_entry_point_knows_every_module_of_the_owner_extra() -> None:
    """The guard checks the extra pyproject.toml declares, not a list that drifted."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[\[<>=!~ ]", requirement)[0].lower().replace("-", "_")
                for requirement in project["optional-dependencies"]["owner"]}
    assert set(_entry.OWNER_MODULES) == declared
    assert project["scripts"]["vault"] == "vault._entry:main"


def test_the_entry_point_without_the_owner_side_says_so_in_one_line() -> None:
    """The console script's code with the owner extra's modules made unimportable (the
    fresh-venv test below installs for real)."""
    program = textwrap.dedent(f"""
        import sys
        BLOCKED = {_entry.OWNER_MODULES!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError("No module named " + name, name=name)
                return None
        sys.meta_path.insert(0, Block())
        import importlib.util
        found = importlib.util.find_spec
        importlib.util.find_spec = lambda name, package=None: (
            None if name in BLOCKED else found(name, package))
        sys.argv = ["vault", "--help"]
        from vault._entry import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == _entry.OWNER_SIDE_MISSING and done.stdout == ""
    assert _one_line(done.stderr) == (
        "vault: the owner side is not installed (cryptography, sqlmodel, fastapi, … missing) "
        "— run pip install '.[owner]' in the vault checkout (the SDK, vault.client, needs "
        "none of it)")


@pytest.mark.slow
def test_sdk_only_then_owner_install(fresh: FreshEnv) -> None:
    """`pip install .`: the SDK imports, and `vault` says in one line how to get the owner
    side (exit 20). Then `pip install '.[owner]'`: the same `vault` is the owner's CLI."""
    fresh.pip_install(".")
    sdk = fresh.run("python", "-c", "from vault.client import Company, verify_receipt; "
                    "import importlib.util as u; print(u.find_spec('typer') is None)")
    assert sdk.returncode == 0 and sdk.stdout.strip() == "True", sdk.stderr
    for args in (["vault", "--help"], ["vault", "init"]):
        refused = fresh.run(*args)
        assert refused.returncode == _entry.OWNER_SIDE_MISSING
        assert refused.stdout == ""
        line = _one_line(refused.stderr)
        assert line.startswith("vault: the owner side is not installed (")
        assert "pip install '.[owner]'" in line

    fresh.pip_install(".[owner]")
    helped = fresh.run("vault", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("init", "import", "serve", "devnet", "approve"):
        assert command in helped.stdout

    # Installed from a copy, not the checkout: no anvil under it. The devnet says what
    # works instead, in one line, with every variable another node needs.
    devnet = fresh.run("vault", "devnet", "up")
    assert devnet.returncode == 7
    line = _one_line(devnet.stderr)
    assert "npm ci" not in line and "npm install" in line and "pip install -e" in line
    for variable in ("VAULT_CHAIN=rpc", "VAULT_RPC_URL", "VAULT_CHAIN_ID", "VAULT_LEDGER"):
        assert variable in line


@pytest.mark.slow
@pytest.mark.chain
def test_the_owner_install_on_another_node_needs_the_four_variables(
    fresh: FreshEnv, anvil_chain: chains.RpcChain
) -> None:
    """The owner guide's other chain: VAULT_CHAIN=rpc, VAULT_RPC_URL, VAULT_CHAIN_ID and
    VAULT_LEDGER. With all four a new vault syncs its requests from the node; without the
    ledger or the chain id it says which variable is missing, in one line."""
    if not (fresh.venv / "bin" / "vault").exists() or fresh.run(
            "python", "-c", "import typer").returncode != 0:
        fresh.pip_install(".[owner]")
    node = {"VAULT_CHAIN": "rpc", "VAULT_RPC_URL": str(anvil_chain.rpc_url),
            "VAULT_CHAIN_ID": str(anvil_chain.chain_id),
            "VAULT_LEDGER": anvil_chain.ledger_address, "VAULT_PASSPHRASE": "a newcomer's"}
    created = fresh.run("vault", "init", env=node)
    assert created.returncode == 0, created.stderr
    listed = fresh.run("vault", "requests", "--json", env=node)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"
    for missing in ("VAULT_LEDGER", "VAULT_CHAIN_ID"):
        partial = {k: v for k, v in node.items() if k != missing}
        refused = fresh.run("vault", "requests", env=partial)
        assert refused.returncode != 0
        assert missing in _one_line(refused.stderr)
