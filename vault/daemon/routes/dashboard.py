"""The owner dashboard: server-rendered pages at ``/`` for the owner only (docs/dashboard.md).

Signing in: ``vault open`` proves the daemon's identity, then asks the owner route
``POST /v1/owner/dashboard/login`` (bearer token) for a one-time code and opens
``/login?code=…``; the code becomes an ``HttpOnly; SameSite=Strict`` session cookie
(:mod:`vault.daemon.sessions`). Pages need the session; every action is a form POST under
``/dashboard/`` — the only paths where the guard lets a form body through — carrying the
session's CSRF token, from this origin (``Origin`` / ``Sec-Fetch-Site`` checked when sent).
Every dashboard response carries a Content-Security-Policy with no inline script or style,
and is never cached, framed or sent on as a referrer. The only scripts are the vendored
htmx and ``static/dashboard.js``; every page and form works without them (htmx turns the
forms into partial updates). The one multipart form is My data's upload
(:mod:`vault.daemon.uploads`), imported by the same :class:`vault.records.RecordsService`
as `vault import`. This module holds the sessions, the rendering and the overview, requests,
grants, companies and log pages; My data and Terms and rules are
:mod:`vault.daemon.routes.dashboard_data` and :mod:`vault.daemon.routes.dashboard_terms`.

Everything a company wrote (its purpose, its endpoint) reaches the page only through
Jinja2's autoescaping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from vault import audit, errors
from vault.daemon import earnings_chart, uploads
from vault.daemon.deps import DaemonDep, OwnerDep
from vault.daemon.disclosures import Recomputer
from vault.daemon.guard import FORM_MEDIA_TYPE, FORM_PREFIX, UPLOAD_MEDIA_TYPE, require_token
from vault.daemon.sessions import COOKIE_NAME, SESSION_SECONDS, Session, Sessions
from vault.eth import units
from vault.grant import Grant
from vault.owner import OwnerService
from vault.owner.state import (
    APPROVE,
    AUTO_APPROVE,
    CLAIM,
    DENY,
    PUBLISH,
    REVOKE,
    RULES,
    TERMS,
    WITHDRAW,
)
from vault.owner.views import records_note
from vault.policy import auto_approval
from vault.scopes import catalog_hash
from vault.wire import UINT256_MAX, Code, LoginLinkPublic, RequestPublic, code_of

LOG_PAGE_SIZE = 50
#: The log page reads at most this many newest entries to filter and page through.
LOG_WINDOW = 10_000
#: A form body, url-encoded: the terms form with a 2,000-character accented note fits (the
#: guard's default body limit is the same).
MAX_FORM_BYTES = 16 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Nothing (a login code in a URL included) leaves in a Referer to another site.
    # Not "no-referrer": Chromium then sends ``Origin: null`` on the dashboard's own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

RequestId = Annotated[int, PathParam(ge=0, le=UINT256_MAX)]


class SignedOut(Exception):
    """No live session: the page says how to sign in (``vault open``)."""


class Forbidden(Exception):
    """A form without its CSRF token, or from another origin."""


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    """A duration in the largest whole unit or two: ``3 days 4 h``, ``12 min``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{seconds} s"


def _approx_eth(wei: int) -> str:
    """Wei for reading at a glance: at most 6 decimals (the exact figure goes in a title)."""
    if wei == 0:
        return "0 ETH"
    rounded = f"{Decimal(wei).scaleb(-18):.6f}".rstrip("0").rstrip(".")
    if rounded == "0":
        return "< 0.000001 ETH"
    return ("" if Decimal(rounded).scaleb(18) == wei else "≈ ") + f"{rounded} ETH"


def _days(seconds: int) -> str:
    """Seconds as days for a form field: ``2592000`` → ``30``, ``43200`` → ``0.5``."""
    days = format(Decimal(seconds) / 86_400, "f")
    return days.rstrip("0").rstrip(".") if "." in days else days


