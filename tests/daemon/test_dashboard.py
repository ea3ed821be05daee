"""The owner dashboard over real HTTP (uvicorn, the embedded chain): signing in once, the
session cookie, CSRF, the CSP, the guard, approve / deny / revoke through forms, and the
companies page showing exactly what a company received."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from vault import audit, ledger, scopes
from vault.daemon.disclosures import Recomputer
from vault.daemon.routes.dashboard import HTMX
from vault.daemon.sessions import COOKIE_NAME

from .conftest import MUSIC, Served

PAGES = ["/", "/requests", "/grants", "/companies", "/log", "/requests/1/approve",
         "/requests/1/deny", "/grants/1/revoke", "/data", "/data/forget?source=jsonl",
         "/terms"]
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def login_link(served: Served) -> str:
    answer = served.owner_post("/v1/owner/dashboard/login")
    assert answer.status_code == 200, answer.text
    path = answer.json()["path"]
    assert path.startswith("/login?code=")
    return served.base + path


@contextmanager
def signed_in(served: Served) -> Iterator[httpx.Client]:
    """A client holding a dashboard session, as a browser that opened `vault open`'s link."""
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        answer = client.get(login_link(served))
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_login_route_needs_the_owner_token(daemon: Served) -> None:
    refused = daemon.post("/v1/owner/dashboard/login")
    assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")


