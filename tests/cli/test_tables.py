"""Every CLI table at 80 columns never cuts a value (issue 14: "6/1" for 6/100).

Each listing runs as the real `vault` command in a subprocess with ``COLUMNS=80`` against a
vault on the session's anvil with requests, grants (one with 6 of its 100 releases served
by a real `vault serve` over HTTP), a denial, a revoke, terms, rules and taught genres; its
``--json`` twin says what the command knows, and every word of every value must appear whole
in the table, on lines no wider than 80 columns. Times show as local dates (``TZ`` is set to
a zone with a half-hour offset, so a UTC rendering cannot pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.cells import cell_len
from rich.console import Console

from vault import chain as chains
from vault import client, ledger
from vault.cli._format import Listing
from vault.daemon import runtime
from vault.eth.units import format_eth

from .conftest import sample_owner

PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
DAY = 86_400
ZONE = "Asia/Kolkata"  # UTC+05:30: a date printed in UTC shows another minute


@dataclass
class Shown:
    """One command's table and what its ``--json`` says it knows."""

    text: str
    known: Any


@dataclass
class Owner:
    home: Path
    address: str
    env: dict[str, str]

    def vault(self, *args: str) -> str:
        result = subprocess.run(
            [VAULT, *args], capture_output=True, text=True, timeout=120,
            env={**os.environ, **self.env, "COLUMNS": "80", "TZ": ZONE},
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def shown(self, *args: str) -> Shown:
        return Shown(self.vault(*args), json.loads(self.vault(*args, "--json")))


def serve_releases(owner: Owner, company: client.Company, request: client.AccessRequest,
                   count: int) -> None:
    """Run a real `vault serve` while ``company`` fetches ``count`` releases under the grant
    ``request`` became; stop it again (the listings then read the vault in process)."""
    server = subprocess.Popen([VAULT, "serve", "--port", str(chains.free_port())],
                              env={**os.environ, **owner.env,
                                   "VAULT_SYNC_INTERVAL_SECONDS": "0.1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        published = runtime.read(owner.home)
        while published is None or published.pid != server.pid:
            assert server.poll() is None and time.monotonic() < deadline, "no daemon"
            time.sleep(0.1)
            published = runtime.read(owner.home)
        grant = company.wait_for_grant(request, timeout=30).model_copy(
            update={"endpoint": published.url})
        served = 0
        while served < count:
            try:
                company.fetch(grant)
                served += 1
            except (client.NotGranted, client.VaultLedgerUnavailable):
                assert time.monotonic() < deadline, "the daemon never saw the grant"
                time.sleep(0.1)  # its index has not reached the approval yet
    finally:
        server.terminate()
        server.wait(timeout=30)


def words(values: Iterable[Any]) -> set[str]:
    return {word for value in values for word in str(value).split()}


def local_minute(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M")


def assert_whole(shown: Shown, expected: Iterable[Any]) -> None:
    """Every word of every expected value is in the table uncut, on lines of ≤ 80 columns."""
    lines = shown.text.splitlines()
    assert max(map(cell_len, lines)) <= 80, shown.text
    present = set(shown.text.split())
    missing = sorted(w for w in words(expected) if w not in present
                     and not any(w in token for token in present))
    assert not missing, (missing, shown.text)


@pytest.fixture(scope="module")
def owner(anvil: chains.AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Owner]:
    """A vault that saw a company's whole story: a grant, a revoke, a denial, a pending
    request with a long purpose; terms, rules and genres set."""
    address = ledger.deploy_ledger(anvil.w3, sender=anvil.addresses[0])
    chain = chains.RpcChain(anvil.rpc_url, chain_id=anvil.chain_id, ledger_address=address,
                            timeout=10.0)
    home = tmp_path_factory.mktemp("tables") / "owner"
    owner_address, env = sample_owner(home, PASS, anvil, address)
    made = Owner(home, owner_address, env)
    with client.Company(anvil.accounts[1], chain, address) as company:
        company.describe("Acme Audio", "https://acme.example")
        scopes = ["preferences.music", "profile.age_range", "profile.languages"]
        kept = company.request_access(owner_address, scopes, 30 * DAY, 3 * 10**16,
                                      "playlist suggestions", max_releases=100)
        ended = company.request_access(owner_address, scopes[:1], 7 * DAY, 10**16, "a trial")
        denied = company.request_access(owner_address, scopes[1:], DAY, 10**15, "ads")
        company.request_access(
            owner_address, scopes, 60 * DAY, 6 * 10**16,
            "weekly concert picks near you, chosen from what you play most; nothing else",
            max_releases=12,
        )
        for grant in (kept, ended):
            made.vault("approve", str(grant.id), "--yes", "--submit")
        serve_releases(made, company, kept, 6)
    made.vault("revoke", str(ended.id), "--yes")
    made.vault("deny", str(denied.id), "--yes")
    anvil.rpc("evm_increaseTime", DAY)  # the grant earns a day's share
    anvil.rpc("evm_mine")
    made.vault("terms", "set", "--min-price-per-day", "0.0001", "--max-duration", "90d",
               "--offer", "preferences.music", "--offer", "profile.age_range",
               "--offer", "profile.languages", "--never", "mood.current",
               "--note", "ask me about concerts first")
    rules = home.parent / "rules.json"
    rules.write_text(json.dumps({"rules": [{
        "name": "music-for-a-fair-price", "scopes": ["preferences.music"],
        "min_price_per_day_wei": 10**14, "max_duration_seconds": 30 * DAY,
    }], "never_share": ["mood.current"]}))
    made.vault("rules", "set", str(rules))
    made.vault("genres", "set", "Khruangbin", "funk")
    made.vault("genres", "set", "--for", "channel", "Tiny Desk Concerts", "music")
    yield made
    chain.close()


def test_requests_show_every_field_whole(owner: Owner) -> None:
    shown = owner.shown("requests", "--status", "all")
    for request in shown.known:
        assert_whole(shown, [
            request["id"], request["company"], request["company_name"], request["purpose"],
            *request["scopes"], format_eth(request["price_wei"]),
            format_eth(request["price_per_day_wei"]), request["max_releases"] or "unlimited",
        ])
        if request["expires_at"]:
            assert local_minute(request["expires_at"]) in shown.text
    assert "Acme Audio (" + shown.known[0]["company"] + ")" in shown.text


def test_grants_show_releases_and_dates_whole(owner: Owner) -> None:
    shown = owner.shown("grants")
    assert len(shown.known) == 2
    assert "6/100" in shown.text.split()  # the "6/1"
    for grant in shown.known:
        limit = grant["max_releases"] or "∞"
        assert_whole(shown, [
            grant["id"], grant["company_name"], f"{grant['company'][:6]}…",
            *grant["scopes"], format_eth(grant["price_wei"]), grant["status"],
            local_minute(grant["expires_at"]), f"{grant['releases_used']}/{limit}",
        ])


def test_earnings_show_every_amount_whole(owner: Owner) -> None:
    shown = owner.shown("earnings")
    assert shown.known["grants"]
    assert_whole(shown, [format_eth(shown.known["claimable_wei"]),
                         format_eth(shown.known["owed_wei"])])
    for grant in shown.known["grants"]:
        assert_whole(shown, [grant["id"], format_eth(grant["earned_wei"]),
                             format_eth(grant["claimable_wei"])])


def test_privacy_shows_each_company_whole(owner: Owner) -> None:
    shown = owner.shown("privacy")
    assert len(shown.known["companies"]) == 1
    for company in shown.known["companies"]:
        assert_whole(shown, [
            "Acme Audio", f"{company['company'][:6]}…", company["releases"],
            len(company["epochs"]), len(company["scopes"]), company["entries_revealed"],
            f"{company['epsilon_spent']:.1f}",
        ])


def test_the_log_shows_every_entry_whole(owner: Owner) -> None:
    shown = owner.shown("log")
    assert len(shown.known) >= 6
    for entry in shown.known:
        what = entry["kind"].replace("_", " ")
        assert_whole(shown, [
            entry["seq"], what, entry["outcome"], entry["reason"] or "", *entry["scopes"],
            f"#{entry['grant_id']}" if entry["grant_id"] is not None else "",
            f"{entry['company'][:6]}…" if entry["company"] else "",
            local_minute(entry["at"]),
        ])


def test_terms_and_rules_show_whole(owner: Owner) -> None:
    terms = owner.shown("terms", "show")
    assert_whole(terms, [format_eth(terms.known["min_price_per_day_wei"]),
                         *terms.known["scopes_offered"], *terms.known["scopes_never"],
                         terms.known["note"]])
    rules = owner.shown("rules", "show")
    for rule in rules.known["rules"]:
        assert_whole(rules, [rule["name"], *rule["scopes"],
                             format_eth(rule["min_price_per_day_wei"])])


def test_genres_and_scopes_show_whole(owner: Owner) -> None:
    genres = owner.shown("genres", "list")
    assert_whole(genres, [value for kind, taught in genres.known["taught"].items()
                          for value in (kind, *taught, *taught.values())])
    catalog = owner.shown("scopes")
    for entry in catalog.known:
        assert_whole(catalog, [entry["bit"], entry["name"], entry["description"],
                               entry["sensitivity"], entry["transform"]])


def test_match_preview_shows_every_pick_whole(owner: Owner, tmp_path: Path) -> None:
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([
        {"id": f"event-{n:03d}-khruangbin-live-at-the-royal-albert-hall",
         "title": f"Concert {n}", "genres": ["funk", "rock"]} for n in range(24)
    ]))
    shown = owner.shown("match", "preview", str(listing), "--k", "5")
    assert len(shown.known["picks"]) == 5
    for pick in shown.known["picks"]:
        assert_whole(shown, [pick["id"], pick["title"]])


def test_stats_show_dates_not_unix_seconds(owner: Owner) -> None:
    shown = owner.shown("stats")
    figures = shown.known
    assert_whole(shown, [figures["events"], figures["owner_address"], figures["database_bytes"],
                         *figures["events_by_kind"], *figures["events_by_kind"].values()])
    for field in ("first_event_at", "last_event_at"):
        assert local_minute(figures[field]) in shown.text
        assert str(figures[field]) not in shown.text


def test_a_listing_too_wide_for_its_columns_stacks_each_row() -> None:
    listing = Listing("grants", ["id", "company", "releases"])
    listing.add_row("7", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "6/100")
    console = Console(width=56, record=True)
    console.print(listing)
    text = console.export_text()
    assert max(map(cell_len, text.splitlines())) <= 56
    assert "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" in text.split()
    assert "6/100" in text.split() and "releases 6/100" in " ".join(text.split())
