"""`vault open`: the owner dashboard, through a one-time login link from the running daemon.

The daemon is found from its runtime file and must answer the identity challenge before the
bearer token that asks for the link is sent (:func:`vault.cli.backend.running_daemon`,
THREATS row 34). The link works once, for two minutes; it signs the browser that opens it
in until the daemon stops.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vault import errors
from vault.cli._common import HomeOption, console, new_app, settings_for

app = new_app()


@app.command("open")
def open_dashboard(
    home: HomeOption = None,
    print_url: Annotated[
        bool, typer.Option("--print-url", help="Print the one-time link and exit; open nothing.")
    ] = False,
) -> None:
    """Open your dashboard in the browser with a one-time login link (needs `vault serve`)."""
    # Imported here: the backend loads HTTP and the daemon's runtime helpers; --help needs none.
    import webbrowser

    from vault.cli.backend import running_daemon

    settings = settings_for(home)
    daemon = running_daemon(settings)
    if daemon is None:
        raise errors.DaemonUnavailable(
            f"no vault daemon runs for the vault in {settings.home}",
            hint="start it with `vault serve`, then run `vault open` again",
        )
    try:
        link = daemon.login_link()
    finally:
        daemon.close()
    if print_url:
        # Plain stdout, one line: a script reads it.
        typer.echo(link)
        return
    if not webbrowser.open(link):
        console.print("No browser could be started; open this link (it works once):")
        typer.echo(link)
        return
    console.print("Opened your dashboard in the browser (the link works once).")
