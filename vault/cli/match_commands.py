"""`vault match preview FILE.json`: what a company would get for its list — the ranking
the vault would return, each pick with the reason in words, the ε it would cost and the
matches the company has left this epoch. Nothing is logged or charged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from vault import errors
from vault.cli import _format
from vault.cli._common import HomeOption, JsonOption, console, new_app, print_json
from vault.cli._owner import DaemonOption, as_json, owner_backend

app = new_app("Matches: companies' lists ranked for you; only the ranking leaves.")

#: Previewed for when no --company is given: no company's noise, so the picks show the
#: scores' order under the same noise any one company would see it through.
ANY_COMPANY = "0x" + "00" * 20


def _read_list(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """The candidates of FILE (a list, or a match body holding one) and the body's other
    fields (``k``, ``scopes``) when it is one."""
    try:
        raw: Any = json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise errors.InputError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise errors.InputError(f"{path} is not valid JSON: {error}") from None
    if isinstance(raw, list):
        return raw, {}
    if isinstance(raw, dict) and isinstance(raw.get("candidates"), list):
        return raw["candidates"], {k: raw[k] for k in ("k", "scopes") if k in raw}
    raise errors.InputError(f"{path} holds neither a list of candidates nor a match body")


@app.command("preview")
def preview(
    file: Annotated[Path, typer.Argument(help="A list of candidates, or a whole match body.")],
    home: HomeOption = None,
    company: Annotated[
        str | None, typer.Option(help="The company's address (its noise is keyed to it).")
    ] = None,
    k: Annotated[int | None, typer.Option(help="How many picks (1-10; default the body's, or 10).")]
    = None,
    content_only: Annotated[
        bool, typer.Option("--content-only", help="Preview match.content (genres and tags only).")
    ] = False,
    json_output: JsonOption = False,
    daemon: DaemonOption = False,
) -> None:
    """Show exactly what a company would get for the list in FILE, and why each pick."""
    from pydantic import ValidationError

    from vault.wire import MatchPreviewBody

    candidates, fields = _read_list(file)
    names = ["match.content"] if content_only else fields.get("scopes", ["match.history"])
    try:
        body = MatchPreviewBody.model_validate({
            "candidates": candidates, "company": company or ANY_COMPANY,
            "k": k if k is not None else fields.get("k", 10), "scopes": names,
        })
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise errors.InputError(f"{file}: {where}: {first['msg']}") from None
    with owner_backend(home, require_daemon=daemon) as backend:
        found = backend.match_preview(body)
    if json_output:
        print_json(as_json(found))
        return
    console.print(
        f"{found.tier} for {found.company}: ε {found.epsilon:g} per history item; "
        f"{found.matches_left} matches left this epoch", markup=False
    )
    for place, pick in enumerate(found.picks, 1):
        # Ids and titles are the company's words: shown as they are, never as markup.
        line = Text(f"{place:2}. ").append_text(_format.untrusted(pick.id))
        if pick.title:
            line.append(" ").append_text(_format.untrusted(pick.title))
        console.print(line.append(f" — {pick.reason}"))
