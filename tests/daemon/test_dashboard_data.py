"""The dashboard's My data and Terms-and-rules pages over real HTTP (uvicorn, the embedded
chain): an upload imports through the records code and clears the daemon's DerivedCache,
a malformed, mislabelled or oversized export stores nothing and says why in one line, the
preview is `vault preview --released`, and terms and rules are edited and published."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest

from vault import audit, scopes
from vault import chain as chains
from vault.daemon.routes.dashboard import HTMX, HTMX_SHA256, UPLOAD_MAX_BYTES
from vault.records import RecordsService
from vault.store import Vault

from .conftest import Clock, Served, daemon_settings, running
from .test_dashboard import csrf_of, signed_in

IMPORT_PATH = "/dashboard/data/import"
FORMS = ["/dashboard/data/forget", "/dashboard/terms", "/dashboard/terms/publish",
         "/dashboard/rules", "/dashboard/rules/remove", "/dashboard/rules/never"]


def spotify_export(plays: int, *, artist: str = "Nina Simone") -> bytes:
    return json.dumps([
        {"endTime": f"2025-03-{1 + i % 28:02d} 10:{i % 60:02d}", "artistName": artist,
         "trackName": f"Track {i}", "msPlayed": 200_000}
        for i in range(plays)
    ]).encode()


def counts(daemon: Served) -> dict[str, int]:
    by_source: dict[str, int] = daemon.vault.stats().events_by_source
    return by_source


def alert(page: httpx.Response) -> str:
    """The page's one refusal line, as read (unescaped)."""
    [line] = re.findall(r'<p class="notice bad" role="alert"[^>]*>(.*?)</p>', page.text, re.S)
    return html.unescape(line)


def upload(browser: httpx.Client, name: str, content: bytes, **fields: str) -> httpx.Response:
    token = csrf_of(browser.get("/data"))
    return browser.post(IMPORT_PATH, data={"csrf": token, **fields},
                        files={"file": (name, content, "application/octet-stream")})


def test_my_data_shows_counts_per_source_and_what_each_scope_would_release(
    daemon: Served,
) -> None:
    with signed_in(daemon) as browser:
        page = browser.get("/data").text
    for source, count in counts(daemon).items():
        assert f'id="count-{source}">{count}</td>' in page
    released = RecordsService(daemon.vault).preview(
        ["preferences.music", "profile.age_range"], released=True, now=int(time.time()))
    music, age = released["scopes"]
    for item in music["value"]["genres"]:
        assert f">{item['genre']} ({item['weight']})" in page
    assert f">{age['value']['range']}<" in page
    assert f"{music['basis']['events']['play']} play" in page
    for entry in scopes.CATALOG:
        assert f"<code>{entry.name}</code>" in page


def test_an_upload_imports_logs_and_reaches_the_next_release_at_once(daemon: Served) -> None:
    grant_id = daemon.grant(names=["mood.current"])
    before = daemon.release(grant_id, ["mood.current"]).json()["preferences"]
    assert before["mood.current"]["status"] == "insufficient_data"
    spotify_before = counts(daemon)["spotify"]

    mood_at = int(time.time()) - 60
    with signed_in(daemon) as browser:
        done = upload(browser, "moods.csv", f"kind,occurred_at,mood\nmood,{mood_at},calm\n"
                      .encode())
        assert done.status_code == 200, done.text
        assert "Imported 1 new record" in done.text and "(csv)" in done.text
        done = upload(browser, "StreamingHistory_music_9.json", spotify_export(30))
        assert "Imported 30 new records" in done.text
        assert f'id="count-spotify">{spotify_before + 30}</td>' in done.text
        assert counts(daemon)["spotify"] == spotify_before + 30
        again = upload(browser, "StreamingHistory_music_9.json", spotify_export(30))
        assert "Imported 0 new records</strong>, 30 already in the vault" in again.text

    # Within the DerivedCache's lifetime: only its clearing lets the new mood through.
    after = daemon.release(grant_id, ["mood.current"]).json()["preferences"]
    assert after["mood.current"] == {"status": "ok", "mood": "calm"}
    logged = daemon.daemon.audit.entries(limit=100, kind=audit.IMPORT)
    assert [e.detail["sources"] for e in logged] == [["csv"], ["spotify"], ["spotify"]]
    assert all(e.outcome == audit.OK for e in logged)
    with signed_in(daemon) as browser:
        row = re.search(r'id="count-spotify">.*?</tr>', browser.get("/data").text).group(0)
        log = browser.get("/log?kind=import").text
    assert "UTC" in row  # its last import
    # The access log page says what each import did, in counts.
    assert "import: 0 new, 30 already stored (spotify)" in log
    assert "import: 30 new, 0 already stored (spotify)" in log


