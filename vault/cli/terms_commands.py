"""The owner's standing answers: terms (`vault terms show|set|publish`: the floor price, the
longest grant, what is offered) and auto-approval rules (`vault rules show|set`: requests
the vault approves while the owner is away)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json, settings_for
from vault.cli._owner import DaemonOption, as_json, owner_backend, owner_reader

if TYPE_CHECKING:
    from pydantic import ValidationError

    from vault.policy import RuleSet

terms_app = new_app("Your terms: the floor price, the longest grant, what you offer.")
rules_app = new_app("Auto-approval rules: requests the vault approves while you are away.")


def _first_problem(error: ValidationError) -> str:
    """The first thing pydantic found wrong, as ``field: message``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


# --------------------------------------------------------------------------- terms


@terms_app.command("show")
def terms_show(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Show your terms (read from the vault: works without the chain)."""
    with owner_reader(home, require_daemon=daemon) as reader:
        terms = reader.terms()
    if json_output:
        print_json(as_json(terms))
        return
    for line in _format.terms_lines(terms):
        console.print(line, markup=False)  # the note is free text


@terms_app.command("set")
def terms_set(
    home: HomeOption = None,
    min_price_per_day: Annotated[
        str | None, typer.Option(help='Floor price per day, e.g. "0.0001" (ETH) or "5 gwei".')
    ] = None,
    max_duration: Annotated[
        str | None, typer.Option(help="Longest grant, e.g. 30d, 12h or 3600 (seconds).")
    ] = None,
    offer: Annotated[
        list[str] | None, typer.Option("--offer", help="A scope you offer (repeat).")
    ] = None,
    never: Annotated[
        list[str] | None, typer.Option("--never", help="A scope you never share (repeat).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note to companies.")] = None,
    matches_per_epoch: Annotated[
        int | None,
        typer.Option(help="Matches (ranked lists) one company may ask per 7-day epoch; 0: none."),
    ] = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Change your terms; options not given keep their current value."""
    from pydantic import ValidationError

    from vault import scopes
    from vault.wire import Terms

    with owner_backend(home, require_daemon=daemon) as backend:
        current = backend.terms().model_dump()
        if min_price_per_day is not None:
            current["min_price_per_day_wei"] = _format.parse_wei(min_price_per_day)
        if max_duration is not None:
            current["max_duration_seconds"] = _format.parse_duration(max_duration)
        if offer:
            current["scopes_offered"] = [scopes.scope(n).name for n in offer]
        if never:
            current["scopes_never"] = [scopes.scope(n).name for n in never]
        if note is not None:
            current["note"] = note
        if matches_per_epoch is not None:
            current["matches_per_epoch"] = matches_per_epoch
        try:
            terms = Terms.model_validate(current)
        except ValidationError as error:
            raise errors.InputError(f"invalid terms: {_first_problem(error)}") from None
        saved = backend.set_terms(terms)
    if json_output:
        print_json(as_json(saved))
        return
    for line in _format.terms_lines(saved):
        console.print(line, markup=False)
    console.print("Saved. Run `vault terms publish` to put their hash on the ledger.")


@terms_app.command("publish")
def terms_publish(
    home: HomeOption = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Your vault's public URL (default: the daemon's address).")
    ] = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Publish your endpoint and the hash of your terms on the ledger."""
    from vault.cli.backend import daemon_url

    url = endpoint or daemon_url(settings_for(home))
    with owner_backend(home, require_daemon=daemon) as backend:
        result = backend.publish_terms(url)
    if json_output:
        print_json({"endpoint": url, **as_json(result)})
    else:
        console.print(f"Published {url} with terms {result.terms_hash}.")


# --------------------------------------------------------------------------- rules


def _read_rules(path: Path) -> RuleSet:
    import tomllib

    from pydantic import ValidationError

    from vault.policy import RuleSet

    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise errors.InputError(f"cannot read {path}: {error.strerror}") from None
    try:
        raw: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise errors.InputError(f"{path} is not valid {kind}: {error}") from None
    if isinstance(raw, list):
        raw = {"rules": raw}
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as error:
        raise errors.InputError(f"{path}: {_first_problem(error)}") from None


@rules_app.command("show")
def rules_show(
    home: HomeOption = None, json_output: JsonOption = False, daemon: DaemonOption = False
) -> None:
    """Show the auto-approval rules (read from the vault: works without the chain)."""
    with owner_reader(home, require_daemon=daemon) as reader:
        rules = reader.rules()
    if json_output:
        print_json(as_json(rules))
        return
    for line in _format.rules_lines(rules):
        console.print(line)


@rules_app.command("set")
def rules_set(
    file: Annotated[
        Path,
        typer.Argument(
            help='A JSON or TOML file: {"rules": [...], "never_share": [...]}.',
            exists=False,
        ),
    ],
    home: HomeOption = None,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Replace the auto-approval rules with those in FILE."""
    rules = _read_rules(file)
    with owner_backend(home, require_daemon=daemon) as backend:
        saved = backend.set_rules(rules)
    if json_output:
        print_json(as_json(saved))
        return
    for line in _format.rules_lines(saved):
        console.print(line)
