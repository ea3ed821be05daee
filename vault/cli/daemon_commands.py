"""`vault serve`: run the local daemon (company routes + owner routes) under uvicorn.

Once it listens, the daemon publishes ``<home>/daemon.json`` (address, port, pid, owner,
start time and the per-start owner token; 0600) and removes it on every clean stop, so the
other commands find it on any port (THREATS row 34; :mod:`vault.daemon.runtime`).
"""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from vault import errors
from vault.cli._common import HomeOption, err_console, new_app, read_passphrase, settings_for

app = new_app()

KEYRING_SERVICE = "vault"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _passphrase(home: Path) -> str:
    """VAULT_PASSPHRASE, else the OS keyring (when the optional `keyring` package is
    installed and holds an entry for this vault), else a hidden prompt."""
    if os.environ.get("VAULT_PASSPHRASE") is None:
        try:
            import keyring  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            pass
        else:
            stored = keyring.get_password(KEYRING_SERVICE, str(home.resolve()))
            if isinstance(stored, str) and stored:
                return stored
    return read_passphrase()


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")]
    = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8787).")] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Permit a non-loopback address (not advised).")
    ] = False,
) -> None:
    """Unlock the vault and run its daemon until SIGTERM or Ctrl-C."""
    import uvicorn

    from vault.daemon.app import create_app
    from vault.daemon.runtime import RUNTIME_FILE
    from vault.daemon.server import DaemonServer
    from vault.eth.chain import open_chain
    from vault.store import Vault

    base = settings_for(home)
    settings = base.model_copy(update={
        "host": host or base.host,
        "port": port if port is not None else base.port,
        "allow_remote": allow_remote or base.allow_remote,
    })
    if not is_loopback(settings.host):
        if not settings.allow_remote:
            raise errors.InputError(
                f"refusing to listen on {settings.host}: it is not a loopback address",
                hint="companies reach the daemon via 127.0.0.1; pass --allow-remote to override",
            )
        err_console.print(
            f"warning: listening on {settings.host}: anyone who can reach it can send requests;"
            " owner routes still need the token"
        )
    vault = Vault.open(settings.home, _passphrase(settings.home))
    try:
        chain = open_chain(settings)
        try:
            daemon_app = create_app(settings, vault=vault, chain=chain)
            server = DaemonServer(
                uvicorn.Config(
                    daemon_app, host=settings.host, port=settings.port, lifespan="on",
                    access_log=False, log_level="warning", server_header=False,
                ),
                home=settings.home, owner=vault.owner_address, token=daemon_app.state.token,
            )
            err_console.print(
                f"vault daemon for {vault.owner_address} on http://{settings.host}:{settings.port}"
                f" (found by the other commands through {settings.home / RUNTIME_FILE})"
            )
            # uvicorn drains and shuts down on SIGTERM, then re-raises it to the handler that
            # was installed before; a no-op one lets the vault and chain close normally (exit 0).
            signal.signal(signal.SIGTERM, lambda *_: None)
            try:
                server.run()  # SIGTERM / SIGINT: withdraws the runtime file, drains, shuts down
            finally:
                server.withdraw()  # also when the run ends any other way
        finally:
            chain.close()
    finally:
        vault.close()
