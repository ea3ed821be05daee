"""`vault privacy`: what each company received, the privacy budget (ε) it spent on noisy
entries and what remains (THREATS row 38)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json
from vault.cli._owner import DaemonOption, as_json, owner_backend

app = new_app()


@app.command("privacy")
def privacy(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """What each company received (scopes, weeks, releases), the privacy budget it spent on
    noisy entries and what remains. An entry a company already has costs nothing again."""
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.privacy()
    if json_output:
        print_json(as_json(found))
        return
    budget = f"ε {found.budget_epsilon:g} per company" if found.budget_epsilon else "no cap"
    table = Table(title=f"Privacy budget: {budget}", box=box.SIMPLE_HEAD)
    for column in ("company", "releases", "weeks", "scopes", "entries", "ε spent", "ε left"):
        table.add_column(column, justify="left" if column == "company" else "right")
    for company in found.companies:
        left = company.epsilon_remaining
        table.add_row(
            _format.short_address(company.company), str(company.releases),
            str(len(company.epochs)), str(len(company.scopes)), str(company.entries_revealed),
            f"{company.epsilon_spent:.1f}", "-" if left is None else f"{left:.1f}",
        )
    if found.companies:
        console.print(table)
    else:
        console.print("No company has received anything yet.")
    console.print("Each noisy entry costs its ε once; `vault scopes` lists every scope's ε.")
