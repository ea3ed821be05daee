"""`vault devnet up|down|status`: a local anvil chain with the ledger deployed, kept in the
vault's folder (``<home>/devnet/``) so it survives restarts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json, settings_for

if TYPE_CHECKING:
    from vault.eth.chain import Devnet, DevnetStatus

app = new_app("A local anvil chain with the consent ledger deployed (for development).")

PortOption = Annotated[
    int | None,
    typer.Option(
        "--port",
        # vault.chain.DEFAULT_DEVNET_PORT, written out: importing vault.chain loads web3
        # (tests/cli/test_imports.py checks the two agree).
        help="Port on 127.0.0.1 (default: the last one used, else 8545).",
        show_default=False,
    ),
]


def _devnet(home: Path | None) -> Devnet:
    from vault.eth.chain import Devnet

    return Devnet(settings_for(home).home)


def _show(status: DevnetStatus, json_output: bool) -> None:
    if json_output:
        print_json(status.as_dict())
        return
    if not status.running:
        console.print("devnet: stopped")
        if status.ledger:
            console.print(f"ledger:  {status.ledger} (kept in {status.state_file})")
        return
    console.print(f"devnet:  running (pid {status.pid})")
    console.print(f"rpc_url: {status.rpc_url}")
    console.print(f"chain:   {status.chain_id}, block {status.block_number}")
    console.print(f"ledger:  {status.ledger}")


@app.command("up")
def up(home: HomeOption = None, port: PortOption = None, json_output: JsonOption = False) -> None:
    """Start anvil on 127.0.0.1 and deploy the ledger (once); does nothing if it runs."""
    _show(_devnet(home).up(port=port), json_output)


@app.command("down")
def down(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Stop the anvil that `vault devnet up` started (its chain state is kept)."""
    stopped = _devnet(home).down()
    if json_output:
        print_json({"stopped": stopped})
    else:
        console.print("devnet stopped" if stopped else "devnet was not running")


@app.command("status")
def status(home: HomeOption = None, json_output: JsonOption = False) -> None:
    """Show whether the devnet runs, its RPC URL, chain id and ledger address."""
    _show(_devnet(home).status(), json_output)