@pytest.mark.parametrize(("name", "content", "fields", "said"), [
    ("StreamingHistory_music_0.json", spotify_export(3)[:-20], {}, "not valid JSON"),
    ("StreamingHistory_music_0.json",
     b'[{"endTime": "2025-01-01 10:00", "artistName": 3, "trackName": "t", "msPlayed": 1}]',
     {}, "record 1: field 'artistName' must be a string"),
    ("StreamingHistory_music_0.json", spotify_export(3), {"kind": "netflix"}, "netflix"),
    ("notes.txt", b"just some words\n", {}, "notes.txt is not an export vault reads"),
    ("StreamingHistory_music_0.json", spotify_export(3), {"kind": "bogus"},
     "'bogus' is not an export kind vault reads"),
])
def test_a_malformed_or_mislabelled_export_stores_nothing_and_says_why(
    daemon: Served, name: str, content: bytes, fields: dict[str, str], said: str
) -> None:
    before = counts(daemon)
    with signed_in(daemon) as browser:
        refused = upload(browser, name, content, **fields)
    assert refused.status_code == 400
    line = alert(refused)
    assert line.startswith("Nothing was imported: ") and said in line, line
    assert "\n" not in line and "Traceback" not in refused.text and ".upload-" not in line
    assert counts(daemon) == before
    assert daemon.daemon.audit.entries(limit=10, kind=audit.IMPORT) == []
    assert not list(daemon.vault.home.glob(".upload-*"))  # the private copy is gone


def test_an_upload_over_the_limit_is_refused_on_the_page_and_past_the_guard_in_json(
    daemon: Served,
) -> None:
    before = counts(daemon)
    with signed_in(daemon) as browser:
        over = upload(browser, "big.json", b"[" + b" " * UPLOAD_MAX_BYTES + b"]")
        assert over.status_code == 413
        assert f"larger than {UPLOAD_MAX_BYTES // 2**20} MiB" in over.text
        token = csrf_of(browser.get("/data"))
        guard = browser.post(IMPORT_PATH, data={"csrf": token},
                             files={"file": ("big.json", b" " * (UPLOAD_MAX_BYTES + 2**17))})
        assert (guard.status_code, guard.json()["error"]) == (413, "too_large")
    assert counts(daemon) == before


