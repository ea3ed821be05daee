from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault import crypto
from vault.cli import app
from vault.importers import sample_exports
from vault.keyfile import KEYFILE_NAME
from vault.store import DB_NAME, Vault

PASS = "correct horse battery staple"
CHEAP_KDF = ["--kdf-memory-kib", str(crypto.KDF_MINIMUM.memory_kib),
             "--kdf-iterations", str(crypto.KDF_MINIMUM.iterations),
             "--kdf-lanes", str(crypto.KDF_MINIMUM.lanes)]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"VAULT_PASSPHRASE": PASS, "VAULT_NEW_PASSPHRASE": None,
                          "VAULT_HOME": None})


@pytest.fixture
def home(tmp_path: Path, runner: CliRunner) -> Path:
    home = tmp_path / "vault"
    result = runner.invoke(app, ["init", "--home", str(home), *CHEAP_KDF])
    assert result.exit_code == 0, result.output
    assert "Owner address: 0x" in result.stdout
    return home


def _run(runner: CliRunner, *args: str, home: Path, env: dict[str, str] | None = None,
         code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--home", str(home)], env=env)
    assert result.exit_code == code, result.output
    return result.stdout


def test_import_every_sample_then_reimport_is_idempotent(runner: CliRunner, home: Path) -> None:
    ada = ["--profile", "Ada"]  # her Netflix export also holds her partner's profile
    for kind, path in sample_exports():
        out = _run(runner, "import", kind, str(path), *(ada if kind == "netflix" else []),
                   home=home)
        assert "new events" in out
    first = json.loads(_run(runner, "stats", "--json", home=home))
    assert first["events"] > 0
    for _, path in sample_exports():  # the kind detected this time
        out = _run(runner, "import", str(path), *(ada if path.suffix == ".csv" and
                                                  "Viewing" in path.name else []), home=home)
        assert re.search(r"^0 new events", out, re.MULTILINE), out
    assert json.loads(_run(runner, "stats", "--json", home=home))["events"] == first["events"]


def test_malformed_export_names_file_and_commits_nothing(
    runner: CliRunner, home: Path, tmp_path: Path
) -> None:
    """THREATS row 30: bad JSON / bad dates → one line naming file and record, nothing
    from the file committed, exit code 6."""
    bad = tmp_path / "events.jsonl"
    good = '{"kind": "mood", "occurred_at": 1700000000, "mood": "calm"}\n'
    bad.write_text(good + '{"kind": "mood", "occurred_at": "yesterday", "mood": "sad"}\n')
    result = runner.invoke(app, ["import", "jsonl", str(bad), "--home", str(home)])
    assert result.exit_code == 6
    assert "events.jsonl" in result.stderr and "record" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(_run(runner, "stats", "--json", home=home))["events"] == 0
    bad.write_text(good + "{not json\n")
    assert runner.invoke(app, ["import", "jsonl", str(bad), "--home", str(home)]).exit_code == 6
    assert json.loads(_run(runner, "stats", "--json", home=home))["events"] == 0


def test_unknown_importer_is_an_input_error(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    _run(runner, "import", "myspace", str(tmp_path / "x"), home=home, code=6)


def test_facts_set_and_list(runner: CliRunner, home: Path) -> None:
    _run(runner, "facts", "set", "languages", "en,fr", home=home)
    _run(runner, "facts", "set", "household_size", "3", home=home)
    _run(runner, "facts", "set", "city", "Lyon", home=home)
    assert json.loads(_run(runner, "facts", "list", "--json", home=home)) == {
        "city": "Lyon", "household_size": 3, "languages": ["en", "fr"]}
    _run(runner, "facts", "set", "shoe_size", "44", home=home, code=6)


def test_mood_is_validated(runner: CliRunner, home: Path) -> None:
    _run(runner, "mood", "happy", "--at", "1700000000", home=home)
    _run(runner, "mood", "furious", home=home, code=6)
    assert json.loads(_run(runner, "stats", "--json", home=home))["events_by_kind"] == {"mood": 1}


def test_wrong_passphrase_exit_code_3_and_nothing_written(runner: CliRunner, home: Path) -> None:
    """THREATS row 1: one-line "wrong passphrase" error, exit code 3, nothing written."""
    before = {p.name: p.read_bytes() for p in home.iterdir()}
    for command in (["stats"], ["mood", "calm"], ["passphrase"], ["rotate-key"]):
        result = runner.invoke(app, [*command, "--home", str(home)],
                               env={"VAULT_PASSPHRASE": "nope", "VAULT_NEW_PASSPHRASE": "x"})
        assert result.exit_code == 3
        assert "wrong passphrase" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in home.iterdir()} == before


def test_init_twice_is_refused(runner: CliRunner, home: Path) -> None:
    _run(runner, "init", *CHEAP_KDF, home=home, code=4)


def test_init_refuses_kdf_below_minimum(runner: CliRunner, tmp_path: Path) -> None:
    """THREATS row 4."""
    result = runner.invoke(app, ["init", "--home", str(tmp_path / "v"),
                                 "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
    assert result.exit_code == 3
    assert not (tmp_path / "v").exists()


def test_check_names_damaged_records_with_exit_code_5(runner: CliRunner, home: Path) -> None:
    """THREATS row 3."""
    _run(runner, "mood", "calm", "--at", "1700000000", home=home)
    _run(runner, "mood", "sad", "--at", "1700000100", home=home)
    assert "opens" in _run(runner, "check", home=home)
    import sqlite3

    db = sqlite3.connect(home / DB_NAME)
    db.execute("UPDATE events SET payload = (SELECT payload FROM events WHERE id = 1) "
               "WHERE id = 2")
    db.commit()
    db.close()
    result = runner.invoke(app, ["check", "--json", "--home", str(home)])
    assert result.exit_code == 5
    assert json.loads(result.stdout) == [{"table": "events", "row": "2", "column": "payload",
                                          "problem": "does not open (altered, moved or damaged)"}]


def test_passphrase_change_then_rotate_then_export_restore(
    runner: CliRunner, home: Path, tmp_path: Path
) -> None:
    _run(runner, "mood", "calm", "--at", "1700000000", home=home)
    _run(runner, "passphrase", home=home, env={"VAULT_NEW_PASSPHRASE": "second"})
    _run(runner, "stats", home=home, code=3)
    new = {"VAULT_PASSPHRASE": "second"}
    assert "version 2" in _run(runner, "rotate-key", home=home, env=new)
    backup = tmp_path / "vault.backup"
    _run(runner, "export", str(backup), home=home, env=new)
    _run(runner, "export", str(backup), home=home, env=new, code=6)  # never overwrites
    target = tmp_path / "restored"
    _run(runner, "restore", str(backup), home=target, code=3)
    _run(runner, "restore", str(backup), home=target, env=new)
    stats = json.loads(_run(runner, "stats", "--json", home=target, env=new))
    assert stats["events"] == 1 and stats["key_version"] == 2
    _run(runner, "restore", str(backup), home=target, env=new, code=4)


def test_no_secret_in_any_output(runner: CliRunner, home: Path, tmp_path: Path) -> None:
    """THREATS row 9: neither the passphrase nor any key appears in output or errors."""
    outputs = []
    for args in (["stats", "--json"], ["check"], ["facts", "list"], ["rotate-key"],
                 ["export", str(tmp_path / "b")]):
        result = runner.invoke(app, [*args, "--home", str(home)])
        outputs.append(result.output)
    outputs.append(runner.invoke(app, ["stats", "--home", str(home)],
                                 env={"VAULT_PASSPHRASE": "wrong-" + PASS}).output)
    with Vault.open(home, PASS) as vault:
        keys = [vault._keyring.current.key.reveal(), vault._kek.reveal(),
                bytes(vault.owner_account().key)]
    text = "\n".join(outputs)
    assert PASS not in text
    for key in keys:
        assert key.hex() not in text
    assert (home / KEYFILE_NAME).read_text().count(PASS) == 0
