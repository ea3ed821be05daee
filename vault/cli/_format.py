"""How the owner's commands show things and read them back: amounts, durations, times,
addresses, text a company chose, and the tables of requests, grants, earnings, terms, rules,
the log and the vault's figures. One module, so every command says an amount or a date the
same way.

Times are local, ``2026-11-30 14:05`` (with ``in 3 h`` / ``2 d ago`` where the distance
matters); ``--json`` keeps unix seconds. Every listing is a :class:`Listing`: it never cuts
a value, wrapping cells between words, or stacking each row when the columns cannot fit.
"""

from __future__ import annotations

import re
import time
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from vault import errors
from vault.eth.units import format_eth as format_eth  # the amounts every command shows

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.panel import Panel

    from vault.policy import RuleSet
    from vault.wire import EarningsPublic, LogEntryPublic, PrivacyPublic, RequestPublic, Terms

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


def format_ago(seconds: float) -> str:
    """A distance in time from now: ``"in 3 h"``, ``"2 d ago"``, ``"now"`` (under a minute);
    whole units, rounded down, days from two days on."""
    size = abs(seconds)
    if size < 60:
        return "now"
    if size < 3600:
        amount, unit = size // 60, "min"
    elif size < 2 * 86_400:
        amount, unit = size // 3600, "h"
    else:
        amount, unit = size // 86_400, "d"
    return f"in {amount:.0f} {unit}" if seconds > 0 else f"{amount:.0f} {unit} ago"


def format_time(timestamp: float | None, *, now: float | None = None) -> str:
    """A unix time as local time, ``2026-11-30 14:05`` (``"-"`` for none); with ``now``, how
    far from it too: ``2026-11-30 14:05 (in 3 h)``."""
    if timestamp is None:
        return "-"
    shown = time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
    return shown if now is None else f"{shown} ({format_ago(timestamp - now)})"


def short_address(address: str | None) -> str:
    """``0x7099…79C8`` for listings that must fit 80 columns (``--json`` has it whole)."""
    if not address:
        return "-"
    return f"{address[:6]}…{address[-4:]}"


def company_label(address: str, name: str | None, *, whole: bool = False) -> Text:
    """A company as the owner reads it: ``Acme (0x7099…79C8)``, or the address alone when it
    published no name. The name is the company's own words (the owner's views have already
    stripped control characters, capped its length and dropped one that looks like an
    address), so it is never markup and never shown without the address it belongs to."""
    shown = address if whole else short_address(address)
    if not name:
        return Text(shown)
    return Text(name, style="bold").append(f" ({shown})", style="not bold")


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

Cell = str | Text

#: Between two columns: a cell of padding on each side and ``SIMPLE_HEAD``'s one-character
#: rule (no padding or rule at the outer edges).
_GUTTER = 3


def _words(cell: Text) -> int:
    """The longest word: the narrowest a cell gets without cutting a value."""
    return max((cell_len(word) for word in cell.plain.split()), default=0)


def _lines(cell: Text) -> int:
    """The longest line: the width a cell takes unwrapped."""
    return max((cell_len(line) for line in cell.plain.splitlines()), default=0)


class Listing:
    """Rows under column headings that never cut a value, at any console width.

    Rich shrinks a table that is too wide by cutting cells ("6/1…" for 6/100). A listing
    instead gives every column at least its longest word and wraps cells between words;
    when even that is too wide it prints each row as its own block of ``heading value``
    lines. Cells are plain text (never markup: some are a company's words).
    """

    def __init__(self, title: str, headings: list[str], *, right: tuple[str, ...] = (),
                 caption: str | None = None) -> None:
        self.title = title
        self.headings = headings
        self.right = right
        self.caption = caption
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: Cell) -> None:
        if len(cells) != len(self.headings):
            raise ValueError(f"{len(cells)} cells for {len(self.headings)} columns")
        self.rows.append([c if isinstance(c, Text) else Text(c) for c in cells])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        columns = list(zip(*([Text(h) for h in self.headings], *self.rows), strict=True))
        narrowest = [max(map(_words, column)) for column in columns]
        widest = [max(map(_lines, column)) for column in columns]
        room = options.max_width - _GUTTER * (len(columns) - 1)
        if sum(narrowest) > room:
            yield from self._stacked()
            return
        table = Table(title=self.title, caption=self.caption, box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False, title_justify="left",
                      title_style="bold")
        for heading, width in zip(self.headings, _fit(narrowest, widest, room), strict=True):
            table.add_column(heading, width=width, overflow="fold",
                             justify="right" if heading in self.right else "left")
        for row in self.rows:
            table.add_row(*row)
        yield table

    def _stacked(self) -> RenderResult:
        yield Text(self.title, style="bold")
        for row in self.rows:
            block = Table(show_header=False, box=None, padding=(0, 1, 0, 0))
            block.add_column(style="dim", no_wrap=True)
            block.add_column(overflow="fold")
            for heading, cell in zip(self.headings, row, strict=True):
                block.add_row(heading, cell)
            yield block
            yield Text()
        if self.caption:
            yield Text(self.caption, style="dim")


def _fit(narrowest: list[int], widest: list[int], room: int) -> list[int]:
    """Column widths within ``room``: every column its longest word, then what is left
    given to the columns that need least to fit on one line, so short values stay whole
    on their line and only the longest cells wrap."""
    widths = list(narrowest)
    spare = room - sum(widths)
    for index in sorted(range(len(widths)), key=lambda i: widest[i] - narrowest[i]):
        grant = min(widest[index] - narrowest[index], spare)
        widths[index] += grant
        spare -= grant
    return widths


