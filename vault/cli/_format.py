"""How the owner's commands show things and read them back: amounts, durations, times,
addresses, text a company chose, and the tables of requests, grants, earnings, terms, rules
and the log. One module, so every command says an amount or a date the same way.

Every table fits 80 columns; ``--json`` carries every value whole.
"""

from __future__ import annotations

import re
import time
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from vault import errors
from vault.eth.units import format_eth as format_eth  # the amounts every command shows

if TYPE_CHECKING:
    from rich.panel import Panel

    from vault.policy import RuleSet
    from vault.wire import EarningsPublic, LogEntryPublic, RequestPublic, Terms

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


def format_time(timestamp: float | None, pattern: str = "%Y-%m-%d %H:%M UTC") -> str:
    """A unix time in UTC (``"-"`` for none)."""
    if timestamp is None:
        return "-"
    return time.strftime(pattern, time.gmtime(timestamp))


def short_address(address: str | None) -> str:
    """``0x7099…79C8`` for listings that must fit 80 columns (``--json`` has it whole)."""
    if not address:
        return "-"
    return f"{address[:6]}…{address[-4:]}"


def scopes_in_words(names: list[str]) -> list[str]:
    """Each scope's one-line description, in order (an unknown name says so)."""
    from vault import scopes

    words = []
    for name in names:
        try:
            words.append(scopes.scope(name).description)
        except errors.UnknownScope:
            words.append(f"{name} (unknown)")
    return words


def untrusted(text: str) -> Text:
    """Text a company chose (purpose, endpoint), shown as it is: never parsed as markup,
    and every control or format character (escape sequences, bidi overrides) made visible."""
    return Text("".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c)[0] == "C" else c for c in text
    ))


# --------------------------------------------------------------------------- reading

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


# --------------------------------------------------------------------------- tables


def request_table(request: RequestPublic) -> Table:
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
             zip(scopes_in_words(request.scopes), request.scopes, strict=True)]
    table.add_row("wants", "\n".join(wants))
    if request.members:
        table.add_row("price", f"{format_eth(request.price_wei)} (your share)")
        table.add_row("members", "\n".join(
            f"{short_address(m.owner)}{' (you)' if m.owner == request.owner else ''} · "
            f"{'approved' if m.approved else 'not yet'} · {format_eth(m.share_wei)}"
            for m in request.members
        ))
        approved = [f"{short_address(m.owner)}{' (you)' if m.owner == request.owner else ''}"
                    for m in request.members if m.approved]
        table.add_row("approved", f"{len(approved)} of {len(request.members)} so far"
                      + (": " + ", ".join(approved) if approved else ""))
    else:
        table.add_row("price", format_eth(request.price_wei))
    table.add_row("per day", format_eth(request.price_per_day_wei))
    table.add_row("duration", format_duration(request.duration_seconds))
    table.add_row("releases", str(request.max_releases) if request.max_releases else "unlimited")
    table.add_row("purpose", untrusted(request.purpose))
    if request.starts_at:
        table.add_row("active",
                      f"{format_time(request.starts_at)} → {format_time(request.expires_at)}")
    if not request.catalog_matches:
        table.add_row("catalog", "[bold red]unknown to this vault[/]")
    return table


def consent_statement(request: RequestPublic) -> Panel:
    """What approving ``request`` means, in the words the owner signs."""
    # Text, not markup: the statement quotes the company's purpose verbatim.
    text = untrusted(request.consent_statement)
    if not request.catalog_matches:
        text.append("\n\nWarning: ", style="bold red")
        text.append(
            "the request commits to a scope catalog this vault does not know; "
            "releases under it will be refused."
        )
    from rich.panel import Panel  # only the commands that show a statement load it

    return Panel(text, title=f"request {request.id}: what approving means", expand=False)


def grants_table(grants: list[RequestPublic]) -> Table:
    table = Table(title="grants", box=box.SIMPLE_HEAD)
    for column in ("id", "company", "scopes", "price", "status", "until", "releases"):
        table.add_column(column, no_wrap=column != "scopes",
                         min_width=17 if column == "scopes" else None)
    for grant in grants:
        limit = str(grant.max_releases) if grant.max_releases else "∞"
        table.add_row(
            str(grant.id), short_address(grant.company), "\n".join(grant.scopes),
            format_eth(grant.price_wei), grant.status, format_time(grant.expires_at, "%Y-%m-%d"),
            f"{grant.releases_used}/{limit}",
        )
    return table


def earnings_table(earnings: EarningsPublic) -> Table:
    table = Table(title="earnings", box=box.SIMPLE_HEAD)
    for column in ("grant", "earned", "claimable"):
        table.add_column(column, justify="right")
    for grant in earnings.grants:
        table.add_row(str(grant.id), format_eth(grant.earned_wei), format_eth(grant.claimable_wei))
    return table


def log_table(entries: list[LogEntryPublic]) -> Table:
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
            str(entry.seq), format_time(entry.at, "%m-%d %H:%M"), Text(what),
            short_address(entry.company), Text("\n".join(entry.scopes)), Text(outcome),
        )
    return table


def terms_lines(terms: Terms) -> list[str]:
    lines = [
        f"minimum price per day: {format_eth(terms.min_price_per_day_wei)}",
        f"longest grant:         {format_duration(terms.max_duration_seconds)}",
        f"offered:               {', '.join(terms.scopes_offered) or '-'}",
        f"never shared:          {', '.join(terms.scopes_never) or '-'}",
        f"matches per epoch:     {terms.matches_per_epoch} per company, every 7 days",
    ]
    if terms.note:
        lines.append(f"note:                  {terms.note}")
    return lines


def rules_lines(rules: RuleSet) -> list[str]:
    """Each auto-approval rule as one sentence (console markup: the rule's name in bold)."""
    lines = [] if rules.rules else ["No auto-approval rules: every request waits for you."]
    for rule in rules.rules:
        who = "anyone" if rule.companies_allow is None else ", ".join(rule.companies_allow)
        if rule.companies_deny:
            who += f" except {', '.join(rule.companies_deny)}"
        lines.append(
            f"[bold]{rule.name}[/]: approve {', '.join(rule.scopes)} for at least "
            f"{format_eth(rule.min_price_per_day_wei)} per day, at most "
            f"{format_duration(rule.max_duration_seconds)}, from {who}"
            + (f", at most {rule.max_releases_at_most} releases"
               if rule.max_releases_at_most else "")
        )
    if rules.never_share:
        lines.append(f"never shared, whatever a rule says: {', '.join(rules.never_share)}")
    return lines
