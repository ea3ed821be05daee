from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vault.identity import Event, Fact
from vault.importers import importer_for

FIXTURES = Path(__file__).parent / "fixtures"

Parse = Callable[[str, str], list[Event | Fact]]


@pytest.fixture
def parse() -> Parse:
    """parse(kind, fixture file name) → every record the importer yields."""

    def run(kind: str, name: str) -> list[Event | Fact]:
        with (FIXTURES / name).open("rb") as stream:
            return list(importer_for(kind).parse(stream, filename=name))

    return run
