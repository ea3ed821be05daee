"""The one place where errors become HTTP statuses and wire error codes.

Lower layers raise :mod:`vault.errors` types; routes never build error responses by hand.
Every error body is ``{"error": code, "detail": one sentence}`` and never carries owner
data: details come from vault's own messages (which by rule hold no secrets or raw values)
or are fixed sentences.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from vault import errors

log = logging.getLogger("vault.daemon")

#: Wire code → HTTP status for refusals (DESIGN.md "Release protocol" plus the daemon's own).
STATUS_OF_CODE: dict[str, int] = {
    "malformed": 400,
    "unauthorized": 401,
    "bad_signature": 401,
    "stale_request": 401,
    "forbidden_host": 403,
    "not_granted": 403,
    "wrong_company": 403,
    "scope_not_granted": 403,
    "catalog_mismatch": 403,
    "revoked": 403,
    "expired": 403,
    "denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "replayed": 409,
    "conflict": 409,
    "consent_refused": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "releases_exhausted": 429,
    "budget_exhausted": 429,
    "rate_limited": 429,
    "internal": 500,
    "ledger_unavailable": 503,
    "signing_unavailable": 503,
}

#: Vault error type → wire code; the first match wins.
_BY_TYPE: tuple[tuple[type[errors.VaultError], str], ...] = (
    (errors.SignatureInvalid, "bad_signature"),
    (errors.SigningUnavailable, "signing_unavailable"),
    (errors.ContractReverted, "conflict"),
    (errors.ConsentError, "consent_refused"),
    (errors.LedgerError, "ledger_unavailable"),
    (errors.NotFound, "not_found"),
    (errors.InputError, "malformed"),
)

_CODE_OF_STATUS = {400: "malformed", 401: "unauthorized", 404: "not_found",
                   405: "method_not_allowed", 413: "too_large"}

INTERNAL_DETAIL = "the vault could not answer; the owner can find details in the daemon's log"


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


def error_response(code: str, detail: str, *, status: int | None = None) -> Response:
    return Response(
        error_body(code, detail),
        status_code=status if status is not None else STATUS_OF_CODE[code],
        media_type="application/json",
    )


def code_of(error: errors.VaultError) -> str:
    """The wire code of a vault error."""
    if isinstance(error, errors.ReleaseRefused):
        return error.code if error.code in STATUS_OF_CODE else "internal"
    for cls, code in _BY_TYPE:
        if isinstance(error, cls):
            return code
    return "internal"


def response_for(error: errors.VaultError) -> Response:
    code = code_of(error)
    if code == "internal":
        log.error("refused with an internal error: %s", type(error).__name__)
        return error_response(code, INTERNAL_DETAIL)
    return error_response(code, str(error))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the wire's error body."""

    async def on_vault_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.VaultError)
        return response_for(exc)

    async def on_invalid(_: Request, exc: Exception) -> Response:
        # Never echo the input back: it may be anything, including a planted value.
        return error_response("malformed", "the request body or parameters are malformed")

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODE_OF_STATUS.get(exc.status_code, "malformed")
        if code == "malformed":
            return error_response(code, "the request is malformed", status=400)
        return error_response(code, f"HTTP {exc.status_code}", status=exc.status_code)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.error("unexpected %s while answering", type(exc).__name__)
        return error_response("internal", INTERNAL_DETAIL)

    app.add_exception_handler(errors.VaultError, on_vault_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
