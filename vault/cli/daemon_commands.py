"""`vault serve`: run the local daemon (company routes + owner routes) under uvicorn."""

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

    from vault.chain import open_chain
    from vault.daemon.app import create_app
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
            err_console.print(
                f"vault daemon for {vault.owner_address} on http://{settings.host}:{settings.port}"
                f" (owner token in {settings.home / 'daemon.token'})"
            )
            # uvicorn drains and shuts down on SIGTERM, then re-raises it to the handler that
            # was installed before; a no-op one lets the vault and chain close normally (exit 0).
            signal.signal(signal.SIGTERM, lambda *_: None)
            uvicorn.Server(
                uvicorn.Config(
                    daemon_app, host=settings.host, port=settings.port, lifespan="on",
                    access_log=False, log_level="warning", server_header=False,
                )
            ).run()  # handles SIGTERM / SIGINT: stops accepting, drains, runs the shutdown
        finally:
            chain.close()
    finally:
        vault.close()
