"""What `vault --help` and `vault import --help` say without loading the parts they describe."""

from __future__ import annotations

from typer.testing import CliRunner

from vault import crypto
from vault.cli import app
from vault.export_kinds import KINDS
from vault.importers import IMPORTERS


def test_init_help_states_the_kdf_defaults_crypto_uses() -> None:
    """The defaults are written out in the help (vault.crypto is not loaded for it)."""
    shown = " ".join(CliRunner().invoke(app, ["init", "--help"]).output.split())
    default = crypto.KDF_DEFAULT
    assert f"default {default.memory_kib}, min {crypto.KDF_MINIMUM.memory_kib}" in shown
    assert f"default {default.iterations}, min {crypto.KDF_MINIMUM.iterations}" in shown
    assert f"default {default.lanes}, min {crypto.KDF_MINIMUM.lanes}" in shown


def test_import_help_lists_every_importer_kind() -> None:
    assert list(KINDS) == list(IMPORTERS)
    assert all(IMPORTERS[kind].description == KINDS[kind] for kind in KINDS)
    shown = CliRunner().invoke(app, ["import", "--help"]).output
    assert all(kind in shown for kind in KINDS)
