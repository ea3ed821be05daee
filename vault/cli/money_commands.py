"""The owner's money: what grants earned (`vault earnings`), moving it into the withdrawable
balance (`vault claim`) and paying it out (`vault withdraw`). Nothing owed is exit 13."""

from __future__ import annotations

from typing import Annotated

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, YesOption, console, new_app, print_json
from vault.cli._consent_errors import deciding
from vault.cli._owner import DaemonOption, as_json, confirm, owner_backend

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
    """Claim everything earned and send your whole balance to your address."""
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, None):
        balance = backend.earnings()
        total = balance.owed_wei + balance.claimable_wei
        if total == 0:
            raise errors.NothingOwed("nothing is owed to you yet; nothing changed")
        confirm(f"Withdraw {_format.format_eth(total)} to your address?", yes)
        claimed = backend.claim(None).claimed_wei if balance.claimable_wei else 0
        result = backend.withdraw()
    if json_output:
        print_json({"claimed_wei": claimed, **as_json(result)})
    else:
        console.print(f"Withdrew {_format.format_eth(result.withdrawn_wei)} to your address.")