def _short(address: str | None) -> str:
    return f"{address[:8]}…{address[-6:]}" if address and len(address) > 16 else address or "—"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vault.daemon", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(eth=units.format_eth, approx_eth=_approx_eth, when=_when, span=_span,
                       short=_short, days=_days)
    env.globals.update(records_note=records_note)
    return env


#: htmx, vendored byte for byte from the npm package ``htmx.org`` (BSD-0-Clause, its licence
#: beside it); pinned by version in the name and by this digest, checked by the tests.
#: 2.x, not 4.x: 4 sends with fetch(), which reports no upload progress.
HTMX = "htmx-2.0.11.min.js"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
_STATIC = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    HTMX: "text/javascript; charset=utf-8",
}


def _static(name: str) -> bytes:
    return resources.files("vault.daemon").joinpath("static", name).read_bytes()


# --- sessions ------------------------------------------------------------------------------


def _sessions(request: Request) -> Sessions:
    held: Sessions = request.app.state.sessions
    return held


def signed_in(request: Request) -> Session:
    """Dependency of every page: the request's live session, else :class:`SignedOut`."""
    session_id = request.cookies.get(COOKIE_NAME)
    session = _sessions(request).find(session_id) if session_id else None
    if session is None:
        raise SignedOut
    return session


SessionDep = Annotated[Session, Depends(signed_in)]


def _same_origin_session(request: Request, media_type: bytes) -> Session:
    """The session of a form post from this origin with ``media_type``, else
    :class:`SignedOut` / :class:`Forbidden` (checked before its body is read)."""
    session = signed_in(request)
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        raise Forbidden
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden
    sent = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if sent.encode() != media_type:
        raise Forbidden
    return session


async def checked_form(request: Request) -> dict[str, str]:
    """Dependency of every action: the form's fields once its session, CSRF token and origin
    are checked (:class:`SignedOut` / :class:`Forbidden` otherwise)."""
    session = _same_origin_session(request, FORM_MEDIA_TYPE)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden
    fields = {k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()}
    if not session.csrf_matches(fields.get("csrf", "")):
        raise Forbidden
    return fields


UPLOAD_PATH = FORM_PREFIX + "data/import"
#: The largest export the dashboard takes; a larger one is `vault import FILE`'s.
UPLOAD_MAX_BYTES = 32 * 1024 * 1024
#: The guard's limit for the upload's whole body: the file and the form's few short fields.
UPLOAD_BODY_BYTES = UPLOAD_MAX_BYTES + 64 * 1024


async def checked_upload(request: Request) -> uploads.Upload:
    """The upload form: :func:`checked_form`'s checks on a multipart body (bounded by the
    guard to :data:`UPLOAD_BODY_BYTES`); :class:`vault.daemon.uploads.MalformedUpload` for a
    body that does not parse."""
    session = _same_origin_session(request, UPLOAD_MEDIA_TYPE)
    upload = uploads.parse(await request.body(), request.headers["content-type"],
                           max_file_bytes=UPLOAD_MAX_BYTES)
    if not session.csrf_matches(upload.fields.get("csrf", "")):
        raise Forbidden
    return upload


FormDep = Annotated[dict[str, str], Depends(checked_form)]


# --- rendering -----------------------------------------------------------------------------


