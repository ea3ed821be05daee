"""What the owner's commands share: the ``--daemon`` option, the backend they talk to (the
running daemon, else the vault opened in this process), the confirmation step, and the JSON
form of what they print."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault import errors
from vault.cli._common import console, read_passphrase, settings_for

if TYPE_CHECKING:
    from pydantic import BaseModel

    from vault.cli.backend import OwnerBackend, OwnerReader

DaemonOption = Annotated[
    bool,
    typer.Option(
        "--daemon",
        help="Only talk to the running daemon; fail (exit 9) if none answers.",
    ),
]


@contextmanager
def owner_backend(home: Path | None, *, require_daemon: bool = False) -> Iterator[OwnerBackend]:
    """The owner's operations for the vault in ``home``; the passphrase is asked for only
    when no daemon serves it."""
    # Imported here: the backend loads HTTP, the store and the chain; --help needs none.
    from vault.cli.backend import open_backend

    settings = settings_for(home)
    with open_backend(settings, read_passphrase, require_daemon=require_daemon) as backend:
        try:
            yield backend
        except errors.InsufficientFunds as error:
            if settings.chain == "devnet":  # its faucet is the fix; elsewhere, the address
                error.hint = "get test ETH with `vault devnet fund`, then try again"
            raise


@contextmanager
def owner_reader(home: Path | None, *, require_daemon: bool = False) -> Iterator[OwnerReader]:
    """What the owner reads without the chain (the log, terms, rules): the running daemon,
    else the vault alone — so these commands work offline."""
    from vault.cli.backend import open_reader

    settings = settings_for(home)
    with open_reader(settings, read_passphrase, require_daemon=require_daemon) as reader:
        yield reader


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` unless ``--yes`` was given; "no" exits 1 with nothing changed."""
    if yes:
        return
    if not typer.confirm(question, default=False):
        console.print("Nothing changed.")
        raise typer.Exit(1)


def as_json(found: BaseModel | Sequence[BaseModel]) -> Any:
    """What a command found, as JSON-ready values (``--json``)."""
    if isinstance(found, Sequence):
        return [item.model_dump(mode="json") for item in found]
    return found.model_dump(mode="json")
