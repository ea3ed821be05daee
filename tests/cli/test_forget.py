"""`vault forget source|file|fact` through the real CLI (subprocesses), the vault unlocked in
the command's own process (no daemon; tests/cli/test_records_while_serving.py covers the
daemon): the confirmation says what goes and "no" changes nothing; the deletion is
re-derived, logged with counts only, verified by `vault check`; a file imports again after
it was forgotten; a backup made afterwards no longer holds it; what is not stored is one
line and exit 10.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vault import audit, crypto
from vault.store import Vault

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
SAMPLES = Path(__file__).resolve().parents[2] / "vault" / "samples"
SPOTIFY = SAMPLES / "StreamingHistory_music_0.json"
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "vault"
    Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM).close()
    return home


@pytest.fixture
def cli(home: Path) -> Cli:
    def run(*args: str, stdin: str = "", where: Path = home) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "VAULT_HOME": str(where), "VAULT_PASSPHRASE": PASS,
               "COLUMNS": "200"}
        return subprocess.run([VAULT, *args], input=stdin, capture_output=True, text=True,
                              timeout=120, env=env)
    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def stats(cli: Cli) -> dict[str, object]:
    figures: dict[str, object] = json.loads(ok(cli("stats", "--json")))
    return figures


def logged(home: Path, kind: str) -> list[audit.Entry]:
    with Vault.open(home, PASS) as vault:
        log = audit.AuditLog.in_home(home, key=vault.access_log_key())
        try:
            return log.entries(kind=kind)
        finally:
            log.close()


def test_forget_a_source_asks_with_counts_then_deletes_rederives_and_logs(
    cli: Cli, home: Path
) -> None:
    ok(cli("import", str(SAMPLES / "profile.toml")))
    ok(cli("import", str(SPOTIFY)))
    ok(cli("import", str(SAMPLES / "watch-history.json")))
    before = stats(cli)
    assert before["events_by_source"] == {"spotify": 321, "youtube": 92}

    declined = cli("forget", "source", "spotify", stdin="n\n")
    assert declined.returncode == 1
    assert "deletes 321 events (spotify 321) for good" in declined.stdout
    assert "Nothing changed." in declined.stdout
    assert stats(cli) == before

    done = ok(cli("forget", "source", "spotify", stdin="y\n"))
    assert "Forgot 321 events (spotify 321)." in done
    after = stats(cli)
    assert after["events_by_source"] == {"youtube": 92}
    assert after["events_by_kind"] == {"view": 92}
    preview = json.loads(ok(cli("preview", "preferences.music", "--json")))
    assert preview["scopes"][0]["value"]["status"] == "insufficient_data"
    assert preview["coverage"]["listens"] == 0
    assert "Every sealed value opens" in ok(cli("check"))

    [entry] = logged(home, audit.FORGET)
    assert (entry.outcome, entry.detail) == ("ok", {
        "target": "source", "events": 321, "events_by_source": {"spotify": 321}, "facts": []})
    # Imports are logged too: sources and counts only.
    imports = [e.detail for e in logged(home, audit.IMPORT)]
    assert [d["sources"] for d in imports] == [["profile"], ["spotify"], ["youtube"]]
    assert imports[2] == {"sources": ["youtube"], "new_events": 92, "duplicate_events": 0,
                          "facts": 0}


def test_a_forgotten_file_imports_again_and_a_later_backup_does_not_hold_it(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    ok(cli("import", str(SAMPLES / "profile.toml")))
    ok(cli("import", str(SPOTIFY)))
    ok(cli("facts", "set", "city", "Lyon"))  # changed since the import: the owner's word

    done = json.loads(ok(cli("forget", "file", str(SAMPLES / "profile.toml"), "--yes",
                             "--json")))
    assert done["done"] and done["events"] == 0
    assert "city" not in done["facts"] and "birth_date" in done["facts"]
    assert json.loads(ok(cli("facts", "list", "--json"))) == {"city": "Lyon"}

    forgotten = json.loads(ok(cli("forget", "file", str(SPOTIFY), "--yes", "--json")))
    assert forgotten["events_by_source"] == {"spotify": 321}
    assert stats(cli)["events"] == 0
    backup = tmp_path / "after.vault"
    ok(cli("export", str(backup)))

    again = json.loads(ok(cli("import", str(SPOTIFY), "--json")))
    assert (again["new_events"], again["duplicate_events"]) == (321, 0)
    assert "Every sealed value opens" in ok(cli("check"))

    restored = tmp_path / "restored"
    ok(cli("restore", str(backup), where=restored))
    assert stats(lambda *a: cli(*a, where=restored))["events"] == 0
    entries = logged(home, audit.FORGET)
    assert [e.detail["target"] for e in entries] == ["file", "file"]
    assert all(str(SAMPLES) not in json.dumps(e.detail) for e in entries)  # never the path


def test_forget_a_fact(cli: Cli) -> None:
    ok(cli("facts", "set", "city", "Lyon"))
    ok(cli("facts", "set", "country", "FR"))
    assert "Forgot the fact city." in ok(cli("forget", "fact", "city", "--yes"))
    assert json.loads(ok(cli("facts", "list", "--json"))) == {"country": "FR"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (("source", "netflix"), 10, "no events from the source 'netflix' are stored"),
    (("fact", "city"), 10, "the fact 'city' is not set"),
    (("fact", "shoe_size"), 6, "unknown fact 'shoe_size'"),
    (("file", str(SAMPLES / "ViewingActivity.csv")), 10,
     "nothing in ViewingActivity.csv is stored"),
    (("file", "/nonexistent/export.json"), 6, "cannot be read"),
])
def test_what_is_not_stored_is_one_line_and_changes_nothing(
    cli: Cli, home: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    ok(cli("import", str(SPOTIFY)))
    refused = cli("forget", *args, "--yes")
    assert refused.returncode == code, refused.stderr
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert message in refused.stderr
    assert stats(cli)["events"] == 321
    assert logged(home, audit.FORGET) == []


def test_a_forget_killed_before_its_commit_leaves_the_vault_as_it_was(
    cli: Cli, home: Path
) -> None:
    ok(cli("import", str(SPOTIFY)))
    env = {**os.environ, "VAULT_HOME": str(home), "VAULT_PASSPHRASE": PASS,
           "VAULT_TEST_CRASH_AFTER": "forget-before-commit"}
    killed = subprocess.run([VAULT, "forget", "source", "spotify", "--yes"], env=env,
                            capture_output=True, timeout=120)
    assert killed.returncode == -9
    assert stats(cli)["events"] == 321
    assert "Every sealed value opens" in ok(cli("check"))
    assert logged(home, audit.FORGET) == []