def _respond(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    session_id = request.cookies.get(COOKIE_NAME)
    session = _sessions(request).find(session_id) if session_id else None
    daemon = request.app.state.daemon
    page = request.app.state.templates.get_template(template).render(
        csrf=session.csrf if session else "",
        signed_in=session is not None,
        owner=daemon.vault.owner_address,
        path=request.url.path,
        htmx=HTMX,
        pending_count=sum(
            1 for r in daemon.owner.requests("pending")) if session else 0,
        **context,
    )
    return _respond(HTMLResponse(page, status_code=status))


def see_other(path: str) -> Response:
    """After an action, back to a page (POST → redirect → GET)."""
    return _respond(RedirectResponse(path, status_code=303))


#: Errors whose hint reads right on a page too (others name CLI options or commands).
_PAGE_HINTS = (errors.InsufficientFunds, errors.MalformedExport)


def sentence(error: errors.VaultError) -> str:
    """What the page says of a refusal: the error's one sentence (none of an internal one),
    and what to do where its hint fits a page."""
    if code_of(error) is Code.INTERNAL:
        return "The vault could not do this; the daemon's log has the details."
    if isinstance(error, _PAGE_HINTS) and error.hint:
        return f"{error}; {error.hint}."
    return str(error)


def refusal_page(request: Request, error: errors.VaultError) -> Response:
    return render(request, "refused.html", status=code_of(error).status,
                  message=sentence(error))


# --- the owner route that mints login codes ------------------------------------------------

login_link_router = APIRouter(
    prefix="/v1/owner", tags=["owner"], dependencies=[Depends(require_token)]
)


@login_link_router.post("/dashboard/login", response_model=LoginLinkPublic)
def new_login_link(request: Request) -> LoginLinkPublic:
    """A one-time dashboard login for ``vault open`` (the CLI has proved our identity)."""
    code, expires_at = _sessions(request).new_login_code()
    return LoginLinkPublic(path=f"/login?code={code}", expires_at=int(expires_at))


# --- pages ---------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login(request: Request, code: str = "") -> Response:
    exchanged = _sessions(request).exchange(code) if code else None
    if exchanged is None:
        return render(request, "signed_out.html", status=403, reused=bool(code))
    session_id, _ = exchanged
    # Leave the URL holding the spent code at once (it also never reaches a Referer).
    response = see_other("/")
    response.set_cookie(
        COOKIE_NAME, session_id, max_age=SESSION_SECONDS, path="/", httponly=True,
        samesite="strict",
    )
    return response


@router.post(FORM_PREFIX + "logout")
def logout(request: Request, _: FormDep) -> Response:
    session_id = request.cookies.get(COOKIE_NAME)
    if session_id:
        _sessions(request).end(session_id)
    response = see_other("/login")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        return _respond(Response(status_code=404))
    return _respond(Response(_static(name), media_type=media_type))


def _grants_by_id(owner: OwnerService) -> dict[int, Grant]:
    return {g.id: g for g in owner.state.mine()}


def ledger_now(owner: OwnerService) -> float:
    """Now as the ledger measures earnings and expiry: the chain head's block time when it
    is ahead of this machine's clock (a development chain moved forward), else the clock."""
    return max(owner.state.clock(), float(owner.state.index.lag().head_timestamp or 0))


@router.get("/")
def overview(request: Request, owner: OwnerDep, _: SessionDep) -> Response:
    now = ledger_now(owner)
    every = owner.requests("all")
    grants = list(owner.state.mine())
    active = [r for r in every if r.status == "active"]
    earnings = owner.earnings()
    earned = sum(g.earned_wei for g in earnings.grants)
    streaming_per_day = sum(r.price_per_day_wei for r in active)
    return render(
        request, "overview.html",
        chart=earnings_chart.chart(grants, now),
        earned_wei=earned, earnings=earnings, streaming_per_day=streaming_per_day,
        active=active, pending=[r for r in every if r.status == "pending"],
        privacy=owner.privacy(), now=now,
    )


def _rules_verdicts(owner: OwnerService, pending: list[RequestPublic]) -> dict[int, str]:
    """What the owner's auto-approval rules say of each pending request, in words."""
    rules = owner.rules()
    never = owner.terms().scopes_never
    grants = _grants_by_id(owner)
    verdicts = {}
    for request in pending:
        verdict = auto_approval(grants[request.id], rules, catalog_hash=catalog_hash(),
                                terms_never=never)
        verdicts[request.id] = (f"would approve it (rule “{verdict.rule}”)" if verdict.approve
                                else f"would not approve it: {verdict.reason}")
    return verdicts


@router.get("/requests")
def requests_page(
    request: Request, owner: OwnerDep, _: SessionDep,
    approved: int | None = None, denied: int | None = None,
) -> Response:
    every = owner.requests("all")
    pending = [r for r in every if r.status == "pending"]
    decided = [r for r in every if r.status != "pending"]
    return render(
        request, "requests.html", pending=pending, decided=decided[::-1],
        verdicts=_rules_verdicts(owner, pending), approved=approved, denied=denied,
    )


@router.get("/grants")
def grants_page(
    request: Request, owner: OwnerDep, _: SessionDep, revoked: int | None = None
) -> Response:
    now = ledger_now(owner)
    listed = owner.grants()
    by_id = _grants_by_id(owner)
    earned = {r.id: earnings_chart.earned_at(by_id[r.id], now) for r in listed}
    return render(request, "grants.html", grants=listed[::-1], earned=earned, now=now,
                  revoked=revoked)


def _revoke_split(owner: OwnerService, request_id: int) -> dict[str, Any]:
    """What revoking the grant now would leave the owner and refund the company."""
    grant = owner.state.get(request_id)
    earned = earnings_chart.earned_at(grant, ledger_now(owner))
    return {"keep": earned, "refund": grant.price - earned}


@dataclass(frozen=True)
class Decision:
    """An owner decision the dashboard confirms first: ``GET <listing>/N/<verb>`` shows what
    it will do, its form posts to ``/dashboard/<listing>/N/<verb>``, and the owner lands
    back on the listing with ``?<done>=N``."""

    verb: str
    noun: str
    listing: str
    needs: str  # the status the item must have
    done: str
    template: str
    act: Callable[[OwnerService, int, dict[str, str]], object]
    details: Callable[[OwnerService, int], dict[str, Any]] = lambda owner, request_id: {}


DECISIONS = (
    Decision("approve", "request", "/requests", "pending", "approved", "confirm_approve.html",
             lambda owner, request_id, form: owner.approve(
                 request_id, submit=form.get("submit") == "on")),
    Decision("deny", "request", "/requests", "pending", "denied", "confirm_deny.html",
             lambda owner, request_id, form: owner.deny(request_id)),
    Decision("revoke", "grant", "/grants", "active", "revoked", "confirm_revoke.html",
             lambda owner, request_id, form: owner.revoke(request_id), details=_revoke_split),
)


def _confirmation(decision: Decision) -> Callable[..., Response]:
    def confirm(request: Request, owner: OwnerDep, _: SessionDep, request_id: RequestId
                ) -> Response:
        try:
            found = owner.request(request_id)
            details = decision.details(owner, request_id)
        except errors.VaultError as error:
            return refusal_page(request, error)
        return render(request, decision.template, item=found, decision=decision, **details)
    return confirm


def _action(decision: Decision) -> Callable[..., Awaitable[Response]]:
    async def act(request: Request, owner: OwnerDep, form: FormDep, request_id: RequestId
                  ) -> Response:
        try:
            await run_in_threadpool(decision.act, owner, request_id, form)
        except errors.VaultError as error:
            return refusal_page(request, error)
        return see_other(f"{decision.listing}?{decision.done}={request_id}")
    return act


for _decision in DECISIONS:
    router.add_api_route(f"{_decision.listing}/{{request_id}}/{_decision.verb}",
                         _confirmation(_decision), methods=["GET"])
    router.add_api_route(f"{FORM_PREFIX}{_decision.listing[1:]}/{{request_id}}/{_decision.verb}",
                         _action(_decision), methods=["POST"])


@router.get("/companies")
def companies_page(request: Request, owner: OwnerDep, _: SessionDep) -> Response:
    every = owner.requests("all")
    spent = {c.company.lower(): c for c in owner.privacy().companies}
    companies: dict[str, list[RequestPublic]] = {}
    for item in every:
        companies.setdefault(item.company, []).append(item)
    return render(request, "companies.html", companies=companies, spent=spent)


@router.get("/companies/{address}")
async def company_page(
    request: Request, daemon: DaemonDep, owner: OwnerDep, _: SessionDep,
    address: Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{40}$")],
) -> Response:
    # async on purpose: it reads the vault's derived values on the event loop, the one
    # thread the release path reads them on.
    theirs = [r for r in owner.requests("all") if r.company.lower() == address.lower()]
    if not theirs:
        return refusal_page(request, errors.NotFound("no request from this company"))
    releases = [
        e for r in theirs for e in owner.state.audit.for_grant(r.id, kind=audit.RELEASE)
        if e.outcome == audit.RELEASED
    ]
    releases.sort(key=lambda e: e.seq, reverse=True)
    recomputer: Recomputer = request.app.state.recomputer
    receipts = [
        e for r in theirs for kind in (audit.CONSENT_RECEIPT, audit.TERMINATION_RECEIPT)
        for e in owner.state.audit.for_grant(r.id, kind=kind)
    ]
    receipts.sort(key=lambda e: e.seq)
    spent = next((c for c in owner.privacy().companies
                  if c.company.lower() == address.lower()), None)
    return render(
        request, "company.html", company=theirs[0].company, requests=theirs,
        disclosures=recomputer.disclosures(releases), receipts=receipts, spent=spent,
    )


@router.get("/log")
def log_page(
    request: Request, owner: OwnerDep, _: SessionDep,
    page: Annotated[int, Query(ge=1, le=LOG_WINDOW // LOG_PAGE_SIZE)] = 1,
    kind: Annotated[str, Query(max_length=40)] = "",
    company: Annotated[str, Query(max_length=42)] = "",
    grant: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    entries = owner.state.audit.entries(limit=LOG_WINDOW, kind=kind or None)[::-1]
    if company:
        entries = [e for e in entries if (e.company or "").lower() == company.lower()]
    if grant.isdigit():
        entries = [e for e in entries if e.grant_id == int(grant)]
    pages = max(1, math.ceil(len(entries) / LOG_PAGE_SIZE))
    shown = entries[(page - 1) * LOG_PAGE_SIZE: page * LOG_PAGE_SIZE]
    return render(
        request, "log.html", entries=shown, page=page, pages=pages, kind=kind,
        company=company, grant=grant, verification=owner.verify_log(),
        kinds=sorted({audit.RELEASE, audit.CONSENT_RECEIPT, audit.TERMINATION_RECEIPT,
                      audit.REFUSAL_SUMMARY, audit.RESTORE, APPROVE, AUTO_APPROVE, DENY,
                      REVOKE, CLAIM, WITHDRAW, TERMS, RULES, PUBLISH, audit.IMPORT,
                      audit.FORGET}),
        at_most=LOG_WINDOW,
    )


def install(app: FastAPI, *, clock: Callable[[], float] = time.time) -> None:
    """Serve the dashboard from ``app``: its routes, sessions and error pages."""
    app.state.sessions = Sessions(clock=clock)
    app.state.templates = _templates()
    daemon = app.state.daemon
    app.state.recomputer = Recomputer(daemon.vault, noise_secret=daemon.vault.secret("noise"))

    async def on_signed_out(request: Request, _: Exception) -> Response:
        return render(request, "signed_out.html", status=401, reused=False)

    async def on_forbidden(request: Request, _: Exception) -> Response:
        return render(request, "refused.html", status=403,
                      message="This form was refused: it did not come from your dashboard "
                      "page (no valid CSRF token or another origin). Reload the page and try "
                      "again.")

    app.add_exception_handler(SignedOut, on_signed_out)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.include_router(login_link_router)
    app.include_router(router)