def request_state(request: RequestPublic, *, now: float) -> str:
    """The request's state in words: its status, or for a pending request the owner signed,
    that it waits for the company to relay (and until when the signature holds)."""
    if request.approval_sent:
        return "approved — sent to the ledger, waiting for it to confirm"
    if request.awaiting_relay:
        return ("signed — waiting for the company to relay "
                f"(until {format_time(request.approval_expires_at, now=now)})")
    if request.status == "pending" and request.approval_expires_at is not None:
        return (f"pending (your signature expired unrelayed "
                f"{format_time(request.approval_expires_at, now=now)})")
    return request.status


def request_table(request: RequestPublic, *, now: float) -> Table:
    """One request as a two-column table: nothing truncated, readable in 80 columns."""
    table = Table(title=f"request {request.id} · {request_state(request, now=now)}",
                  show_header=False, title_justify="left", title_style="bold")
    table.add_column("field", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    company = company_label(request.company, request.company_name, whole=True)
    if request.company_url:
        company.append("\n").append_text(untrusted(request.company_url))
    if request.company_endpoint:
        company.append("\nvault endpoint ").append_text(untrusted(request.company_endpoint))
    table.add_row("company", company)
    table.add_row("history", request.company_history.in_words())
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
        table.add_row("active", f"{format_time(request.starts_at)} → "
                                f"{format_time(request.expires_at, now=now)}")
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


def grants_table(grants: list[RequestPublic]) -> Listing:
    """Grants one a row; ``used`` is releases served of those allowed (∞: no limit)."""
    listing = Listing("grants", ["id", "company", "scopes", "price", "status", "until",
                                 "used"], right=("id", "price"))
    for grant in grants:
        limit = str(grant.max_releases) if grant.max_releases else "∞"
        listing.add_row(
            str(grant.id), company_label(grant.company, grant.company_name),
            "\n".join(grant.scopes), format_eth(grant.price_wei), grant.status,
            format_time(grant.expires_at), f"{grant.releases_used}/{limit}",
        )
    return listing


def earnings_table(earnings: EarningsPublic) -> Listing:
    listing = Listing("earnings", ["grant", "earned", "claimable"],
                      right=("grant", "earned", "claimable"))
    for grant in earnings.grants:
        listing.add_row(str(grant.id), format_eth(grant.earned_wei),
                        format_eth(grant.claimable_wei))
    return listing


def log_table(entries: list[LogEntryPublic]) -> Listing:
    listing = Listing("access log", ["seq", "when", "what", "company", "scopes", "outcome"],
                      right=("seq",))
    for entry in entries:
        what = entry.kind.replace("_", " ")
        if entry.grant_id is not None:
            what += f" #{entry.grant_id}"
        if entry.note:
            what += f": {entry.note}"
        outcome = entry.outcome + (f" ({entry.reason})" if entry.reason else "")
        listing.add_row(
            str(entry.seq), format_time(entry.at), what, short_address(entry.company),
            "\n".join(entry.scopes), outcome,
        )
    return listing


def privacy_table(report: PrivacyPublic, names: dict[str, str | None]) -> Listing:
    """Each company (by its published name too, from ``names``) and its privacy budget."""
    budget = f"ε {report.budget_epsilon:g} per company" if report.budget_epsilon else "no cap"
    listing = Listing(f"Privacy budget: {budget}",
                      ["company", "releases", "weeks", "scopes", "entries", "ε spent", "ε left"],
                      right=("releases", "weeks", "scopes", "entries", "ε spent", "ε left"))
    for company in report.companies:
        left = company.epsilon_remaining
        listing.add_row(
            company_label(company.company, names.get(company.company)),
            str(company.releases), str(len(company.epochs)),
            str(len(company.scopes)), str(company.entries_revealed),
            f"{company.epsilon_spent:.1f}", "-" if left is None else f"{left:.1f}",
        )
    return listing


#: ``vault stats`` fields that are unix times.
_STAT_TIMES = ("first_event_at", "last_event_at")


def stats_table(figures: dict[str, Any], *, now: float) -> Listing:
    """``vault stats``: one figure a row; times as dates, counts by kind one per line."""
    listing = Listing("vault", ["figure", "value"])
    for key, value in figures.items():
        if key in _STAT_TIMES:
            shown = format_time(value, now=now)
        elif isinstance(value, dict):
            shown = "\n".join(f"{name}: {count}" for name, count in value.items()) or "-"
        elif isinstance(value, list):
            shown = ", ".join(map(str, value)) or "-"
        else:
            shown = str(value)
        listing.add_row(key.replace("_", " "), shown)
    return listing


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


def coverage_line(coverage: dict[str, int]) -> str:
    """"Genres: 52% of 84 listens, 90% of 40 views" and how to teach more."""
    parts = [f"{_share(coverage[f'{what}_with_genre'], coverage[what])} of "
             f"{coverage[what]} {what}" for what in ("listens", "views") if coverage[what]]
    if not parts:
        return "Genres: no listens or views yet."
    line = "Genres known for " + ", ".join(parts) + "."
    if any(coverage[f"{what}_with_genre"] < coverage[what] for what in ("listens", "views")):
        line += " Teach the rest with `vault genres set`."
    return line


def _share(part: int, whole: int) -> str:
    return f"{100 * part // whole}%" if whole else "0%"