def test_uploads_are_refused_without_session_csrf_same_origin_or_a_whole_form(
    daemon: Served,
) -> None:
    content = spotify_export(2)
    files = {"file": ("StreamingHistory_music_0.json", content)}
    before = counts(daemon)
    assert httpx.post(daemon.base + IMPORT_PATH, data={"csrf": "x"}, files=files
                      ).status_code == 401
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/data"))
        assert browser.post(IMPORT_PATH, data={}, files=files).status_code == 403
        assert browser.post(IMPORT_PATH, data={"csrf": "guessed"}, files=files
                            ).status_code == 403
        foreign = browser.post(IMPORT_PATH, data={"csrf": token}, files=files,
                               headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        # An upload is multipart: the same fields url-encoded are not a form it takes.
        assert browser.post(IMPORT_PATH, data={"csrf": token}).status_code == 403
        truncated = browser.post(
            IMPORT_PATH, content=b"--xyz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert truncated.status_code == 400 and "not a complete" in truncated.text
        empty = browser.post(IMPORT_PATH, data={"csrf": token},
                             files={"file": ("", b"", "application/octet-stream")})
        assert empty.status_code == 400 and "holds no file" in empty.text
        # Multipart is taken on the upload only.
        assert browser.post("/dashboard/terms", data={"csrf": token}, files=files
                            ).status_code == 403
    assert counts(daemon) == before


def test_forgetting_a_source_asks_first_then_deletes_logs_and_reaches_releases(
    daemon: Served,
) -> None:
    grant_id = daemon.grant(names=["shopping.price_band"])
    assert daemon.release(grant_id, ["shopping.price_band"]).json()["preferences"][
        "shopping.price_band"]["status"] == "ok"
    purchases = counts(daemon)["jsonl"]
    with signed_in(daemon) as browser:
        assert 'href="/data/forget?source=jsonl"' in browser.get("/data").text
        confirm = browser.get("/data/forget", params={"source": "jsonl"})
        assert f"Forget {purchases} records</button>" in confirm.text
        assert counts(daemon)["jsonl"] == purchases  # asking deletes nothing
        done = browser.post("/dashboard/data/forget",
                            data={"csrf": csrf_of(confirm), "source": "jsonl"})
        assert done.status_code == 200
        assert f"Forgotten: {purchases} records from <code>jsonl</code>" in done.text
        assert 'id="count-jsonl"' not in done.text
        again = browser.post("/dashboard/data/forget",
                             data={"csrf": csrf_of(confirm), "source": "jsonl"})
        assert again.status_code == 404 and alert(again).startswith("Nothing was forgotten: ")
        assert browser.get("/data/forget", params={"source": "nowhere"}).status_code == 404
        refused = browser.post("/dashboard/data/forget", data={"source": "csv"})
        assert refused.status_code == 403
    assert "jsonl" not in counts(daemon) and "csv" in counts(daemon)
    # The purchases fed the price band: within the cache's lifetime it is gone already.
    assert daemon.release(grant_id, ["shopping.price_band"]).json()["preferences"][
        "shopping.price_band"]["status"] == "insufficient_data"
    [logged] = daemon.daemon.audit.entries(limit=10, kind=audit.FORGET)
    assert logged.detail["events"] == purchases


def test_the_vendored_htmx_is_the_pinned_file() -> None:
    vendored = resources.files("vault.daemon").joinpath("static", HTMX).read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == HTMX_SHA256
    licence = resources.files("vault.daemon").joinpath("static", "htmx-LICENSE.txt")
    assert "Zero-Clause BSD" in licence.read_text()


# --- Terms and rules ---------------------------------------------------------------------


def terms_form(token: str, **changes: Any) -> dict[str, str]:
    form = {"csrf": token, "min_price_per_day": "0.0002", "max_duration_days": "14",
            "matches_per_epoch": "5", "note": "Ask nicely.",
            "offer:preferences.music": "on", "offer:profile.age_range": "on",
            "never:mood.current": "on"}
    form.update(changes)
    return form


def test_editing_the_terms_saves_logs_and_shows_them(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        done = browser.post("/dashboard/terms", data=terms_form(token))
        assert (done.status_code, done.headers["location"]) == (303, "/terms?saved=terms")
        page = browser.get("/terms?saved=terms").text
    terms = daemon.daemon.owner.terms()
    assert terms.min_price_per_day_wei == 2 * 10**14 and terms.max_duration_seconds == 14 * 86_400
    assert terms.scopes_offered == ["profile.age_range", "preferences.music"]
    assert (terms.scopes_never, terms.matches_per_epoch, terms.note) == (
        ["mood.current"], 5, "Ask nicely.")
    assert "0.0002 ETH per day" in page and "14 days" in page and "Your terms are saved" in page
    assert daemon.owner_get("/v1/terms").json()["terms"]["min_price_per_day_wei"] == 2 * 10**14
    assert [e.kind for e in daemon.daemon.audit.entries(limit=5, kind="terms")] == ["terms"]


def test_a_long_accented_note_fits_the_form(daemon: Served) -> None:
    note = "é" * 2000  # 12,000 bytes once url-encoded
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        done = browser.post("/dashboard/terms", data=terms_form(token, note=note))
    assert done.status_code == 303
    assert daemon.daemon.owner.terms().note == note


@pytest.mark.parametrize(("changes", "said"), [
    ({"min_price_per_day": "cheap"}, "The floor price 'cheap' is not an amount in ETH"),
    ({"min_price_per_day": "0.0000000000000000001"}, "finer than 1 wei"),
    ({"max_duration_days": "0"}, "The longest grant must be longer than zero"),
    ({"matches_per_epoch": "-1"}, "Matches per epoch '-1' is not a whole number"),
    ({"note": "x" * 2001}, "invalid terms: note"),
])
def test_invalid_terms_change_nothing_and_say_why(
    daemon: Served, changes: dict[str, str], said: str
) -> None:
    before = daemon.daemon.owner.terms()
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        refused = browser.post("/dashboard/terms", data=terms_form(token, **changes))
    assert refused.status_code == 400
    assert alert(refused).startswith("Nothing was changed: ") and said in alert(refused)
    assert daemon.daemon.owner.terms() == before


def test_rules_are_added_removed_and_never_shared_scopes_set(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        added = browser.post("/dashboard/rules", data={
            "csrf": token, "name": "music for a fee", "min_price_per_day": "0.001",
            "min_duration_days": "1", "max_duration_days": "30", "max_releases": "10",
            "scope:preferences.music": "on", "companies": ""})
        assert added.status_code == 303
        never = browser.post("/dashboard/rules/never",
                             data={"csrf": token, "rule-never:mood.current": "on"})
        assert never.status_code == 303
        page = browser.get("/terms").text
        assert "music for a fee" in page and "<dt>Releases</dt><dd>at most 10</dd>" in page
        [rule] = daemon.daemon.owner.rules().rules
        assert (rule.scopes, rule.min_price_per_day_wei, rule.companies_allow) == (
            ["preferences.music"], 10**15, None)
        assert daemon.daemon.owner.rules().never_share == ["mood.current"]

        # A request the rule covers: the Requests page says the rules would approve it.
        request_id = daemon.request(names=["preferences.music"], price=10**17, max_releases=5)
        daemon.sync()
        verdict = re.search(r"auto-approval rules</strong>([^<]*)", browser.get("/requests").text)
        assert verdict and "would approve it (rule “music for a fee”)" in verdict.group(1), verdict
        assert request_id >= 0

        stale = browser.post("/dashboard/rules/remove",
                             data={"csrf": token, "index": "0", "name": "another rule"})
        assert stale.status_code == 404 and "no longer there" in alert(stale)
        removed = browser.post("/dashboard/rules/remove",
                               data={"csrf": token, "index": "0", "name": "music for a fee"})
        assert removed.status_code == 303
    assert daemon.daemon.owner.rules().rules == []
    assert daemon.daemon.owner.rules().never_share == ["mood.current"]


def test_a_rule_without_scopes_is_refused(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        refused = browser.post("/dashboard/rules", data={
            "csrf": token, "name": "nothing", "min_price_per_day": "0",
            "min_duration_days": "1", "max_duration_days": "30"})
    assert refused.status_code == 400 and "needs at least one scope" in alert(refused)
    assert daemon.daemon.owner.rules().rules == []


def test_publishing_puts_the_terms_hash_on_the_ledger(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        assert browser.post("/dashboard/terms", data=terms_form(token)).status_code == 303
        done = browser.post("/dashboard/terms/publish",
                            data={"csrf": token, "endpoint": daemon.base})
        assert (done.status_code, done.headers["location"]) == (303, "/terms?saved=published")
        page = browser.get("/terms").text
    digest = daemon.owner_get("/v1/terms").json()["terms_hash"]
    [published] = daemon.daemon.audit.entries(limit=5, kind="publish")
    assert published.detail == {"endpoint": daemon.base, "terms_hash": digest}
    assert ">published</span>" in page
    daemon.sync()  # the ledger's event, as the daemon's index reads it
    on_chain = daemon.daemon.owner.state.index.endpoint_of(daemon.vault.owner_address)
    assert on_chain is not None
    assert (on_chain.url, "0x" + on_chain.terms_hash.hex()) == (daemon.base, digest)


@pytest.fixture
def unfunded(anvil_chain: chains.RpcChain, owner_vault: Vault, clock: Clock
             ) -> Iterator[Served]:
    """A daemon on anvil whose owner holds no ETH (anvil answers "insufficient funds" as a
    real node does)."""
    with running(daemon_settings(owner_vault), owner_vault, anvil_chain, clock) as served:
        yield served


@pytest.mark.chain
def test_publishing_without_eth_for_gas_says_so_in_one_line(unfunded: Served) -> None:
    with signed_in(unfunded) as browser:
        token = csrf_of(browser.get("/terms"))
        refused = browser.post("/dashboard/terms/publish",
                               data={"csrf": token, "endpoint": unfunded.base})
    assert refused.status_code == 409, refused.text
    line = alert(refused)
    address = unfunded.vault.owner_address
    assert line == (f"Nothing was changed: no ETH for gas: {address} holds 0 ETH, too little "
                    f"to pay for this transaction; send ETH to {address}, then try again.")
    assert unfunded.daemon.audit.entries(limit=5, kind="publish") == []


@pytest.mark.parametrize("path", FORMS)
def test_every_terms_and_forget_form_is_refused_without_session_csrf_or_same_origin(
    daemon: Served, path: str
) -> None:
    before = (daemon.daemon.owner.terms(), daemon.daemon.owner.rules(), counts(daemon))
    assert httpx.post(daemon.base + path, data={"csrf": "x"}).status_code == 401
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/terms"))
        assert browser.post(path, data=terms_form("")).status_code == 403
        foreign = browser.post(path, data=terms_form(token),
                               headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        cross = browser.post(path, data=terms_form(token),
                             headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
    assert (daemon.daemon.owner.terms(), daemon.daemon.owner.rules(), counts(daemon)) == before
