"""`vault` loads only what a command uses: the help and the scope catalog start without the
chain, the store or the web server (issue 12; scripts/bench_cli.py measures the time).

Each check runs in a fresh interpreter, so what this test session imported cannot hide a
module the command would load on its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: What `vault --help` and `vault scopes` must never load: the Ethereum stack, the web
#: server and the database. Each costs a noticeable part of a second at start.
HEAVY = ("web3", "eth_account", "fastapi", "sqlalchemy")


def _loaded_after(argv: list[str]) -> list[str]:
    """The HEAVY packages in ``sys.modules`` after building the app and running
    ``vault ARGV`` in a fresh interpreter."""
    program = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from typer.main import get_command
        import vault.cli
        command = get_command(vault.cli.app)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                command.main({argv!r}, prog_name="vault", standalone_mode=False)
            except SystemExit:
                pass
        heavy = {HEAVY!r}
        print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
    """)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("argv", [["--help"], ["scopes"], ["scopes", "--json"]])
def test_help_and_the_catalog_load_neither_the_chain_nor_the_store_nor_the_server(
    argv: list[str],
) -> None:
    assert _loaded_after(argv) == []


def test_devnet_help_names_the_port_the_devnet_uses() -> None:
    """The help writes the default port out rather than import vault.chain for it."""
    from typer.main import get_command

    from vault.chain import DEFAULT_DEVNET_PORT
    from vault.cli import devnet_commands

    port = next(param for param in get_command(devnet_commands.app).commands["up"].params
                if param.name == "port")
    assert f"else {DEFAULT_DEVNET_PORT})" in str(port.help)
