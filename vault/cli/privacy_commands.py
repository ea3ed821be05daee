"""`vault privacy`: what each company received, the privacy budget (ε) it spent on noisy
entries and what remains (THREATS row 38)."""

from __future__ import annotations

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
        # Every company that received something asked first: its request carries its name.
        names = {r.company: r.company_name for r in backend.requests("all")} if (
            found.companies) else {}
    table = _format.privacy_table(found, names)
    if found.companies:
        console.print(table)
    else:
        console.print("No company has received anything yet.")
    console.print("Each noisy entry costs its ε once; `vault scopes` lists every scope's ε.")
