"""The `vault` command line. Each command group lives in its own module; `PARTS` joins them.

`vault --help` lists the commands from an index written from these modules and `vault X`
imports X's module alone (`vault/cli/_lazy.py`), and each command imports what it needs (the
store, the chain, the daemon's wiring) when it runs, so `vault --help` and `vault scopes`
start fast (tests/cli/test_imports.py, scripts/bench_cli.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from vault.cli._common import new_app
from vault.cli._lazy import LazyGroup, Part

#: The command modules, in the order `vault --help` lists their commands. After adding or
#: renaming a command, run `python scripts/cli_index.py` to rewrite the index.
PARTS = (
    Part("scope_commands", "app", None),
    Part("store_commands", "app", None),
    Part("devnet_commands", "app", "devnet"),
    Part("consent_commands", "app", None),
    Part("money_commands", "app", None),
    Part("privacy_commands", "app", None),
    Part("terms_commands", "terms_app", "terms"),
    Part("terms_commands", "rules_app", "rules"),
    Part("log_commands", "app", "log"),
    Part("match_commands", "app", "match"),
    Part("daemon_commands", "app", None),
    Part("open_commands", "app", None),
    Part("genre_commands", "app", "genres"),
)

app = new_app("Your personal data vault: keep your data, set your terms, get paid.", LazyGroup)




def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version  # only for --version: it costs start-up time

        typer.echo(f"vault {version('vault')}")
        raise typer.Exit()


# Also what makes `app` a group: Typer makes one only of an app with a callback or registered
# commands, and LazyGroup's commands are not registered with Typer.
@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print vault's version and exit."),
    ] = False,
) -> None:
    """The options every command takes before its name (the app's help is new_app's)."""


def main() -> None:
    app()
