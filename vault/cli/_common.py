"""What every `vault` command shares: the --home option, unlocking, output, and the one
place where errors become exit codes and one-line messages."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from vault import errors

if TYPE_CHECKING:
    from vault.config import Settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

#: Exit codes, documented in the README. Order matters: the first matching class wins.
EXIT_CODES: tuple[tuple[type[errors.VaultError], int], ...] = (
    (errors.WrongPassphrase, 3),
    (errors.KdfParametersRejected, 3),
    (errors.VaultNotFound, 4),
    (errors.VaultExists, 4),
    (errors.VaultBusy, 4),
    (errors.IntegrityError, 5),
    (errors.UnsafeArchive, 16),
    (errors.ExportKindMismatch, 17),
    (errors.ProfileChoiceNeeded, 18),
    (errors.InputError, 6),
    (errors.ContractReverted, 8),
    (errors.InsufficientFunds, 19),
    (errors.LedgerError, 7),
    (errors.SignatureInvalid, 8),
    (errors.ReleaseRefused, 8),
    (errors.NotFound, 10),
    (errors.DaemonUnavailable, 9),
    (errors.AlreadyDecided, 11),
    (errors.NotYourRequest, 12),
    (errors.NothingOwed, 13),
    (errors.ConsentError, 15),
    (errors.DaemonUnverified, 14),
)
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def exit_code_for(error: errors.VaultError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


def fail(error: errors.VaultError) -> NoReturn:
    """Print one line (plus a hint) on stderr and exit with the error's code."""
    message = f"error: {error}"
    if error.hint:
        message += f" — {error.hint}"
    err_console.print(message, markup=False, soft_wrap=True)
    raise SystemExit(exit_code_for(error))


class VaultGroup(TyperGroup):
    """Turns every VaultError raised by a command into a one-line message and exit code,
    for the console script and for Typer's CliRunner alike."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click privately
        try:
            return super().invoke(ctx)
        except errors.VaultError as error:
            fail(error)
        except KeyboardInterrupt:
            err_console.print("interrupted; nothing was left half-written")
            raise SystemExit(EXIT_INTERRUPTED) from None


def new_app(help_text: str | None = None, group: type[VaultGroup] = VaultGroup) -> typer.Typer:
    """A Typer app with vault's conventions (no pretty tracebacks that could show locals)."""
    return typer.Typer(
        cls=group,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        # Click's plain help: Typer's Rich help loads rich.markdown and rich.traceback
        # first, which alone costs more than half of what `vault --help` may take.
        rich_markup_mode=None,
    )


HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="VAULT_HOME",
        help="The vault's folder (default: the platform's data dir).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def settings_for(home: Path | None) -> Settings:
    # Imported here: pydantic-settings costs more than `vault --help` may spend in all.
    from vault.config import Settings

    return Settings(home=home) if home is not None else Settings()


def read_passphrase(*, confirm: bool = False, prompt: str = "Passphrase") -> str:
    """VAULT_PASSPHRASE when set (for scripts), else a hidden prompt."""
    from_env = os.environ.get("VAULT_PASSPHRASE")
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise errors.UnlockError(
            "no passphrase: stdin is not a terminal and VAULT_PASSPHRASE is not set",
            hint="set VAULT_PASSPHRASE for non-interactive use",
        )
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
