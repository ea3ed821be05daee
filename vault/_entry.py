"""The `vault` console script: the owner's CLI when the owner side is installed, and one line
saying how to get it when it is not.

`pip install .` installs the company SDK alone (pyproject.toml's base dependencies), yet
ships this script; without the ``owner`` extra, importing the CLI would end in a
``ModuleNotFoundError`` traceback. It lives outside ``vault.cli``, whose ``__init__`` imports
Typer, and costs the owner's start-up nothing: only a failed import looks further.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

#: The top-level module of every distribution in pyproject.toml's ``owner`` extra
#: (tests/test_install_paths.py keeps the two lists equal).
OWNER_MODULES = ("cryptography", "sqlmodel", "fastapi", "uvicorn", "typer", "rich",
                 "platformdirs", "pydantic_settings", "ijson", "eth_tester", "jinja2")
#: The exit status when the owner side is missing (the CLI's own statuses are 0-19 and 130).
OWNER_SIDE_MISSING = 20


def missing_owner_modules() -> list[str]:
    return [name for name in OWNER_MODULES if find_spec(name) is None]


def main() -> None:
    try:
        from vault.cli import main as cli_main
    except ModuleNotFoundError as error:
        missing = missing_owner_modules()
        if not missing or (error.name or "").split(".")[0] not in OWNER_MODULES:
            raise
        named = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        print(f"vault: the owner side is not installed ({named} missing) — run "
              "pip install '.[owner]' in the vault checkout (the SDK, vault.client, needs "
              "none of it)", file=sys.stderr)
        raise SystemExit(OWNER_SIDE_MISSING) from None
    cli_main()
