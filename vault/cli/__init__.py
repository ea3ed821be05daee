"""The `vault` command line. Each command group lives in its own module and is joined here.

Building the app loads Typer, Rich and the command modules only: each command imports what
it needs (the store, the chain, the daemon's wiring) when it runs, so `vault --help` and
`vault scopes` start fast (tests/cli/test_imports.py, scripts/bench_cli.py).
"""

from __future__ import annotations

from vault.cli import (
    consent_commands,
    daemon_commands,
    devnet_commands,
    genre_commands,
    log_commands,
    match_commands,
    money_commands,
    open_commands,
    privacy_commands,
    scope_commands,
    store_commands,
    terms_commands,
)
from vault.cli._common import new_app

app = new_app("Your personal data vault: keep your data, set your terms, get paid.")

app.add_typer(scope_commands.app)
app.add_typer(store_commands.app)
app.add_typer(devnet_commands.app, name="devnet")
app.add_typer(consent_commands.app)
app.add_typer(money_commands.app)
app.add_typer(privacy_commands.app)
app.add_typer(terms_commands.terms_app, name="terms")
app.add_typer(terms_commands.rules_app, name="rules")
app.add_typer(log_commands.app, name="log")
app.add_typer(match_commands.app, name="match")
app.add_typer(daemon_commands.app)
app.add_typer(open_commands.app)
app.add_typer(genre_commands.app, name="genres")


def main() -> None:
    app()
