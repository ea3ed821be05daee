"""The owner's money: what grants earned (`vault earnings`), the wallet that pays gas and what
a payout nets after gas (`vault balance`), moving earnings into the withdrawable balance
(`vault claim`) and paying it out (`vault withdraw`). Nothing owed is exit 13."""

from __future__ import annotations

from typing import Annotated

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, YesOption, console, new_app, print_json
from vault.cli._consent_errors import deciding
from vault.cli._owner import DaemonOption, as_json, owner_backend

app = new_app()


@app.command("earnings")
def earnings(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """What your grants earned, what you can claim, and what you can withdraw now."""
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.earnings()
    if json_output:
        print_json(as_json(found))
        return
    if found.grants:
        console.print(_format.earnings_table(found))
    console.print(f"claimable now:       {_format.format_eth(found.claimable_wei)}")
    console.print(f"ready to withdraw:   {_format.format_eth(found.owed_wei)}")


@app.command("balance")
def balance(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Your wallet (it pays gas), what the ledger owes you, and what a payout nets after gas."""
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.balance()
    if json_output:
        print_json(as_json(found))
        return
    eth = _format.format_eth
    console.print(f"address:             {found.address}")
    console.print(f"wallet (pays gas):   {eth(found.wallet_wei)}")
    console.print(f"ready to withdraw:   {eth(found.owed_wei)}")
    console.print(f"claimable now:       {eth(found.claimable_wei)}")
    if found.payout_gas:
        console.print(
            f"payout gas:          {eth(found.payout_gas_wei)} ({found.payout_gas:,} gas)"
        )
        console.print(f"net of gas:          {eth(found.payout_net_wei)}")
    if found.wallet_wei < found.payout_gas_wei:
        console.print(
            "Your wallet cannot pay that gas yet: send it ETH"
            " (on the devnet: `vault devnet fund`)."
        )


@app.command("claim")
def claim(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Grant ids (default: every grant with earnings).")
    ] = None,
    home: HomeOption = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Move what your grants earned so far into your withdrawable balance."""
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, None):
        result = backend.claim(list(ids) if ids else None)
    if result.claimed_wei == 0:
        raise errors.NothingOwed("nothing to claim yet; nothing changed")
    if json_output:
        print_json(as_json(result))
    else:
        console.print(
            f"Claimed {_format.format_eth(result.claimed_wei)}; `vault withdraw` pays it out."
        )


@app.command("withdraw")
def withdraw(
    home: HomeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Claim everything earned, then send your whole ledger balance to your address.

    The claim comes first so that the question names exactly the amount that will be paid:
    earnings grow every second, so a total read before the claim is never what it credits.
    """
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, None):
        before = backend.balance()
        if before.owed_wei + before.claimable_wei == 0:
            raise errors.NothingOwed("nothing is owed to you yet; nothing changed")
        claimed = backend.claim(None).claimed_wei if before.claimable_wei else 0
        if claimed and not json_output:
            console.print(f"Claimed {_format.format_eth(claimed)} into your ledger balance.")
        ready = backend.balance()
        question = (
            f"Withdraw {_format.format_eth(ready.owed_wei)} to {ready.address}"
            f" (gas about {_format.format_eth(ready.payout_gas_wei)})?"
        )
        if not yes and not typer.confirm(question, default=False):
            console.print("Nothing withdrawn; what was claimed stays in your ledger balance.")
            raise typer.Exit(1)
        result = backend.withdraw()
    if json_output:
        print_json({"claimed_wei": claimed, **as_json(result)})
    else:
        console.print(
            f"Withdrew {_format.format_eth(result.withdrawn_wei)} to {ready.address}."
        )
