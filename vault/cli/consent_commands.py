"""The owner's consent commands: review requests, approve / deny / revoke, money, terms,
auto-approval rules and the access log.

Every command talks to the running daemon when one serves this home, else opens the vault
itself (:mod:`vault.cli.backend`). Every listing takes ``--json``; every confirmation takes
``--yes``. Failures are one line with a hint and their own exit code (README "Exit codes"):
an unknown request 10, a request already decided 11, another owner's request 12, nothing
owed 13, no daemon when ``--daemon`` asks for one 9, an unreachable chain 7. Each check is
made before anything changes.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vault import errors, scopes
from vault.cli._common import (
    HomeOption,
    JsonOption,
    YesOption,
    console,
    new_app,
    print_json,
    read_passphrase,
    settings_for,
)
from vault.cli.backend import OwnerBackend, daemon_url, open_backend
from vault.config import Settings
from vault.daemon.models import RequestPublic, Terms
from vault.ledger import format_eth
from vault.policy import RuleSet

app = new_app()
terms_app = new_app("Your terms: the floor price, the longest grant, what you offer.")
rules_app = new_app("Auto-approval rules: requests the vault approves while you are away.")
log_app = new_app("The hash-chained access log: every release, refusal and decision.")
log_app.info.invoke_without_command = True
log_app.info.no_args_is_help = False
app.add_typer(terms_app, name="terms")
app.add_typer(rules_app, name="rules")
app.add_typer(log_app, name="log")

DaemonOption = Annotated[
    bool,
    typer.Option(
        "--daemon",
        help="Only talk to the running daemon; fail (exit 9) if none answers.",
    ),
]
StatusFilter = Annotated[
    str,
    typer.Option("--status", help="pending, active or all.", show_default=True),
]

# --------------------------------------------------------------------------- plumbing


@contextmanager
def _backend(home: Path | None, *, require_daemon: bool = False) -> Iterator[OwnerBackend]:
    settings = settings_for(home)
    with open_backend(settings, read_passphrase, require_daemon=require_daemon) as backend:
        yield backend


def _translate(error: errors.ContractReverted, request_id: int | None) -> errors.VaultError:
    """The ledger's refusals that mean "this does not apply", as the CLI's own errors."""
    what = f"request {request_id}" if request_id is not None else "this"
    if error.name == "RequestNotPending":
        return errors.AlreadyDecided(f"{what} is already decided; nothing changed")
    if error.name in ("GrantNotActive", "GrantExpired"):
        return errors.AlreadyDecided(f"{what} is not an active grant; nothing changed")
    if error.name in ("NotRequestOwner",):
        return errors.NotYourRequest(f"{what} belongs to another owner; nothing changed")
    if error.name in ("NothingOwed", "NothingToClaim"):
        return errors.NothingOwed("nothing is owed to you; nothing changed")
    return error


def _chain_owner(settings: Settings, request_id: int) -> str | None:
    """The owner of ``request_id`` on the ledger, or None if unknown or unreachable."""
    if settings.chain == "embedded":
        return None  # a fresh in-process chain knows nothing of this vault's requests
    from vault.chain import open_chain
    from vault.ledger import LedgerClient

    try:
        chain = open_chain(settings)
    except errors.VaultError:
        return None
    try:
        state = LedgerClient(chain.w3, chain.ledger_address).get_request(request_id)
    except errors.VaultError:
        return None
    finally:
        chain.close()
    return state.owner


@contextmanager
def _deciding(home: Path | None, request_id: int | None) -> Iterator[None]:
    """Maps what went wrong deciding ``request_id`` to the consent errors."""
    try:
        yield
    except errors.ContractReverted as error:
        raise _translate(error, request_id) from None
    except errors.NotFound:
        if request_id is not None and _chain_owner(settings_for(home), request_id) is not None:
            raise errors.NotYourRequest(
                f"request {request_id} belongs to another owner; nothing changed"
            ) from None
        raise errors.NotFound(
            f"there is no request {request_id}; nothing changed",
            hint="list requests with `vault requests --status all`",
        ) from None


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not typer.confirm(question, default=False):
        console.print("Nothing changed.")
        raise typer.Exit(1)


def _dump(items: Any) -> Any:
    if isinstance(items, list):
        return [item.model_dump(mode="json") for item in items]
    return items.model_dump(mode="json")


# --------------------------------------------------------------------------- words


def format_duration(seconds: int) -> str:
    """``2592000 → "30 days"``, ``5400 → "1 h 30 min"``."""
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day{'s' if days != 1 else ''}"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts) or "0 s"


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def _short(address: str | None) -> str:
    """``0x7099…79C8`` for listings that must fit 80 columns (``--json`` has it whole)."""
    if not address:
        return "-"
    return f"{address[:6]}…{address[-4:]}"


def scopes_in_words(names: list[str]) -> str:
    words = []
    for name in names:
        try:
            words.append(scopes.scope(name).description)
        except errors.UnknownScope:
            words.append(f"{name} (unknown)")
    return "\n".join(words)


_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(eth|gwei|wei)?\s*$", re.IGNORECASE)
_UNITS = {"eth": 18, "gwei": 9, "wei": 0}


def parse_wei(text: str) -> int:
    """``"0.001"`` / ``"0.001 ETH"`` / ``"5 gwei"`` / ``"1000 wei"`` → wei (ETH by default)."""
    match = _AMOUNT.match(text)
    if match is None:
        raise errors.InputError(f"{text!r} is not an amount", hint='write e.g. "0.001" (ETH)')
    try:
        value = Decimal(match.group(1)).scaleb(_UNITS[(match.group(2) or "eth").lower()])
    except InvalidOperation:
        raise errors.InputError(f"{text!r} is not an amount") from None
    if value != value.to_integral_value():
        raise errors.InputError(f"{text!r} is finer than 1 wei")
    return int(value)


_DURATION = re.compile(r"^\s*([0-9]+)\s*(d|h|m|s)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> int:
    """``"30d"`` / ``"12h"`` / ``"90m"`` / ``"3600"`` (seconds) → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise errors.InputError(f"{text!r} is not a duration", hint="write e.g. 30d, 12h or 3600")
    size = {"d": 86_400, "h": 3600, "m": 60, "s": 1}[(match.group(2) or "s").lower()]
    return int(match.group(1)) * size


