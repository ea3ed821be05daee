"""`vault --help` lists commands from vault/cli/_index.py without importing them; the index
must say what the command modules say, and `vault X` must load X's module alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

import vault.cli
from vault.cli import PARTS, app
from vault.cli._lazy import index_of, index_source


def test_the_index_is_what_the_command_modules_define() -> None:
    written = Path(vault.cli.__file__).with_name("_index.py").read_text()
    assert written == index_source(), "run `python scripts/cli_index.py` and commit the index"


def test_help_lists_every_command_of_every_module_once_in_order() -> None:
    shown = CliRunner().invoke(app, ["--help"], terminal_width=80).output
    assert "Your personal data vault: keep your data, set your terms, get paid." in shown
    listed = [line.split()[0] for line in shown.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(index_of(PARTS))


def test_a_listed_command_runs_and_an_unknown_one_is_a_usage_error() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["scopes", "--json"]).exit_code == 0
    unknown = runner.invoke(app, ["scopse"])
    assert unknown.exit_code == 2
    assert "No such command 'scopse'" in unknown.output


def _command_modules_loaded_by(argv: list[str]) -> list[str]:
    program = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from typer.main import get_command
        import vault.cli
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                get_command(vault.cli.app).main({argv!r}, prog_name="vault",
                                                standalone_mode=False)
            except SystemExit:
                pass
        print(json.dumps(sorted(m for m in sys.modules if m.endswith("_commands"))))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_help_loads_no_command_module_and_a_command_loads_only_its_own() -> None:
    assert _command_modules_loaded_by(["--help"]) == []
    assert _command_modules_loaded_by(["scopes", "--json"]) == ["vault.cli.scope_commands"]
    assert _command_modules_loaded_by(["log", "--help"]) == ["vault.cli.log_commands"]


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    shown = CliRunner().invoke(app, ["--version"])
    assert (shown.exit_code, shown.output) == (0, f"vault {version('vault')}\n")
