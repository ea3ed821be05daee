"""The importer registry (vault/importers/__init__.py)."""

from __future__ import annotations

import pytest

from vault.errors import InputError
from vault.importers import IMPORTERS, SAMPLE_EXPORTS, importer_for


def test_registry_names_every_agreed_kind():
    assert set(IMPORTERS) == {
        "spotify", "spotify-extended", "youtube", "netflix", "profile", "jsonl", "csv"
    }
    for name, importer in IMPORTERS.items():
        assert importer.name == name
        assert importer.description
    assert {kind for kind, _ in SAMPLE_EXPORTS} == set(IMPORTERS)


def test_importer_for_unknown_kind_lists_the_known_ones():
    with pytest.raises(InputError) as caught:
        importer_for("myspace")
    for name in IMPORTERS:
        assert name in str(caught.value)
