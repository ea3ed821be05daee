"""Rewrite vault/cli/_index.py, the table `vault --help` lists commands from, from the
command modules (after adding, renaming or re-documenting a command).

Usage: .venv/bin/python scripts/cli_index.py
"""

from __future__ import annotations

from pathlib import Path

import vault.cli
from vault.cli._lazy import index_source

if __name__ == "__main__":
    Path(vault.cli.__file__).with_name("_index.py").write_text(index_source())
