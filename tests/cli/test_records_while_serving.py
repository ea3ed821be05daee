"""The daemon never locks the owner out (issue 14): while a real `vault serve` holds the
vault, the record commands — import (a ZIP as Spotify delivers it), mood, facts, genres,
stats, check, preview, export — run as real CLI subprocesses through its owner routes,
without the passphrase (so only the daemon can have answered); what was imported reaches
the very next release a company fetches over real HTTP, and a hostile archive is refused
with exit 16 and commits nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault import chain as chains
from vault import client, crypto
from vault.daemon import runtime
from vault.importers import importer_for
from vault.store import Vault

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
SAMPLES = Path(__file__).resolve().parents[2] / "vault" / "samples"


@dataclass
class Owner:
    home: Path
    address: str
    env: dict[str, str]
    chain: chains.RpcChain
    anvil: Any

    def cli(self, *args: str, passphrase: bool = False, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env, "COLUMNS": "80"}
        env.pop("VAULT_PASSPHRASE", None)
        if passphrase:
            env["VAULT_PASSPHRASE"] = PASS
        return subprocess.run([VAULT, *args], capture_output=True, text=True, timeout=120,
                              env=env, stdin=subprocess.DEVNULL, cwd=cwd)


@pytest.fixture
def owner(anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path) -> Owner:
    home = tmp_path / "owner"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        with (SAMPLES / "profile.toml").open("rb") as stream:
            vault.import_records(list(importer_for("profile").parse(
                stream, filename="profile.toml")))
        address = vault.owner_address
    anvil.w3.eth.send_transaction({"from": anvil.addresses[0], "to": address, "value": 10**18})
    env = {
        "VAULT_HOME": str(home), "VAULT_CHAIN": "rpc", "VAULT_RPC_URL": anvil.rpc_url,
        "VAULT_CHAIN_ID": str(anvil.chain_id), "VAULT_LEDGER": anvil_chain.ledger_address,
        "VAULT_SYNC_INTERVAL_SECONDS": "0.1",
    }
    return Owner(home, address, env, anvil_chain, anvil)


@contextmanager
def serving(owner: Owner, tmp_path: Path) -> Iterator[runtime.RuntimeFile]:
    port = chains.free_port()
    env = {**os.environ, **owner.env, "VAULT_PASSPHRASE": PASS}
    log = tmp_path / "serve.txt"
    with log.open("wb") as stderr:
        process = subprocess.Popen([VAULT, "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            published = runtime.read(owner.home)
            if published is not None and published.pid == process.pid:
                break
            assert time.monotonic() < deadline, "vault serve did not publish its runtime file"
            time.sleep(0.1)
        assert httpx.get(published.url + "/v1/health", timeout=5).status_code == 200
        yield published
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def music_grant(owner: Owner, published: runtime.RuntimeFile
                ) -> Iterator[tuple[client.Company, client.Grant]]:
    """A company and its active grant of preferences.music, approved by the owner through the
    serving daemon (`vault approve --submit` once the daemon has indexed the request)."""
    with client.Company(owner.anvil.accounts[1], owner.chain, owner.chain.ledger_address,
                        poll_interval=0.02) as company:
        request = company.request_access(owner.address, ["preferences.music"], 30 * 86_400,
                                         10**16, "playlists")
        deadline = time.monotonic() + 30
        while owner.cli("approve", str(request.id), "--yes", "--submit").returncode:
            assert time.monotonic() < deadline, "the daemon did not index the request"
            time.sleep(0.2)
        granted = company.wait_for_grant(request)
        # The company's node can be a sync round ahead of the daemon's index: wait until the
        # daemon itself lists the grant as active, as the release will check it.
        while not any(g["id"] == granted.id and g["status"] == "active"
                      for g in json.loads(owner.cli("grants", "--json").stdout)):
            assert time.monotonic() < deadline, "the daemon did not index the approval"
            time.sleep(0.1)
        yield company, granted.model_copy(update={"endpoint": published.url})


def spotify_zip(folder: Path) -> Path:
    """my_spotify_data.zip as Spotify delivers it: the music history, the podcast
    history and the account's user data, under "Spotify Account Data/"."""
    path = folder / "my_spotify_data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(SAMPLES / "StreamingHistory_music_0.json",
                      "Spotify Account Data/StreamingHistory_music_0.json")
        archive.writestr("Spotify Account Data/StreamingHistory_podcast_0.json", json.dumps(
            [{"endTime": "2024-03-01 08:00", "podcastName": "A show",
              "episodeName": "An episode", "msPlayed": 600000}]))
        archive.writestr("Spotify Account Data/Userdata.json", json.dumps({"country": "GB"}))
    return path


