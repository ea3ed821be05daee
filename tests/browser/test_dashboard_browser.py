"""The owner dashboard in a real browser: Debian's Chromium driven by Playwright, against
`vault serve` (a subprocess) on a real anvil chain, signed in through `vault open
--print-url` — the CLI proves the daemon's identity before it asks for the link.

Screenshots of every page, 1,440 px and 390 px wide, are saved under
``$VAULT_SCREENSHOTS`` (default: this test's tmp dir) for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from vault import chain as chains
from vault import client, crypto, ledger
from vault.daemon import runtime
from vault.importers import importer_for, sample_exports
from vault.store import Vault

CHROMIUM = Path("/usr/bin/chromium")
PASS = "correct horse battery staple"
VAULT = str(Path(sys.executable).with_name("vault"))
MUSIC_AGE = ["preferences.music", "profile.age_range"]
PURPOSE = 'Playlist suggestions <b>for</b> "you" & friends'
WIDE, NARROW = (1440, 900), (390, 844)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.chain,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="no /usr/bin/chromium: `make test` installs it with apt-get; "
                       "without it the browser tests cannot run"),
]


class Owner:
    def __init__(self, home: Path, address: str, env: dict[str, str]) -> None:
        self.home, self.address, self.env = home, address, env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        env.pop("VAULT_PASSPHRASE", None)  # only the daemon can answer
        return subprocess.run([VAULT, *args], capture_output=True, text=True, timeout=120,
                              env=env, stdin=subprocess.DEVNULL)

    def login_link(self) -> str:
        opened = self.cli("open", "--print-url")
        assert opened.returncode == 0, opened.stderr
        link = opened.stdout.strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/login\?code=[\w-]+", link), link
        return link


@pytest.fixture
def owner(anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path) -> Owner:
    home = tmp_path / "owner"
    with Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM) as vault:
        for kind, path in sample_exports():
            with path.open("rb") as stream:
                vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
        address = vault.owner_address
    anvil.w3.eth.send_transaction({"from": anvil.addresses[0], "to": address, "value": 10**18})
    env = {
        "VAULT_HOME": str(home), "VAULT_CHAIN": "rpc", "VAULT_RPC_URL": anvil.rpc_url,
        "VAULT_CHAIN_ID": str(anvil.chain_id), "VAULT_LEDGER": anvil_chain.ledger_address,
        "VAULT_SYNC_INTERVAL_SECONDS": "0.1",
    }
    return Owner(home, address, env)


@contextmanager
def serving(owner: Owner, tmp_path: Path) -> Iterator[str]:
    """`vault serve` on a free port; yields its address once its runtime file names it."""
    port = chains.free_port()
    env = {**os.environ, **owner.env, "VAULT_PASSPHRASE": PASS}
    with (tmp_path / "serve.txt").open("wb") as stderr:
        process = subprocess.Popen([VAULT, "serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while (published := runtime.read(owner.home)) is None or published.pid != process.pid:
            assert process.poll() is None, (tmp_path / "serve.txt").read_text()
            assert time.monotonic() < deadline, "vault serve did not publish its runtime file"
            time.sleep(0.1)
        yield published.url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VAULT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_owner_decides_watches_and_sees_what_a_company_learned(
    owner: Owner, anvil: Any, anvil_chain: chains.RpcChain, tmp_path: Path, shots: Path
) -> None:
    with serving(owner, tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        company = client.Company(anvil.accounts[1], anvil_chain, anvil_chain.ledger_address,
                                 poll_interval=0.05)
        request = company.request_access(owner.address, MUSIC_AGE, 30 * 86_400, 3 * 10**16,
                                         PURPOSE, endpoint=url)
        wait_until(lambda: f'"id": {request.id}' in owner.cli("requests", "--json").stdout,
                   "the daemon did not index the request")

        context = browser.new_context(viewport={"width": WIDE[0], "height": WIDE[1]})
        page = context.new_page()
        link = owner.login_link()
        opened = page.goto(link)
        assert opened is not None and page.url == url + "/"
        csp = opened.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        [cookie] = context.cookies()
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        sync_api.expect(page.get_by_role("heading", name="Overview")).to_be_visible()

        # A reused link is refused, even in a browser that is signed in.
        reused = context.new_page()
        answer = reused.goto(link)
        assert answer is not None and answer.status == 403
        sync_api.expect(reused.get_by_text("already used or has expired")).to_be_visible()
        reused.close()

        page.get_by_role("link", name=re.compile("^Requests")).click()
        sync_api.expect(page.get_by_text(PURPOSE, exact=True).first).to_be_visible()
        page.screenshot(path=shots / "requests-wide.png", full_page=True)
        page.get_by_role("button", name=re.compile(r"^Approve")).click()
        # htmx opens the confirmation inside the request's card, and focus moves to it.
        sync_api.expect(page.locator(".confirm h1")).to_be_focused()
        assert page.url == url + "/requests"
        page.get_by_label(re.compile("send the approval to the ledger myself")).check()
        page.screenshot(path=shots / "confirm-approve-wide.png", full_page=True)
        page.get_by_role("button", name="Confirm").click()
        sync_api.expect(page.get_by_role("status")).to_contain_text(
            f"You approved request #{request.id}")
        assert anvil_chain.client().get_request(request.id).status is ledger.Status.ACTIVE

        grant = company.wait_for_grant(request, timeout=30)
        released = company.fetch(grant)
        page.goto(url + f"/companies/{company.address}")
        sync_api.expect(page.get_by_text("verified: matches what is shown")).to_be_visible()
        shown = page.locator(".release").first.inner_text()
        for value in released.preferences.values():
            for field, items in value.items():
                if field == "status":
                    continue
                for item in items if isinstance(items, list) else [items]:
                    label = (next(v for v in item.values() if isinstance(v, str))
                             if isinstance(item, dict) else str(item))
                    assert label in shown, (label, shown)
        assert released.receipt.content_hash in page.content()
        page.screenshot(path=shots / "company-wide.png", full_page=True)

        # A POST without the CSRF token, and one from another origin, change nothing.
        bare = page.request.post(url + f"/dashboard/grants/{request.id}/revoke", form={})
        assert bare.status == 403
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
        assert csrf
        foreign = page.request.post(url + f"/dashboard/grants/{request.id}/revoke",
                                    form={"csrf": csrf},
                                    headers={"Origin": "http://evil.example"})
        assert foreign.status == 403
        assert anvil_chain.client().get_request(request.id).status is ledger.Status.ACTIVE

        # A day passes on the chain; the pages measure earnings by its clock.
        anvil.w3.provider.make_request("evm_increaseTime", [86_400])
        anvil.w3.provider.make_request("evm_mine", [])
        head = anvil.w3.eth.block_number
        wait_until(lambda: httpx.get(url + "/v1/health").json()["synced_block"] >= head,
                   "the daemon did not sync the new head")
        for path, name in (("/", "overview"), ("/grants", "grants"), ("/log", "log"),
                           ("/companies", "companies")):
            page.goto(url + path)
            page.screenshot(path=shots / f"{name}-wide.png", full_page=True)
        page.goto(url + "/")
        sync_api.expect(page.locator("svg.chart polygon")).to_have_count(1)

        page.goto(url + "/grants")
        page.get_by_role("button", name=f"Revoke grant #{request.id}").click()
        sync_api.expect(page.locator("#keep")).to_contain_text("ETH")
        page.screenshot(path=shots / "confirm-revoke-wide.png", full_page=True)
        # Revoked from a second tab while this confirmation is open: this one's form is
        # stale, and the refusal replaces the page's main part.
        other = context.new_page()
        other.goto(url + f"/grants/{request.id}/revoke")
        other.get_by_role("button", name="Revoke now").click()
        sync_api.expect(other.get_by_role("status")).to_contain_text(
            f"You revoked grant #{request.id}")
        other.close()
        assert anvil_chain.client().get_request(request.id).status is ledger.Status.REVOKED
        page.get_by_role("button", name="Revoke now").click()
        sync_api.expect(page.get_by_role("heading", name="Nothing was changed")).to_be_visible()
        sync_api.expect(page.get_by_role("alert")).to_contain_text("not an active grant")

        owner_edits_data_and_terms(page, url, tmp_path, shots)
        refuses_the_new_forms(page, url, browser)

        narrow = browser.new_context(viewport={"width": NARROW[0], "height": NARROW[1]})
        small = narrow.new_page()
        small.goto(owner.login_link())
        for path, name in (("/", "overview"), ("/requests", "requests"), ("/grants", "grants"),
                           (f"/companies/{company.address}", "company"), ("/log", "log"),
                           ("/companies", "companies"), ("/data", "data"),
                           ("/terms", "terms")):
            small.goto(url + path)
            width = small.evaluate("document.documentElement.scrollWidth")
            assert width <= NARROW[0], f"{path} scrolls sideways at {NARROW[0]} px ({width})"
            small.screenshot(path=shots / f"{name}-narrow.png", full_page=True)

        small.goto(url + f"/grants/{request.id}/revoke")
        small.screenshot(path=shots / "confirm-revoke-ended-narrow.png", full_page=True)

        signed_out = browser.new_context().new_page()
        for path in ("/grants", "/data", "/terms"):
            refused = signed_out.goto(url + path)
            assert refused is not None and refused.status == 401
        assert httpx.get(url + "/").status_code == 401
        company.close()
        browser.close()


def spotify_export(folder: Path, plays: int) -> Path:
    path = folder / "StreamingHistory_music_7.json"
    path.write_text(json.dumps([
        {"endTime": f"2025-04-{1 + i % 28:02d} 09:{i % 60:02d}", "artistName": "Nina Simone",
         "trackName": f"Song {i}", "msPlayed": 180_000} for i in range(plays)
    ]))
    return path


def spotify_count(page: Any) -> int:
    return int(page.locator("#count-spotify").inner_text())


def owner_edits_data_and_terms(page: Any, url: str, tmp_path: Path, shots: Path) -> None:
    """My data: an upload (through htmx: the page is not left) changes the counts; a
    mislabelled one is refused in one line; Terms and rules: an edit is shown."""
    page.goto(url + "/data")
    sync_api.expect(page.get_by_role("heading", name="What each scope would release")
                    ).to_be_visible()
    page.screenshot(path=shots / "data-wide.png", full_page=True)
    before = spotify_count(page)
    export = spotify_export(tmp_path, 25)

    page.get_by_label("Kind").select_option("netflix")
    page.get_by_label("Export file").set_input_files(str(export))
    page.get_by_role("button", name="Import").click()
    sync_api.expect(page.get_by_role("alert")).to_contain_text("Nothing was imported:")
    assert spotify_count(page) == before and page.url == url + "/data"

    # What the progress bar showed while the file went up (read after dashboard.js set it).
    page.evaluate("""window.progressShown = [];
        document.addEventListener("htmx:xhr:progress", () => {
            const bar = document.querySelector("progress.upload-progress");
            window.progressShown.push([bar.hidden, bar.value, bar.max]);
        });""")
    page.get_by_label("Export file").set_input_files(str(export))
    page.get_by_role("button", name="Import").click()
    sync_api.expect(page.get_by_role("status").filter(has_text="Imported")).to_contain_text(
        "Imported 25 new records")
    shown = page.evaluate("window.progressShown")
    assert shown and all(not hidden for hidden, _, _ in shown), shown
    assert any(value == total > export.stat().st_size for _, value, total in shown), shown
    assert spotify_count(page) == before + 25
    assert page.url == url + "/data"  # htmx swapped the page's main; nothing reloaded
    page.screenshot(path=shots / "data-imported-wide.png", full_page=True)

    # Without JavaScript the same form is a plain multipart post.
    plain = page.context.browser.new_context(java_script_enabled=False)
    plain.add_cookies(page.context.cookies())
    bare = plain.new_page()
    bare.goto(url + "/data")
    bare.get_by_label("Export file").set_input_files(str(spotify_export(tmp_path, 30)))
    bare.get_by_role("button", name="Import").click()
    sync_api.expect(bare.get_by_role("status").filter(has_text="Imported")).to_contain_text(
        "Imported 5 new records")  # the first 25 plays are already in the vault
    assert bare.url == url + "/dashboard/data/import"
    assert spotify_count(bare) == before + 30
    plain.close()

    page.goto(url + "/data")
    moods = int(page.locator("#count-csv").inner_text())
    page.get_by_role("link", name="Forget csv…").click()
    page.screenshot(path=shots / "confirm-forget-wide.png", full_page=True)
    page.get_by_role("button", name=f"Forget {moods} records").click()
    sync_api.expect(page.get_by_role("status").filter(has_text="Forgotten")).to_contain_text(
        f"Forgotten: {moods} records from csv")
    sync_api.expect(page.locator("#count-csv")).to_have_count(0)

    page.goto(url + "/terms")
    page.get_by_text("Edit your terms").click()
    page.get_by_label("Floor price per day (ETH)").fill("0.0005")
    page.get_by_label("Longest grant (days)").fill("14")
    page.get_by_role("button", name="Save terms").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("Your terms are saved")
    terms = page.locator("#current-terms")
    sync_api.expect(terms).to_contain_text("0.0005 ETH per day")
    sync_api.expect(terms).to_contain_text("14 days")
    page.get_by_role("button", name="Publish terms").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("Published")
    sync_api.expect(terms).to_contain_text("published")

    page.get_by_text("Add a rule").click()
    page.get_by_label("Name").fill("music for a fee")
    page.get_by_role("group", name="Scopes it approves").get_by_label("preferences.music").check()
    page.get_by_role("button", name="Add rule").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("rules are saved")
    sync_api.expect(page.get_by_role("heading", name="music for a fee")).to_be_visible()
    page.get_by_text("Edit your terms").click()
    page.get_by_text("Add a rule").click()
    page.screenshot(path=shots / "terms-wide.png", full_page=True)


def refuses_the_new_forms(page: Any, url: str, browser: Any) -> None:
    """Every form of My data and Terms and rules: refused without the CSRF token, from
    another origin, and without a session."""
    page.goto(url + "/terms")
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert csrf
    upload = {"name": "x.json", "mimeType": "application/json", "buffer": b"[]"}
    outsider = browser.new_context().new_page()

    def post(client: Any, path: str, form: dict[str, str], **kw: Any) -> int:
        if path.endswith("/import"):
            return int(client.post(url + path, multipart={**form, "file": upload}, **kw).status)
        return int(client.post(url + path, form=form, **kw).status)

    for path in ("/dashboard/terms", "/dashboard/terms/publish", "/dashboard/rules",
                 "/dashboard/rules/remove", "/dashboard/rules/never", "/dashboard/data/import"):
        assert post(page.request, path, {}) == 403, path
        assert post(page.request, path, {"csrf": csrf},
                    headers={"Origin": "http://evil.example"}) == 403, path
        assert post(outsider.request, path, {"csrf": csrf}) == 401, path
    outsider.context.close()
