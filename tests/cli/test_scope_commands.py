from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault import crypto, privacy, scopes
from vault.cli import app
from vault.importers import importer_for, sample_exports
from vault.store import Vault

PASS = "correct horse battery staple"
CANARY = "CANARY-7f3a-raw-track"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"VAULT_PASSPHRASE": PASS})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault holding Ada's sample exports (the Spotify one plays the canary track)."""
    home = tmp_path_factory.mktemp("cli") / "vault"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        for kind, path in sample_exports():
            with path.open("rb") as stream:
                vault.import_records(importer_for(kind).parse(stream, filename=path.name))
    return home


def test_scopes_json_lists_the_catalog(runner: CliRunner) -> None:
    result = runner.invoke(app, ["scopes", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(e["bit"], e["name"]) for e in listed] == [(s.bit, s.name) for s in scopes.CATALOG]
    for entry in listed:
        assert {"bit", "name", "description", "shape", "sensitivity", "transform",
                "noisy", "privacy"} <= set(entry)
        figure = privacy.scope_privacy(entry["name"])
        assert entry["privacy"] == (json.loads(json.dumps(asdict(figure)))
                                    if figure is not None else None)
        assert (entry["privacy"] is not None) == entry["noisy"]
    music = next(e for e in listed if e["name"] == "preferences.music")["privacy"]
    assert music["keep_probability"] == 0.95
    assert music["fields"] == [{"field": "genres", "vocabulary_size": 22, "max_entries": 5,
                                "epsilon_per_entry": 5.989}]
    assert music["epsilon_per_answer"] == 29.945


def test_scopes_table_names_every_scope_and_the_catalog_hash(runner: CliRunner) -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["scopes"])
    assert result.exit_code == 0, result.output
    for entry in scopes.CATALOG:
        assert entry.name in result.stdout
    assert scopes.catalog_hash().hex() in result.stdout


def test_preview_shows_the_noised_value_a_company_would_receive(
    runner: CliRunner, home: Path
) -> None:
    names = ["preferences.music", "profile.age_range", "shopping.gift_ideas"]
    result = runner.invoke(app, ["preview", *names, "--released", "--home", str(home),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["released"] is True
    assert [row["scope"] for row in report["scopes"]] == names
    with Vault.open(home, PASS) as vault:
        derived = vault.derived(names)
        secret = vault.secret("noise")
    for row in report["scopes"]:
        expected = privacy.release_value(scopes.scope(row["scope"]), derived[row["scope"]],
                                         secret=secret)
        assert row["value"] == expected
    music = report["scopes"][0]
    assert music["value"]["status"] == "ok"
    assert music["basis"] == {"facts": [], "events": {"play": 483}}
    assert report["scopes"][2]["basis"]["facts"] == ["gift_wishes", "dislikes"]


def test_preview_without_released_shows_the_value_before_noise(
    runner: CliRunner, home: Path
) -> None:
    result = runner.invoke(app, ["preview", "preferences.colors", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["scopes"][0]
    assert row["value"] == {"status": "ok", "colors": ["green", "yellow", "orange"]}
    assert row["basis"] == {"facts": ["favourite_colors"], "events": {}}


def test_preview_human_output_says_what_and_why(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["preview", "preferences.video", "household.size",
                                 "--released", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "preferences.video" in out and "household.size" in out
    assert "events: 134 view" in out
    assert "facts: household_size" in out
    assert "noise:" in out


def test_preview_never_prints_a_raw_record(runner: CliRunner, home: Path) -> None:
    """THREATS row 29: the canary track in the sample export never reaches a preview."""
    every = [s.name for s in scopes.CATALOG]
    for extra in ([], ["--released"]):
        result = runner.invoke(app, ["preview", *every, *extra, "--home", str(home), "--json"])
        assert result.exit_code == 0, result.output
        assert CANARY not in result.stdout and "canary" not in result.stdout.casefold()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["preview", "profile.city"], 6),
    ],
)
def test_preview_rejects_bad_input_before_unlocking(
    runner: CliRunner, home: Path, args: list[str], code: int
) -> None:
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == code
    assert "error:" in result.stderr


def test_preview_of_a_missing_vault_says_so(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", "mood.current", "--home", str(tmp_path / "none")])
    assert result.exit_code == 4
    assert "no vault" in result.stderr


def test_preview_with_a_wrong_passphrase_fails(home: Path) -> None:
    result = CliRunner(env={"VAULT_PASSPHRASE": "wrong"}).invoke(
        app, ["preview", "mood.current", "--home", str(home)])
    assert result.exit_code == 3
