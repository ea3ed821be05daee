"""The `vault` command line. Each command group lives in its own module and is joined here."""

from __future__ import annotations

from vault.cli import (
    consent_commands,
    daemon_commands,
    devnet_commands,
    scope_commands,
    store_commands,
)
from vault.cli._common import new_app

app = new_app("Your personal data vault: keep your data, set your terms, get paid.")

app.add_typer(scope_commands.app)
app.add_typer(store_commands.app)
app.add_typer(devnet_commands.app, name="devnet")
app.add_typer(consent_commands.app)
app.add_typer(daemon_commands.app)


def main() -> None:
    app()
