"""`vault`'s top level loads a command's module only when that command runs.

`vault --help` lists every command from `vault/cli/_index.py`, a table written from the
command modules themselves (`python scripts/cli_index.py` rewrites it; tests/cli/test_index.py
fails when it drifts from them), so listing forty commands imports none of them. `vault X`
imports X's module alone: `vault scopes` never builds the store's or the chain's commands.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import Any, NamedTuple, cast

from typer.main import get_command

from vault.cli._common import VaultGroup, new_app

#: Longer than any first sentence, so Click's short help keeps it whole; the listing
#: shortens it to the terminal's width the way Click does for a loaded command.
_WHOLE = 10**6
#: ruff's line length: a longer sentence in the index carries a noqa.
_LINE = 100


class Part(NamedTuple):
    """A command module joined to `vault`: its Typer app, and the group name it runs
    under (None: its commands join the top level)."""

    module: str
    attribute: str
    group: str | None


class Entry(NamedTuple):
    """One top-level command: the part it comes from and the sentence `vault --help` shows."""

    module: str
    attribute: str
    group: str | None
    summary: str


def _built(module: str, attribute: str, group: str | None) -> MutableMapping[str, Any]:
    """The commands a part adds to `vault`, built once per process exactly as
    ``add_typer`` joins them (a one-command app under a group name stays a group)."""
    key = (module, attribute, group)
    if key not in _BUILT:
        holder = new_app()
        holder.callback()(lambda: None)
        holder.add_typer(getattr(importlib.import_module(f"vault.cli.{module}"), attribute),
                         name=group)
        _BUILT[key] = cast(VaultGroup, get_command(holder)).commands
    return _BUILT[key]


_BUILT: dict[tuple[str, str, str | None], MutableMapping[str, Any]] = {}


def index_of(parts: tuple[Part, ...]) -> dict[str, Entry]:
    """Every top-level command of ``parts``, in order, read from the modules themselves."""
    index: dict[str, Entry] = {}
    for part in parts:
        for name, command in _built(*part).items():
            if name in index:
                raise ValueError(f"two modules define `vault {name}`")
            index[name] = Entry(*part, command.get_short_help_str(_WHOLE))
    return index


def _index() -> dict[str, Entry]:
    from vault.cli._index import INDEX

    return {name: Entry(*row) for name, row in INDEX.items()}


class LazyGroup(VaultGroup):
    """Lists commands from the index; imports a command's module when it is resolved."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_index())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = _index().get(cmd_name)
        return None if entry is None else _built(*entry[:3])[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from typer._click.utils import make_default_short_help

        index = _index()
        limit = formatter.width - 6 - max(len(name) for name in index)
        rows = [(name, make_default_short_help(entry.summary, limit))
                for name, entry in index.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def index_source() -> str:
    """The text of vault/cli/_index.py for the command modules as they are now."""
    from vault.cli import PARTS

    lines = [
        '"""Every top-level `vault` command: (module, Typer app, group name or None, the',
        'sentence `vault --help` shows). Written by `python scripts/cli_index.py`; do not edit."""',
        "",
        "INDEX: dict[str, tuple[str, str, str | None, str]] = {",
    ]
    for name, entry in index_of(PARTS).items():
        summary = f"        {entry.summary!r},"
        lines += [
            f"    {name!r}: (",
            f"        {entry.module!r}, {entry.attribute!r}, {entry.group!r},",
            summary if len(summary) <= _LINE else f"{summary}  # noqa: E501",
            "    ),",
        ]
    return "\n".join([*lines, "}", ""])