def test_a_login_link_works_once_and_sets_a_strict_http_only_cookie(daemon: Served) -> None:
    link = login_link(daemon)
    first = httpx.get(link, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    session = first.cookies[COOKIE_NAME]
    assert httpx.get(daemon.base + "/", cookies={COOKIE_NAME: session}).status_code == 200

    again = httpx.get(link, follow_redirects=False)
    assert again.status_code == 403 and "set-cookie" not in again.headers
    assert "already used or has expired" in again.text
    assert httpx.get(daemon.base + "/login?code=made-up").status_code == 403


def test_a_login_link_expires(daemon: Served) -> None:
    link = login_link(daemon)
    daemon.clock.offset += 121
    assert httpx.get(link, follow_redirects=False).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_session(daemon: Served, path: str) -> None:
    for cookies in ({}, {COOKIE_NAME: "forged"}):
        page = httpx.get(daemon.base + path, cookies=cookies, follow_redirects=False)
        assert page.status_code == 401
        assert "vault open" in page.text and 'name="csrf"' not in page.text


def test_signing_out_ends_the_session(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get("/"))
        out = browser.post("/dashboard/logout", data={"csrf": token})
        assert out.status_code == 303
        assert browser.get("/").status_code == 401


def test_every_dashboard_response_carries_the_csp_and_no_store(daemon: Served) -> None:
    with signed_in(daemon) as browser:
        for path in ["/", "/requests", "/grants", "/companies", "/log", "/data", "/terms",
                     "/static/dashboard.css", "/static/dashboard.js", f"/static/{HTMX}",
                     "/login"]:
            response = browser.get(path)
            directives = dict(
                d.strip().split(" ", 1) for d in
                response.headers["content-security-policy"].split(";"))
            assert directives["default-src"] == "'none'"
            # Scripts and their requests from this origin only: nothing inline, no eval.
            assert directives["script-src"] == "'self'" == directives["connect-src"]
            assert directives["style-src"] == "'self'"
            assert directives["frame-ancestors"] == "'none'"
            assert directives["form-action"] == "'self'"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["referrer-policy"] == "same-origin"
            assert response.headers["x-content-type-options"] == "nosniff"
        for path in ("/", "/data", "/terms"):
            page = browser.get(path).text
            # No inline style or handler (htmx's hx-on would need eval, which is off).
            assert not re.search(r"<[^>]*\s(style|on\w+|hx-on[\w:-]*)=", page)
            scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
            assert [attrs for attrs, body in scripts if body.strip()] == []
            assert sorted(re.search(r'src="([^"]+)"', a).group(1) for a, _ in scripts) == [
                "/static/dashboard.js", f"/static/{HTMX}"]
        assert browser.get("/static/../app.py").status_code == 404


def test_forms_are_refused_without_csrf_from_another_origin_or_as_json(daemon: Served) -> None:
    request_id = daemon.request()
    daemon.sync()
    action = f"/dashboard/requests/{request_id}/approve"
    with signed_in(daemon) as browser:
        token = csrf_of(browser.get(f"/requests/{request_id}/approve"))
        for data, headers in (
            ({}, {}),
            ({"csrf": "guessed"}, {}),
            ({"csrf": token}, {"Origin": "http://evil.example"}),
            ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
        ):
            refused = browser.post(action, data=data, headers=headers)
            assert refused.status_code == 403, refused.text
        as_json = browser.post(action, json={"csrf": token})
        assert as_json.status_code == 403
        # Without the cookie (a cross-site form: SameSite=Strict keeps it home).
        assert httpx.post(daemon.base + action, data={"csrf": token}).status_code == 401
    assert daemon.owner_get(f"/v1/owner/requests/{request_id}").json()["status"] == "pending"
    assert daemon.daemon.owner.state.approvals == {}


def test_the_guard_lets_forms_reach_dashboard_actions_only(daemon: Served) -> None:
    """Company and owner routes stay JSON-only (THREATS row 37)."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart = {"Content-Type": "multipart/form-data; boundary=x"}
    for path in ("/v1/release", "/v1/identity", "/v1/owner/requests/1/approve",
                 "/v1/owner/records/import"):
        for headers in (form, multipart):
            refused = daemon.post(path, content=b"a=b", headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (
                415, "unsupported_media_type")
    refused = daemon.post("/dashboard/logout", content=b"a=b",
                          headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert daemon.post("/dashboard/logout", content=b"a=b", headers=form).status_code == 401
    foreign = httpx.get(daemon.base + "/", headers={"Host": "evil.example"})
    assert foreign.status_code == 403


def test_a_pending_request_shows_its_escaped_purpose_statement_and_the_rules_verdict(
    daemon: Served,
) -> None:
    request_id = daemon.request(purpose=HOSTILE)
    daemon.sync()
    with signed_in(daemon) as browser:
        page = browser.get("/requests").text
    assert HOSTILE not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(" in page
    statement = daemon.owner_get(f"/v1/owner/requests/{request_id}").json()["consent_statement"]
    # The CLI's own statement (its purpose part is JSON-quoted, then escaped here).
    assert statement.split(" Stated purpose")[0] in page
    assert f"Approve request #{request_id}" in page
    assert "would not approve it" in page  # no rules yet


def test_a_signed_request_waits_for_its_relay_and_a_company_shows_its_published_name(
    daemon: Served,
) -> None:
    company = daemon.chain.client(sender=daemon.chain.accounts[1])
    daemon.on_chain(lambda: company.describe_company("<b>Acme</b> Audio", "https://acme.example"))
    request_id = daemon.request()
    daemon.sync()
    signed = daemon.owner_post(f"/v1/owner/requests/{request_id}/approve", {"submit": False})
    assert signed.status_code == 200, signed.text
    with signed_in(daemon) as browser:
        page = browser.get("/requests").text
    card = page.split(f'id="request-{request_id}"')[1].split("</article>")[0]
    assert "Signed — waiting for the company to relay your approval" in card
    assert f"Approve request #{request_id}" not in card  # approving again signs nothing new
    assert f"Deny request #{request_id}" in card  # the owner's no still wins
    # The company's own words, escaped, never without its address.
    assert "&lt;b&gt;Acme&lt;/b&gt; Audio</strong> <code class=\"address\">" in card
    assert daemon.chain.accounts[1] in card
    assert "first request from this company" in card
    with signed_in(daemon) as browser:
        about = browser.get(f"/companies/{daemon.chain.accounts[1]}").text
    assert "&lt;b&gt;Acme&lt;/b&gt; Audio</strong>" in about.split("</h1>")[0]


def test_approve_then_revoke_through_the_forms(daemon: Served) -> None:
    request_id = daemon.request(purpose="playlist suggestions")
    daemon.sync()
    with signed_in(daemon) as browser:
        confirm = browser.get(f"/requests/{request_id}/approve")
        assert ">Confirm</button>" in confirm.text and "playlist suggestions" in confirm.text
        done = browser.post(f"/dashboard/requests/{request_id}/approve",
                            data={"csrf": csrf_of(confirm), "submit": "on"})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/requests?approved={request_id}"
        # Sent by the owner, not yet synced: not "waiting for the company to relay".
        shown = daemon.owner_get(f"/v1/owner/requests/{request_id}").json()
        assert (shown["status"], shown["approval_sent"], shown["awaiting_relay"]) == (
            "pending", True, False)
        assert "You sent your approval to the ledger" in browser.get("/requests").text
        client = daemon.chain.client()
        assert daemon.on_chain(lambda: client.get_request(request_id).status) \
            is ledger.Status.ACTIVE
        daemon.sync()
        grants = browser.get("/grants").text
        assert f"Revoke grant #{request_id}" in grants and "0 used of no limit" in grants
        assert daemon.release(request_id).status_code == 200

        daemon.clock.offset += 3600
        confirm = browser.get(f"/grants/{request_id}/revoke")
        assert "You keep" in confirm.text
        done = browser.post(f"/dashboard/grants/{request_id}/revoke",
                            data={"csrf": csrf_of(confirm)})
        assert done.status_code == 303, done.text
        assert daemon.on_chain(lambda: client.get_request(request_id).status) \
            is ledger.Status.REVOKED
        again = browser.post(f"/dashboard/grants/{request_id}/revoke",
                             data={"csrf": csrf_of(confirm)})
        assert again.status_code == 409 and "not an active grant" in again.text
    kinds = [e.kind for e in daemon.daemon.audit.entries(limit=50)]
    assert {"approve", "revoke", audit.CONSENT_RECEIPT} <= set(kinds)


def test_deny_through_the_forms(daemon: Served) -> None:
    request_id = daemon.request()
    daemon.sync()
    with signed_in(daemon) as browser:
        confirm = browser.get(f"/requests/{request_id}/deny")
        done = browser.post(f"/dashboard/requests/{request_id}/deny",
                            data={"csrf": csrf_of(confirm)})
        assert done.status_code == 303
    assert request_id in daemon.daemon.owner.state.denied_locally


def test_the_company_page_shows_exactly_the_values_it_received(daemon: Served) -> None:
    names = ["preferences.music", "profile.age_range"]
    grant_id = daemon.grant(names=names)
    released = daemon.release(grant_id, names)
    assert released.status_code == 200
    sent: dict[str, Any] = released.json()["preferences"]
    company = released.json()["company"]

    entries = daemon.daemon.audit.for_grant(grant_id, kind=audit.RELEASE)
    recomputer = Recomputer(daemon.vault, noise_secret=daemon.vault.secret("noise"))
    [disclosure] = recomputer.disclosures(entries)
    assert disclosure.verified
    assert {s.name for s in disclosure.sent} == set(names)

    with signed_in(daemon) as browser:
        page = browser.get(f"/companies/{company}")
    assert page.status_code == 200
    assert "verified: matches what is shown" in page.text
    assert released.json()["receipt"]["content_hash"] in page.text
    for name, value in sent.items():
        assert f"<code>{name}</code>" in page.text
        for field, entries_sent in value.items():
            if field == "status":
                continue
            assert f"<dt>{field}</dt>" in page.text
            for item in entries_sent if isinstance(entries_sent, list) else [entries_sent]:
                label = next((v for v in item.values() if isinstance(v, str)), None) \
                    if isinstance(item, dict) else str(item)
                # As the page writes it: HTML-escaped (a noisy stand-in can be "r&b").
                assert label is not None and html.escape(label) in page.text
    assert "consent" in page.text  # the consent receipt


def test_a_changed_answer_is_not_shown_as_sent(daemon: Served) -> None:
    grant_id = daemon.grant(names=MUSIC)
    assert daemon.release(grant_id, MUSIC).status_code == 200
    [entry] = daemon.daemon.audit.for_grant(grant_id, kind=audit.RELEASE)

    class Changed:
        def derived(self, names: Any) -> dict[str, dict[str, Any]]:
            values = daemon.vault.derived(names)
            return {n: {**v, "imported_since": True} for n, v in values.items()}

    [disclosure] = Recomputer(Changed(), noise_secret=daemon.vault.secret("noise")
                              ).disclosures([entry])
    assert not disclosure.verified and disclosure.sent == ()


def test_the_log_page_pages_filters_and_verifies(daemon: Served) -> None:
    grant_id = daemon.grant(names=MUSIC)
    for _ in range(60):
        assert daemon.release(grant_id, MUSIC).status_code == 200
    with signed_in(daemon) as browser:
        first = browser.get("/log").text
        assert "Verified: all" in first and "Page 1 of 2" in first
        releases = browser.get("/log", params={"kind": "release", "page": 2}).text
        assert "Page 2 of 2" in releases
        approvals = browser.get("/log", params={"kind": "approve"}).text
        assert "Page 1 of 1" in approvals and ">approve</td>" in approvals
        other = browser.get("/log", params={"grant": "999"}).text
        assert "No entry matches." in other
        assert browser.get("/log", params={"page": 0}).status_code == 400


def test_the_overview_shows_earnings_chart_and_privacy(daemon: Served) -> None:
    grant_id = daemon.grant(names=MUSIC, price=10**16, duration=10 * 86_400)
    assert daemon.release(grant_id, MUSIC).status_code == 200
    daemon.clock.offset += 86_400
    with signed_in(daemon) as browser:
        page = browser.get("/").text
    assert '<polygon class="area series-0"' in page
    assert f"Grant #{grant_id}" in page
    assert "0.001 ETH" in page  # streaming per day: 0.01 ETH over 10 days
    assert scopes.scope("preferences.music").name in page
