"""The owner's consent commands: review requests, approve, deny, revoke, list grants.

Every command talks to the running daemon when one serves this home, else opens the vault
itself (:mod:`vault.cli.backend`). Listings take ``--json``; confirmations take ``--yes``.
Failures are one line with a hint and their own exit code (README "Exit codes"): an unknown
request 10, a request already decided 11, another owner's request 12, no daemon when
``--daemon`` asks for one 9, an unreachable chain 7. Each check is made before anything
changes.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import (
    HomeOption,
    JsonOption,
    YesOption,
    console,
    new_app,
    print_json,
)
from vault.cli._consent_errors import deciding
from vault.cli._owner import DaemonOption, as_json, confirm, owner_backend

app = new_app()

StatusFilter = Annotated[
    str,
    typer.Option("--status", help="pending, active or all.", show_default=True),
]
RequestId = Annotated[int, typer.Argument(help="The request's id.")]


@app.command("requests")
def list_requests(
    home: HomeOption = None,
    status: StatusFilter = "pending",
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """List access requests, each with the consent statement approving it would sign."""
    if status not in ("pending", "active", "all"):
        raise errors.InputError(f"unknown status {status!r}", hint="use pending, active or all")
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.requests(status)
    if json_output:
        print_json(as_json(found))
        return
    if not found:
        console.print(f"No {'' if status == 'all' else status + ' '}requests.")
        return
    now = time.time()
    for request in found:
        console.print(_format.request_table(request, now=now))
        if request.status == "pending" and not request.awaiting_relay:
            console.print(_format.consent_statement(request))


@app.command("approve")
def approve(
    request_id: RequestId,
    home: HomeOption = None,
    yes: YesOption = False,
    submit: Annotated[
        bool,
        typer.Option(
            "--submit",
            help="Send the approve transaction yourself (needs gas); by default only sign, "
            "and the company relays your signature.",
        ),
    ] = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Show what approving means, ask, then sign the EIP-712 approval.

    A request you signed whose signature is still valid is not signed again: the same
    signature stays on offer to the company until it expires."""
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, request_id):
        request = backend.request(request_id)
        if request.status != "pending":
            raise errors.AlreadyDecided(
                f"request {request_id} is already {request.status}; nothing changed"
            )
        if not (request.awaiting_relay and not submit):
            if not json_output:
                console.print(_format.request_table(request, now=time.time()))
                console.print(_format.consent_statement(request))
            confirm(f"Approve request {request_id}?", yes)
        result = backend.approve(request_id, submit=submit)
    if json_output:
        print_json(as_json(result))
    elif result.tx_hash:
        console.print(f"Approved request {request_id} on the ledger (tx {result.tx_hash}).")
    elif result.already_signed:
        console.print(
            f"Request {request_id} is already signed, waiting for the company to relay it "
            f"(until {_format.format_time(result.deadline, now=time.time())}); nothing new "
            "was signed."
        )
    else:
        console.print(
            f"Approved request {request_id}: signed; the company relays it on the ledger "
            f"before {_format.format_time(result.deadline, now=time.time())}."
        )


@app.command("deny")
def deny(
    request_id: RequestId,
    home: HomeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Deny a pending request; the company gets its whole payment back."""
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, request_id):
        request = backend.request(request_id)
        if request.status != "pending":
            raise errors.AlreadyDecided(
                f"request {request_id} is already {request.status}; nothing changed"
            )
        if not json_output:
            console.print(_format.request_table(request, now=time.time()))
        confirm(f"Deny request {request_id}?", yes)
        result = backend.deny(request_id)
    if json_output:
        print_json(as_json(result))
    else:
        console.print(f"Denied request {request_id}; the company is refunded in full.")


@app.command("revoke")
def revoke(
    request_id: Annotated[int, typer.Argument(help="The grant's id.")],
    home: HomeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Revoke an active grant: releases stop at once; you keep what was earned so far."""
    with owner_backend(home, require_daemon=daemon) as backend, deciding(home, request_id):
        grant = backend.request(request_id)
        if grant.status != "active":
            raise errors.AlreadyDecided(
                f"grant {request_id} is {grant.status}, not active; nothing changed"
            )
        company = _format.company_label(grant.company, grant.company_name, whole=True)
        confirm(f"Revoke grant {request_id} of {company} ({', '.join(grant.scopes)})?", yes)
        result = backend.revoke(request_id)
    if json_output:
        print_json(as_json(result))
        return
    console.print(f"Revoked grant {request_id}: no more releases to {grant.company}.",
                  markup=False)
    if result.owner_earned_wei is not None and result.company_refund_wei is not None:
        console.print(
            f"  you keep {_format.format_eth(result.owner_earned_wei)}; "
            f"the company is refunded {_format.format_eth(result.company_refund_wei)}"
        )


@app.command("grants")
def grants(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """List grants: active, expired and revoked."""
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.grants()
    if json_output:
        print_json(as_json(found))
        return
    if not found:
        console.print("No grants yet.")
        return
    console.print(_format.grants_table(found))
