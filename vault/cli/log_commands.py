"""`vault log` (the hash-chained access log: every release, refusal and decision) and
`vault log verify` (any edited, inserted or deleted entry is found). Both read the vault
alone when no daemon runs: they work without the chain."""

from __future__ import annotations

from typing import Annotated

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json
from vault.cli._owner import DaemonOption, as_json, owner_reader

app = new_app("The hash-chained access log: every release, refusal and decision.")
# `vault log` itself lists the log; `vault log verify` is its one subcommand.
app.info.invoke_without_command = True
app.info.no_args_is_help = False

LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Newest N entries.")]


@app.callback()
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
    with owner_reader(home, require_daemon=daemon) as reader:
        entries = reader.log(limit)
    if json_output:
        print_json(as_json(entries))
        return
    console.print(_format.log_table(entries))


@app.command("verify")
def log_verify(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Check the log's hash chain: any edited, inserted or deleted entry is found."""
    with owner_reader(home, require_daemon=daemon) as reader:
        result = reader.verify_log()
    if json_output:
        print_json(as_json(result))
    if not result.ok:
        raise errors.LogTampered(
            f"the access log does not verify from entry {result.first_bad_seq}"
        )
    if not json_output:
        console.print(f"The access log verifies: {result.entries} entries, chain intact.")
