"""The consent commands through Typer's CliRunner and as subprocesses, on a real anvil.

Two backends: with no daemon the CLI unlocks the vault itself; with a daemon serving the
home (uvicorn in a thread here) it uses the owner routes. Exit codes are the README's:
unknown request 10, already decided 11, another owner's 12, nothing owed 13, no daemon 9,
chain unreachable 7, declined confirmation 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from vault import chain as chains
from vault import client, ledger
from vault.cli import app
from vault.config import Settings
from vault.daemon import runtime
from vault.store import Vault

from .conftest import sample_owner

PASS = "correct horse battery staple"
MUSIC_AGE = ["preferences.music", "profile.age_range"]
DAY = 86_400
VAULT = str(Path(sys.executable).with_name("vault"))


@dataclass
class Owner:
    home: Path
    address: str
    env: dict[str, str]
    chain: chains.RpcChain
    anvil: Any

    def run(self, *args: str, code: int = 0, input: str | None = None,
            env: dict[str, str] | None = None) -> Any:
        result = CliRunner().invoke(app, list(args), env={**self.env, **(env or {})},
                                    input=input)
        assert result.exit_code == code, (result.exit_code, result.output)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def company(self, index: int = 1) -> client.Company:
        return client.Company(self.anvil.accounts[index], self.chain, self.chain.ledger_address,
                              poll_interval=0.02)

    def request(self, company: client.Company, **kw: Any) -> client.AccessRequest:
        values: dict[str, Any] = {"scopes": MUSIC_AGE, "duration": 30 * DAY,
                                  "price": 3 * 10**16, "purpose": "playlist suggestions"}
        values.update(kw)
        return company.request_access(self.address, **values)


@pytest.fixture
def owner(anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path) -> Iterator[Owner]:
    home = tmp_path / "owner"
    address, env = sample_owner(home, PASS, anvil, anvil_chain.ledger_address)
    yield Owner(home, address, env, anvil_chain, anvil)


@pytest.fixture
def serving(owner: Owner) -> Iterator[Any]:
    """A daemon serving the owner's home (what `vault serve` runs), in this process; it
    publishes the runtime file the CLI finds it by."""
    from vault.daemon.app import create_app
    from vault.daemon.server import DaemonServer

    settings = Settings(home=owner.home, chain="rpc", rpc_url=owner.env["VAULT_RPC_URL"],
                        chain_id=int(owner.env["VAULT_CHAIN_ID"]),
                        ledger=owner.env["VAULT_LEDGER"], port=int(owner.env["VAULT_PORT"]),
                        sync_interval_seconds=0.1)
    vault = Vault.open(owner.home, PASS)
    served = create_app(settings, vault=vault, chain=owner.chain)
    server = DaemonServer(uvicorn.Config(served, host="127.0.0.1", port=settings.port,
                                         log_level="warning", lifespan="on"),
                          home=owner.home, owner=owner.address, token=served.state.token)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    # The runtime file is written just after `started` turns true: the CLI finds it by that.
    while runtime.read(owner.home) is None:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield served.state.daemon
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        vault.close()


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --------------------------------------------------------------------------- no daemon


def test_requests_shows_a_table_and_the_consent_statement(owner: Owner) -> None:
    with owner.company() as company:
        request = owner.request(company)
    shown = owner.run("requests").stdout
    assert f"request {request.id} · pending" in shown and "playlist suggestions" in shown
    assert company.address in shown  # never truncated
    assert "What you like to listen to" in shown  # scopes in words
    assert "0.03 ETH" in shown and "0.001 ETH" in shown  # price and price per day
    assert "30 days" in shown and "what approving means" in shown
    listed = owner.json("requests")
    assert [r["id"] for r in listed] == [request.id]
    assert listed[0]["status"] == "pending" and listed[0]["catalog_matches"]
    assert listed[0]["company"] == company.address
    statement = listed[0]["consent_statement"]
    assert "0.03 ETH in total (0.001 ETH per day) for 30 days" in statement
    assert owner.json("requests", "--status", "active") == []


def test_approve_asks_then_submits_and_a_second_approve_is_refused(owner: Owner) -> None:
    with owner.company() as company:
        request = owner.request(company)
        declined = owner.run("approve", str(request.id), input="n\n", code=1)
        assert "what approving means" in declined.stdout and "Nothing changed" in declined.stdout
        assert owner.chain.client().get_request(request.id).status is ledger.Status.PENDING
        approved = owner.run("approve", str(request.id), "--yes", "--submit")
        assert "on the ledger" in approved.stdout
        grant = company.wait_for_grant(request, timeout=10)
        assert grant.relay_tx_hash is None
    again = owner.run("approve", str(request.id), "--yes", code=11)
    assert again.stderr.count("\n") == 1 and "already" in again.stderr
    assert owner.json("grants")[0]["status"] == "active"


def test_a_signed_request_waits_for_relay_and_approving_again_signs_nothing(
    owner: Owner,
) -> None:
    with owner.company() as company:
        request = owner.request(company)
        first = owner.json("approve", str(request.id), "--yes")
        assert first["already_signed"] is False
        listed = owner.json("requests")
        assert [r["id"] for r in listed] == [request.id]  # still pending on the ledger
        assert listed[0]["awaiting_relay"] is True
        assert listed[0]["approval_expires_at"] == first["deadline"]
        shown = owner.run("requests").stdout
        assert "signed — waiting for the company to relay" in shown
        assert "what approving means" not in shown  # nothing left to decide
        again = owner.run("approve", str(request.id))  # no question: nothing new is signed
        assert again.stdout.startswith(f"Request {request.id} is already signed")
        assert "nothing new was signed" in again.stdout and "Approve request" not in again.stdout
        repeated = owner.json("approve", str(request.id), "--yes")
        assert repeated == {**first, "already_signed": True}
        approvals = [e for e in owner.json("log") if e["kind"] == "approve"]
        assert len(approvals) == 1  # one signature logged, one on offer
    # The company relays the one signature (what its SDK does through the vault's route).
    owner.chain.client(sender=company.address).approve_by_sig(
        request.id, first["deadline"], bytes.fromhex(first["signature"][2:])
    )
    listed = owner.json("requests", "--status", "all")
    assert listed[0]["status"] == "active" and listed[0]["awaiting_relay"] is False
    assert listed[0]["approval_expires_at"] is None


def test_an_approval_that_expired_unrelayed_is_signed_anew(owner: Owner) -> None:
    with owner.company() as company:
        request = owner.request(company)
    short = {"VAULT_APPROVAL_TTL_SECONDS": "60"}
    first = json.loads(owner.run("approve", str(request.id), "--yes", "--json", env=short).stdout)
    owner.anvil.rpc("evm_increaseTime", 120)  # the ledger's clock passes the deadline
    owner.anvil.rpc("evm_mine")
    listed = owner.json("requests")[0]
    assert listed["awaiting_relay"] is False
    assert listed["approval_expires_at"] == first["deadline"]
    assert "your signature expired unrelayed" in owner.run("requests").stdout
    again = owner.json("approve", str(request.id), "--yes")
    assert again["already_signed"] is False and again["signature"] != first["signature"]
    assert again["deadline"] > first["deadline"]
    assert owner.json("requests")[0]["awaiting_relay"] is True


def test_a_denied_request_shows_no_approval_panel(owner: Owner) -> None:
    with owner.company() as company:
        request = owner.request(company)
        denying = owner.run("deny", str(request.id), "--yes")
        assert "what approving means" not in denying.stdout
    shown = owner.run("requests", "--status", "all").stdout
    assert f"request {request.id} · denied" in shown
    assert "what approving means" not in shown


def test_a_company_name_is_shown_beside_its_address_with_its_history(owner: Owner) -> None:
    with owner.company() as company, owner.company(2) as impostor:
        company.describe("\u202eAcme\x1b  Audio\u200b\x07", "https://acme.example")
        earlier = owner.request(company)
        owner.run("deny", str(earlier.id), "--yes")
        granted = owner.request(company)
        owner.run("approve", str(granted.id), "--yes", "--submit")
        owner.run("revoke", str(granted.id), "--yes")
        latest = owner.request(company)
        # A name that reads as another account's address is never shown as a name.
        impostor.describe(f"{company.address[:6]}…{company.address[-4:]}", "")
        theirs = owner.request(impostor)
    listed = {r["id"]: r for r in owner.json("requests")}
    assert listed[latest.id]["company_name"] == "Acme Audio"  # control characters gone
    assert listed[latest.id]["company_url"] == "https://acme.example"
    assert listed[latest.id]["company_history"] == {
        "requests": 2, "granted": 1, "revoked": 1, "denied": 1,
    }
    assert listed[theirs.id]["company_name"] is None
    shown = owner.run("requests").stdout
    assert f"Acme Audio ({company.address})" in shown and "\x1b" not in shown
    assert "2 earlier requests: 1 granted, 1 denied by you, 1 revoked by you" in shown
    assert "first request from this company" in shown  # the impostor's
    grants = owner.run("grants").stdout
    assert "Acme" in grants and f"({company.address[:6]}…{company.address[-4:]})" in grants


@pytest.mark.parametrize(("published", "shown"), [
    ("Acme Audio", "Acme Audio"),
    ("\u202eoidua emca", "oidua emca"),  # a bidi override is removed, not obeyed
    ("Acme\u200b\x1b[2J\tAudio\n", "Acme[2J Audio"),  # escapes cut, whitespace one space
    ("A" * 64, "A" * 39 + "…"),  # capped at 40 characters
    ("Pay 0x70997970C51812dc3A010C7d01b50e0d17dc79C8", None),  # reads as an address
    ("Acme (0x7099…79C8)", None),
    ("\uff10\uff58\uff17\uff10\uff19\uff19 Bank", None),  # full-width "0x7099" (NFKC)
    ("\x00\u200d ", None),  # nothing visible left
])
def test_a_published_name_is_shown_only_as_harmless_text(published: str, shown: str | None
                                                        ) -> None:
    from vault.owner.views import shown_name

    assert shown_name(published) == shown


def test_unknown_request_is_exit_10_and_nothing_changes(owner: Owner) -> None:
    before = owner.json("log")
    for command in ("approve", "deny", "revoke"):
        result = owner.run(command, "999", "--yes", code=10)
        assert result.stderr.startswith("error: there is no request 999")
        assert result.stderr.count("\n") == 1
    assert owner.json("log") == before


def test_revoking_another_owners_grant_is_exit_12(owner: Owner) -> None:
    stranger = owner.anvil.addresses[5]
    with owner.company() as company:
        theirs = company.request_access(stranger, MUSIC_AGE, DAY, 10**15, "ads")
    owner.chain.client(sender=stranger).approve(theirs.id)
    result = owner.run("revoke", str(theirs.id), "--yes", code=12)
    assert "belongs to another owner" in result.stderr and result.stderr.count("\n") == 1
    assert owner.chain.client().get_request(theirs.id).status is ledger.Status.ACTIVE


def test_withdrawing_with_nothing_owed_is_exit_13(owner: Owner) -> None:
    result = owner.run("withdraw", "--yes", code=13)
    assert "nothing is owed" in result.stderr and result.stderr.count("\n") == 1
    owner.run("claim", code=13)
    assert owner.json("earnings") == {"owed_wei": 0, "claimable_wei": 0, "grants": []}


def test_daemon_required_but_not_running_is_exit_9(owner: Owner) -> None:
    result = owner.run("requests", "--daemon", code=9)
    assert "no vault daemon answers" in result.stderr and result.stderr.count("\n") == 1


def test_unreachable_chain_is_exit_7_in_one_line(owner: Owner) -> None:
    """THREATS row 19: the RPC node is down → a clear one-line message, nothing changed."""
    down = f"http://127.0.0.1:{chains.free_port()}"
    result = owner.run("requests", env={"VAULT_RPC_URL": down}, code=7)
    assert down in result.stderr and result.stderr.count("\n") == 1


def test_deny_refunds_the_company(owner: Owner) -> None:
    with owner.company() as company:
        request = owner.request(company, price=10**15)
        denied = owner.json("deny", str(request.id), "--yes")
        assert denied["request_id"] == request.id and denied["tx_hash"]
        assert company.owed() == 10**15
    owner.run("deny", str(request.id), "--yes", code=11)


def test_terms_set_show_and_publish(owner: Owner) -> None:
    owner.run("terms", "set", "--min-price-per-day", "0.0001", "--max-duration", "60d",
              "--offer", "preferences.music", "--offer", "profile.age_range",
              "--never", "mood.current", "--note", "hello", "--matches-per-epoch", "5")
    terms = owner.json("terms", "show")
    assert terms == {"min_price_per_day_wei": 10**14, "max_duration_seconds": 60 * DAY,
                     "scopes_offered": ["preferences.music", "profile.age_range"],
                     "scopes_never": ["mood.current"], "note": "hello", "matches_per_epoch": 5}
    owner.run("terms", "set", "--matches-per-epoch", "-1", code=6)
    owner.run("terms", "set", "--offer", "nope.unknown", code=6)
    owner.run("terms", "set", "--min-price-per-day", "a lot", code=6)
    published = owner.json("terms", "publish", "--endpoint", "http://127.0.0.1:9999")
    assert published["terms_hash"].startswith("0x")
    with owner.company() as company:
        assert company.endpoint_of(owner.address) == "http://127.0.0.1:9999"


def test_rules_set_from_json_and_toml(owner: Owner, tmp_path: Path) -> None:
    as_json = tmp_path / "rules.json"
    as_json.write_text(json.dumps({"rules": [{"name": "music", "scopes": ["preferences.music"],
                                              "min_price_per_day_wei": 10**13}],
                                   "never_share": ["mood.current"]}))
    owner.run("rules", "set", str(as_json))
    shown = owner.json("rules", "show")
    assert shown["rules"][0]["name"] == "music" and shown["never_share"] == ["mood.current"]
    as_toml = tmp_path / "rules.toml"
    as_toml.write_text(
        'never_share = []\n[[rules]]\nname = "age"\nscopes = ["profile.age_range"]\n'
    )
    assert "age" in owner.run("rules", "set", str(as_toml)).stdout
    assert owner.json("rules", "show")["rules"][0]["name"] == "age"
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"name": "x", "scopes": ["nope.unknown"]}]}')
    owner.run("rules", "set", str(bad), code=6)
    assert owner.json("rules", "show")["rules"][0]["name"] == "age"


def test_log_lists_and_verifies(owner: Owner) -> None:
    owner.run("terms", "set", "--note", "x")
    entries = owner.json("log")
    assert entries and entries[-1]["kind"] == "terms"
    assert "access log" in owner.run("log", "--limit", "5").stdout
    assert owner.json("log", "verify")["ok"] is True
    assert "verifies" in owner.run("log", "verify").stdout


# --------------------------------------------------------------------------- with a daemon


def test_the_whole_consent_story_through_the_daemon(owner: Owner, serving: Any) -> None:
    """Approve (the company relays), revoke, earnings, withdraw — all via the daemon."""
    owner.run("terms", "publish", "--daemon")
    with owner.company() as company:
        request = owner.request(company)
        wait_until(lambda: owner.json("requests"))
        owner.run("approve", str(request.id), "--yes", "--daemon")
        grant = company.wait_for_grant(request, timeout=20)
        assert grant.relay_tx_hash is not None
        wait_until(lambda: owner.json("grants") and owner.json("grants")[0]["status"] == "active")
        assert company.fetch(grant).grant_id == grant.id
        revoked = owner.json("revoke", str(request.id), "--yes")
        assert revoked["company_refund_wei"] + revoked["owner_earned_wei"] == 3 * 10**16
        with pytest.raises(client.Revoked):
            company.fetch(grant)
    owner.run("revoke", str(request.id), "--yes", code=11)
    earned = owner.json("earnings")
    assert earned["owed_wei"] == revoked["owner_earned_wei"]
    if earned["owed_wei"]:
        assert owner.json("withdraw", "--yes")["withdrawn_wei"] == earned["owed_wei"]
    owner.run("withdraw", "--yes", code=13)
    kinds = [e["kind"] for e in owner.json("log")]
    assert {"approve", "revoke", "release"} <= set(kinds)
    assert owner.json("log", "verify")["ok"]


def test_through_the_daemon_a_signed_request_waits_and_the_company_relays_that_signature(
    owner: Owner, serving: Any
) -> None:
    owner.run("terms", "publish", "--daemon")
    with owner.company() as company:
        company.describe("Acme Audio", "")
        request = owner.request(company)
        wait_until(lambda: owner.json("requests"))
        first = owner.json("approve", str(request.id), "--yes", "--daemon")
        listed = owner.json("requests", "--daemon")[0]  # the owner route's RequestPublic
        assert listed["awaiting_relay"] and listed["approval_expires_at"] == first["deadline"]
        assert listed["company_name"] == "Acme Audio"
        again = owner.json("approve", str(request.id), "--daemon")
        assert again == {**first, "already_signed": True}
        grant = company.wait_for_grant(request, timeout=20)  # fetched from the vault's route
        assert grant.relay_tx_hash is not None
        relayed = owner.chain.w3.eth.get_transaction(grant.relay_tx_hash)
        assert first["signature"][2:] in relayed["input"].hex()  # the one signature
    wait_until(lambda: not owner.json("requests", "--daemon"))
    assert owner.json("grants", "--daemon")[0]["awaiting_relay"] is False


# --------------------------------------------------------------------------- subprocesses


def _subprocess(owner: Owner, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VAULT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **owner.env, **(env or {})})


def test_exit_codes_as_a_subprocess(owner: Owner) -> None:
    unknown = _subprocess(owner, "approve", "42", "--yes")
    assert unknown.returncode == 10 and unknown.stderr.count("\n") == 1
    no_daemon = _subprocess(owner, "grants", "--daemon")
    assert no_daemon.returncode == 9
    down = _subprocess(owner, "earnings",
                       env={"VAULT_RPC_URL": f"http://127.0.0.1:{chains.free_port()}"})
    assert down.returncode == 7 and "did not answer" in down.stderr
    listed = _subprocess(owner, "requests", "--json", "--status", "all")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_a_companys_purpose_is_shown_verbatim_never_as_markup(owner: Owner) -> None:
    purpose = "[link=https://evil.example]free money[/link] \x1b[2J[bold]trust me[/bold]"
    with owner.company() as company:
        owner.request(company, purpose=purpose)
    shown = owner.run("requests").stdout
    assert "[link=https://evil.example]free money[/link]" in shown
    assert "\x1b" not in shown
