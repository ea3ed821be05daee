"""What every request passes before any route runs, and the owner routes' bearer token.

* **Host allow-list** (THREATS row 27): a browser tricked by DNS rebinding sends
  ``Host: evil.example``; only loopback names (and the configured host when remote access is
  explicitly allowed) pass, whatever the port.
* **JSON only** (THREATS row 37): a request with a body that is not ``application/json`` is
  refused with 415 before any route runs. A web page can make a browser send a cross-site
  ``text/plain`` POST without asking anyone; it cannot send ``application/json`` without a
  CORS preflight, which this daemon never answers. The one exception: the owner dashboard's
  forms (``/dashboard/…`` only) post ``application/x-www-form-urlencoded`` (and its upload,
  ``multipart/form-data``), and each is refused without its session cookie
  (SameSite=Strict), CSRF token and same origin (:mod:`vault.daemon.routes.dashboard`).
* **Body size limit** (THREATS row 24): a declared ``Content-Length`` above the limit (the
  route's own where it has one, e.g. the match routes' 1 MiB) is refused before reading;
  a chunked body is counted as it arrives and refused the moment it passes the limit, so
  the whole body is never buffered.
* **Bearer token** (THREATS row 26): fresh at every daemon start, held in memory and
  published only in the runtime file (0600, removed on stop; :mod:`vault.daemon.runtime`,
  THREATS row 34); compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vault import errors
from vault.daemon.http_errors import error_body
from vault.daemon.runtime import Token
from vault.wire import Code

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
#: The only paths whose bodies may be forms: the owner dashboard's actions.
FORM_PREFIX = "/dashboard/"
FORM_MEDIA_TYPE = b"application/x-www-form-urlencoded"
#: The dashboard's file upload (``My data``); the route checks it like every other form.
UPLOAD_MEDIA_TYPE = b"multipart/form-data"


class _BodyTooLarge(BaseException):
    """Raised from ``receive`` past the limit. A BaseException on purpose: FastAPI turns any
    ``Exception`` raised while reading a body into a 400, and this must reach the guard."""


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower-cased, without the port."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class GuardMiddleware:
    """Pure ASGI middleware (no per-request task or buffering): Host and body-size checks."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: frozenset[str],
        max_body: int,
        route_max_body: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body
        self.route_max_body = dict(route_max_body or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body = self.route_max_body.get(scope["path"], self.max_body)
        host = ""
        length = None
        media_type = b""
        chunked = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"transfer-encoding":
                chunked = True
        if host_name(host) not in self.allowed_hosts:
            await _refuse(send, Code.FORBIDDEN_HOST, "this Host is not allowed")
            return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, Code.MALFORMED, "the Content-Length header is malformed")
                return
            if declared > max_body:
                await _refuse(send, Code.TOO_LARGE, "the request body is too large")
                return
        has_body = chunked or (length is not None and length.strip() not in (b"", b"0"))
        if (has_body or media_type) and media_type != b"application/json" and not (
            media_type in (FORM_MEDIA_TYPE, UPLOAD_MEDIA_TYPE)
            and scope["path"].startswith(FORM_PREFIX)
        ):
            await _refuse(
                send, Code.UNSUPPORTED_MEDIA_TYPE, "the request body must be application/json"
            )
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(send, Code.TOO_LARGE, "the request body is too large")


async def _refuse(send: Send, code: Code, detail: str) -> None:
    body = error_body(code, detail)
    await send(
        {
            "type": "http.response.start",
            "status": code.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str, *, allow_remote: bool) -> frozenset[str]:
    if allow_remote:
        return LOOPBACK_HOSTS | {host_name(host)}
    return LOOPBACK_HOSTS


# --- bearer token -------------------------------------------------------------------------


_bearer = HTTPBearer(auto_error=False, description="the token in <home>/daemon.json")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency of every owner route: 401 ``unauthorized`` without the right token."""
    token: Token = request.app.state.token
    if credentials is None or not token.matches(credentials.credentials):
        raise errors.ReleaseRefused(Code.UNAUTHORIZED, "a valid owner token is required")