def related_to_the_samples_artists(tmp_path: Path) -> Path:
    """A company's list of 20 in which one candidate is related to the eight artists the
    sample Spotify history plays most: its history score (about 4) puts it in the top 10
    whatever the match noise (Gumbel, scale 0.5) draws for the other 19."""
    path = tmp_path / "candidates.json"
    artists = ["Radiohead", "Nina Simone", "Phoebe Bridgers", "Miles Davis", "Laura Marling",
               "Fleet Foxes", "Bonobo", "Ludovico Einaudi"]
    candidates = [{"id": f"film-{n}", "similar": [f"Nobody Plays This {n}"]} for n in range(19)]
    path.write_text(json.dumps([{"id": "fan-pick", "similar": artists}, *candidates]))
    return path


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_record_command_works_while_serving_and_an_import_reaches_the_next_release(
    owner: Owner, tmp_path: Path
) -> None:
    with serving(owner, tmp_path) as published:
        with music_grant(owner, published) as (company, grant):
            before = company.fetch(grant).preferences["preferences.music"]
            assert before["status"] == "insufficient_data"

            report = json.loads(ok(owner.cli("import", str(spotify_zip(tmp_path)), "--json")))
            assert [f["kind"] for f in report["files"]] == ["spotify"]
            assert report["new_events"] == 321
            assert {i["reason"] for i in report["ignored"]} == {"not an export vault reads"}
            assert len(report["ignored"]) == 2
            assert report["coverage"]["listens"] > 0

            # At once, not after the daemon's 5 s cache: the import cleared it.
            after = company.fetch(grant).preferences["preferences.music"]
            assert after["status"] == "ok" and after["genres"]

        ok(owner.cli("mood", "calm"))
        ok(owner.cli("facts", "set", "city", "Lyon"))
        assert json.loads(ok(owner.cli("facts", "list", "--json")))["city"] == "Lyon"
        stats = json.loads(ok(owner.cli("stats", "--json")))
        assert stats["events_by_kind"] == {"mood": 1, "play": 321}
        taught = ok(owner.cli("genres", "set", "Some Unmapped Artist", "funk"))
        assert "Genres known for" in taught
        preview = json.loads(ok(owner.cli("preview", "preferences.music", "--json")))
        assert preview["coverage"]["listens_with_genre"] <= preview["coverage"]["listens"]
        assert "Every sealed value opens" in ok(owner.cli("check"))
        backup = tmp_path / "backup.vault"
        ok(owner.cli("export", str(backup), passphrase=True))
        assert backup.stat().st_size > 0


def test_a_zip_bomb_is_refused_through_the_daemon_with_exit_16_and_nothing_committed(
    owner: Owner, tmp_path: Path
) -> None:
    bomb = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Spotify Account Data/StreamingHistory_music_0.json",
                         b"[" + b" " * (20 << 20) + b"]")
    with serving(owner, tmp_path):
        refused = owner.cli("import", str(bomb))
        assert refused.returncode == 16, refused.stderr
        assert refused.stderr.count("\n") == 1 and "zip bomb" in refused.stderr
        stats = json.loads(ok(owner.cli("stats", "--json")))
        assert stats["events"] == 0


def test_forget_while_serving_reaches_the_next_release_and_is_logged_by_the_daemon(
    owner: Owner, tmp_path: Path
) -> None:
    with serving(owner, tmp_path) as published:
        with music_grant(owner, published) as (company, grant):
            ok(owner.cli("import", str(SAMPLES / "StreamingHistory_music_0.json")))
            assert company.fetch(grant).preferences["preferences.music"]["status"] == "ok"
            fan_pick = related_to_the_samples_artists(tmp_path)
            assert "you played" in ok(owner.cli("match", "preview", str(fan_pick), "--daemon"))

            # No passphrase: only the daemon can have answered. The plan, then the deletion.
            declined = owner.cli("forget", "source", "spotify")  # stdin closed: "no"
            assert declined.returncode == 1
            assert "deletes 321 events (spotify 321)" in declined.stdout
            done = json.loads(ok(owner.cli("forget", "source", "spotify", "--yes", "--json")))
            assert done["events_by_source"] == {"spotify": 321}

            # At once, not after the daemon's 5 s cache: the forget cleared it. Matches read
            # the history afresh too (not after their 10-minute cache of it).
            after = company.fetch(grant).preferences["preferences.music"]
            assert after["status"] == "insufficient_data"
            assert "you played" not in ok(owner.cli("match", "preview", str(fan_pick),
                                                    "--daemon"))

        missing = owner.cli("forget", "source", "spotify", "--yes")
        assert missing.returncode == 10 and missing.stderr.count("\n") == 1
        assert "Forgot the fact city." in ok(owner.cli("forget", "fact", "city", "--yes"))
        assert "city" not in json.loads(ok(owner.cli("facts", "list", "--json")))
        assert "Every sealed value opens" in ok(owner.cli("check"))
        entries = json.loads(ok(owner.cli("log", "--json", "--limit", "100")))
        assert [e["kind"] for e in entries].count("forget") == 2
        notes = [e["note"] for e in entries if e["kind"] in ("import", "forget")]
        assert notes == ["321 new, 0 already stored (spotify)", "321 events (spotify 321)",
                         "0 events, facts city"]
        shown = ok(owner.cli("log", "--limit", "100"))  # 80 columns: the note wraps
        assert "forget:" in shown and "(spotify" in shown and "facts city" in shown