def untrusted(text: str) -> Text:
    """Text a company chose (purpose, endpoint), shown as it is: never parsed as markup,
    and every control or format character (escape sequences, bidi overrides) made visible."""
    return Text("".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c)[0] == "C" else c for c in text
    ))


def _request_table(request: RequestPublic) -> Table:
    """One request as a two-column table: nothing truncated, readable in 80 columns."""
    table = Table(title=f"request {request.id} · {request.status}", show_header=False,
                  title_justify="left", title_style="bold")
    table.add_column("field", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    company = Text(request.company)
    if request.company_endpoint:
        company.append("\n").append_text(untrusted(request.company_endpoint))
    table.add_row("company", company)
    wants = [f"{words} ({name})" for words, name in
             zip(scopes_in_words(request.scopes).splitlines(), request.scopes, strict=True)]
    table.add_row("wants", "\n".join(wants))
    table.add_row("price", format_eth(request.price_wei))
    table.add_row("per day", format_eth(request.price_per_day_wei))
    table.add_row("duration", format_duration(request.duration_seconds))
    table.add_row("releases", str(request.max_releases) if request.max_releases else "unlimited")
    table.add_row("purpose", untrusted(request.purpose))
    if request.starts_at:
        table.add_row("active", f"{_when(request.starts_at)} → {_when(request.expires_at)}")
    if not request.catalog_matches:
        table.add_row("catalog", "[bold red]unknown to this vault[/]")
    return table


def _statement(request: RequestPublic) -> Panel:
    # Text, not markup: the statement quotes the company's purpose verbatim.
    text = untrusted(request.consent_statement)
    if not request.catalog_matches:
        text.append("\n\nWarning: ", style="bold red")
        text.append(
            "the request commits to a scope catalog this vault does not know; "
            "releases under it will be refused."
        )
    return Panel(text, title=f"request {request.id}: what approving means", expand=False)


# --------------------------------------------------------------------------- requests


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
    with _backend(home, require_daemon=daemon) as backend:
        found = backend.requests(status)
    if json_output:
        print_json(_dump(found))
        return
    if not found:
        console.print(f"No {'' if status == 'all' else status + ' '}requests.")
        return
    for request in found:
        console.print(_request_table(request))
        console.print(_statement(request))


@app.command("approve")
def approve(
    request_id: Annotated[int, typer.Argument(help="The request's id.")],
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
    """Show what approving means, ask, then sign the EIP-712 approval."""
    with _backend(home, require_daemon=daemon) as backend, _deciding(home, request_id):
        request = backend.request(request_id)
        if request.status != "pending":
            raise errors.AlreadyDecided(
                f"request {request_id} is already {request.status}; nothing changed"
            )
        if not json_output:
            console.print(_request_table(request))
            console.print(_statement(request))
        _confirm(f"Approve request {request_id}?", yes)
        result = backend.approve(request_id, submit=submit)
    if json_output:
        print_json(_dump(result))
    elif result.tx_hash:
        console.print(f"Approved request {request_id} on the ledger (tx {result.tx_hash}).")
    else:
        console.print(
            f"Approved request {request_id}: signed; the company relays it on the ledger "
            f"before {_when(result.deadline)}."
        )


@app.command("deny")
def deny(
    request_id: Annotated[int, typer.Argument(help="The request's id.")],
    home: HomeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Deny a pending request; the company gets its whole payment back."""
    with _backend(home, require_daemon=daemon) as backend, _deciding(home, request_id):
        request = backend.request(request_id)
        if request.status != "pending":
            raise errors.AlreadyDecided(
                f"request {request_id} is already {request.status}; nothing changed"
            )
        if not json_output:
            console.print(_statement(request))
        _confirm(f"Deny request {request_id}?", yes)
        result = backend.deny(request_id)
    if json_output:
        print_json(_dump(result))
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
    with _backend(home, require_daemon=daemon) as backend, _deciding(home, request_id):
        grant = backend.request(request_id)
        if grant.status != "active":
            raise errors.AlreadyDecided(
                f"grant {request_id} is {grant.status}, not active; nothing changed"
            )
        _confirm(
            f"Revoke grant {request_id} of {grant.company} "
            f"({', '.join(grant.scopes)})?",
            yes,
        )
        result = backend.revoke(request_id)
    if json_output:
        print_json(_dump(result))
        return
    console.print(f"Revoked grant {request_id}: no more releases to {grant.company}.",
                  markup=False)
    if result.owner_earned_wei is not None and result.company_refund_wei is not None:
        console.print(
            f"  you keep {format_eth(result.owner_earned_wei)}; "
            f"the company is refunded {format_eth(result.company_refund_wei)}"
        )


@app.command("grants")
def grants(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """List grants: active, expired and revoked."""
    with _backend(home, require_daemon=daemon) as backend:
        found = backend.grants()
    if json_output:
        print_json(_dump(found))
        return
    if not found:
        console.print("No grants yet.")
        return
    table = Table(title="grants", box=box.SIMPLE_HEAD)
    for column in ("id", "company", "scopes", "price", "status", "until", "releases"):
        table.add_column(column, no_wrap=column != "scopes",
                         min_width=17 if column == "scopes" else None)
    for grant in found:
        limit = str(grant.max_releases) if grant.max_releases else "∞"
        until = "-" if grant.expires_at is None else time.strftime(
            "%Y-%m-%d", time.gmtime(grant.expires_at))
        table.add_row(
            str(grant.id), _short(grant.company), "\n".join(grant.scopes),
            format_eth(grant.price_wei), grant.status, until,
            f"{grant.releases_used}/{limit}",
        )
    console.print(table)


# --------------------------------------------------------------------------- money


@app.command("earnings")
def earnings(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """What your grants earned, what you can claim, and what you can withdraw now."""
    with _backend(home, require_daemon=daemon) as backend:
        found = backend.earnings()
    if json_output:
        print_json(_dump(found))
        return
    table = Table(title="earnings", box=box.SIMPLE_HEAD)
    for column in ("grant", "earned", "claimable"):
        table.add_column(column, justify="right")
    for grant in found.grants:
        table.add_row(str(grant.id), format_eth(grant.earned_wei), format_eth(grant.claimable_wei))
    if found.grants:
        console.print(table)
    console.print(f"claimable now:       {format_eth(found.claimable_wei)}")
    console.print(f"ready to withdraw:   {format_eth(found.owed_wei)}")


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
    with _backend(home, require_daemon=daemon) as backend, _deciding(home, None):
        result = backend.claim(list(ids) if ids else None)
    if result.claimed_wei == 0:
        raise errors.NothingOwed("nothing to claim yet; nothing changed")
    if json_output:
        print_json(_dump(result))
    else:
        console.print(f"Claimed {format_eth(result.claimed_wei)}; `vault withdraw` pays it out.")


@app.command("withdraw")
def withdraw(
    home: HomeOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Claim everything earned and send your whole balance to your address."""
    with _backend(home, require_daemon=daemon) as backend, _deciding(home, None):
        balance = backend.earnings()
        total = balance.owed_wei + balance.claimable_wei
        if total == 0:
            raise errors.NothingOwed("nothing is owed to you yet; nothing changed")
        _confirm(f"Withdraw {format_eth(total)} to your address?", yes)
        claimed = backend.claim(None).claimed_wei if balance.claimable_wei else 0
        result = backend.withdraw()
    if json_output:
        print_json({"claimed_wei": claimed, **_dump(result)})
    else:
        console.print(f"Withdrew {format_eth(result.withdrawn_wei)} to your address.")


# --------------------------------------------------------------------------- terms


def _show_terms(terms: Terms) -> None:
    console.print(f"minimum price per day: {format_eth(terms.min_price_per_day_wei)}")
    console.print(f"longest grant:         {format_duration(terms.max_duration_seconds)}")
    console.print(f"offered:               {', '.join(terms.scopes_offered) or '-'}")
    console.print(f"never shared:          {', '.join(terms.scopes_never) or '-'}")
    if terms.note:
        console.print(f"note:                  {terms.note}")


@terms_app.command("show")
def terms_show(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Show your terms."""
    with _backend(home, require_daemon=daemon) as backend:
        terms = backend.terms()
    if json_output:
        print_json(_dump(terms))
    else:
        _show_terms(terms)


@terms_app.command("set")
def terms_set(
    home: HomeOption = None,
    min_price_per_day: Annotated[
        str | None, typer.Option(help='Floor price per day, e.g. "0.0001" (ETH) or "5 gwei".')
    ] = None,
    max_duration: Annotated[
        str | None, typer.Option(help="Longest grant, e.g. 30d, 12h or 3600 (seconds).")
    ] = None,
    offer: Annotated[
        list[str] | None, typer.Option("--offer", help="A scope you offer (repeat).")
    ] = None,
    never: Annotated[
        list[str] | None, typer.Option("--never", help="A scope you never share (repeat).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note to companies.")] = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Change your terms; options not given keep their current value."""
    with _backend(home, require_daemon=daemon) as backend:
        current = backend.terms().model_dump()
        if min_price_per_day is not None:
            current["min_price_per_day_wei"] = parse_wei(min_price_per_day)
        if max_duration is not None:
            current["max_duration_seconds"] = parse_duration(max_duration)
        if offer:
            current["scopes_offered"] = [scopes.scope(n).name for n in offer]
        if never:
            current["scopes_never"] = [scopes.scope(n).name for n in never]
        if note is not None:
            current["note"] = note
        try:
            terms = Terms.model_validate(current)
        except ValidationError as error:
            raise errors.InputError(f"invalid terms: {_first_problem(error)}") from None
        saved = backend.set_terms(terms)
    if json_output:
        print_json(_dump(saved))
    else:
        _show_terms(saved)
        console.print("Saved. Run `vault terms publish` to put their hash on the ledger.")


@terms_app.command("publish")
def terms_publish(
    home: HomeOption = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Your vault's public URL (default: the daemon's address).")
    ] = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Publish your endpoint and the hash of your terms on the ledger."""
    url = endpoint or daemon_url(settings_for(home))
    with _backend(home, require_daemon=daemon) as backend:
        result = backend.publish_terms(url)
    if json_output:
        print_json({"endpoint": url, **_dump(result)})
    else:
        console.print(f"Published {url} with terms {result.terms_hash}.")


# --------------------------------------------------------------------------- rules


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _read_rules(path: Path) -> RuleSet:
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise errors.InputError(f"cannot read {path}: {error.strerror}") from None
    try:
        raw: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise errors.InputError(f"{path} is not valid {kind}: {error}") from None
    if isinstance(raw, list):
        raw = {"rules": raw}
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as error:
        raise errors.InputError(f"{path}: {_first_problem(error)}") from None


def _show_rules(rules: RuleSet) -> None:
    if not rules.rules:
        console.print("No auto-approval rules: every request waits for you.")
    for rule in rules.rules:
        who = "anyone" if rule.companies_allow is None else ", ".join(rule.companies_allow)
        if rule.companies_deny:
            who += f" except {', '.join(rule.companies_deny)}"
        console.print(
            f"[bold]{rule.name}[/]: approve {', '.join(rule.scopes)} for at least "
            f"{format_eth(rule.min_price_per_day_wei)} per day, at most "
            f"{format_duration(rule.max_duration_seconds)}, from {who}"
            + (f", at most {rule.max_releases_at_most} releases"
               if rule.max_releases_at_most else "")
        )
    if rules.never_share:
        console.print(f"never shared, whatever a rule says: {', '.join(rules.never_share)}")


@rules_app.command("show")
def rules_show(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Show the auto-approval rules."""
    with _backend(home, require_daemon=daemon) as backend:
        rules = backend.rules()
    if json_output:
        print_json(_dump(rules))
    else:
        _show_rules(rules)


@rules_app.command("set")
def rules_set(
    file: Annotated[
        Path,
        typer.Argument(
            help='A JSON or TOML file: {"rules": [...], "never_share": [...]}.',
            exists=False,
        ),
    ],
    home: HomeOption = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Replace the auto-approval rules with those in FILE."""
    rules = _read_rules(file)
    with _backend(home, require_daemon=daemon) as backend:
        saved = backend.set_rules(rules)
    if json_output:
        print_json(_dump(saved))
    else:
        _show_rules(saved)


# --------------------------------------------------------------------------- log


LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Newest N entries.")]


@log_app.callback()
def log_list(
    ctx: typer.Context,
    home: HomeOption = None,
    limit: LimitOption = 50,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """The access log (newest last). `vault log verify` checks its hash chain."""
    if ctx.invoked_subcommand is not None:
        return
    with _backend(home, require_daemon=daemon) as backend:
        entries = backend.log(limit)
    if json_output:
        print_json(_dump(entries))
        return
    table = Table(title="access log (times in UTC)", box=box.SIMPLE_HEAD)
    for column in ("seq", "when", "what", "company", "scopes", "outcome"):
        table.add_column(column, no_wrap=column in ("seq", "when", "company"),
                         min_width=17 if column == "scopes" else None)
    for entry in entries:
        what = entry.kind.replace("_", " ")
        if entry.grant_id is not None:
            what += f" #{entry.grant_id}"
        outcome = entry.outcome + (f" ({entry.reason})" if entry.reason else "")
        table.add_row(
            str(entry.seq), time.strftime("%m-%d %H:%M", time.gmtime(entry.at)), Text(what),
            _short(entry.company), Text("\n".join(entry.scopes)), Text(outcome),
        )
    console.print(table)


@log_app.command("verify")
def log_verify(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Check the log's hash chain: any edited, inserted or deleted entry is found."""
    with _backend(home, require_daemon=daemon) as backend:
        result = backend.verify_log()
    if json_output:
        print_json(_dump(result))
    if not result.ok:
        raise errors.LogTampered(
            f"the access log does not verify from entry {result.first_bad_seq}"
        )
    if not json_output:
        console.print(f"The access log verifies: {result.entries} entries, chain intact.")

