"""`vault devnet up|down|status|fund`: a local anvil chain with the ledger deployed, kept in
the vault's folder (``<home>/devnet/``) so it survives restarts, and its faucet: test ETH
for the owner's gas from anvil's funded dev account, on the devnet only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json, settings_for
from vault.cli._owner import DaemonOption, owner_backend

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


#: What the faucet sends unless told otherwise: gas for thousands of owner transactions.
DEFAULT_FUNDING = "1"

AmountOption = Annotated[
    str, typer.Option("--amount", help='ETH to send, e.g. "1", "0.5" or "5 gwei".')
]


@app.command("fund")
def fund(
    home: HomeOption = None,
    amount: AmountOption = DEFAULT_FUNDING,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Send test ETH for gas to your address from anvil's funded dev account (devnet only)."""
    settings = settings_for(home)
    if settings.chain != "devnet":
        raise errors.InputError(
            f"the faucet exists only on the devnet; this vault uses VAULT_CHAIN={settings.chain}",
            hint="send ETH for gas to your address (`vault balance` shows it) from a wallet"
            " on that chain",
        )
    wei = _format.parse_wei(amount)
    if wei <= 0:
        raise errors.InputError(f"{amount!r} is not more than 0", hint='write e.g. "1" (ETH)')
    with owner_backend(home, require_daemon=daemon) as backend:
        address = backend.balance().address
    held = _devnet(home).fund(address, wei)
    if json_output:
        print_json({"address": address, "sent_wei": wei, "wallet_wei": held})
    else:
        console.print(
            f"Sent {_format.format_eth(wei)} to {address}; it holds {_format.format_eth(held)}."
        )


def fund_new_owner(home: Path, address: str) -> int | None:
    """What `vault init` does when this home's devnet runs (VAULT_CHAIN=devnet): the new
    owner gets :data:`DEFAULT_FUNDING` for gas at once. The wei sent; None otherwise."""
    if settings_for(home).chain != "devnet":
        return None
    devnet = _devnet(home)
    if not devnet.pid_file.exists():  # no devnet was ever started here: skip loading web3
        return None
    if not devnet.status().running:
        return None
    wei = _format.parse_wei(DEFAULT_FUNDING)
    devnet.fund(address, wei)
    return wei
