"""The one place where errors become HTTP responses (their codes and statuses are
:mod:`vault.wire`'s).

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
from vault.wire import Code, code_of

log = logging.getLogger("vault.daemon")

_CODE_OF_STATUS = {400: Code.MALFORMED, 401: Code.UNAUTHORIZED, 404: Code.NOT_FOUND,
                   405: Code.METHOD_NOT_ALLOWED, 413: Code.TOO_LARGE}

INTERNAL_DETAIL = "the vault could not answer; the owner can find details in the daemon's log"


def error_body(code: Code, detail: str, *, ledger_error: str | None = None) -> bytes:
    body: dict[str, str] = {"error": code.value, "detail": detail}
    if ledger_error is not None:
        body["ledger_error"] = ledger_error
    return json.dumps(body).encode()


def error_response(
    code: Code, detail: str, *, status: int | None = None, ledger_error: str | None = None
) -> Response:
    return Response(
        error_body(code, detail, ledger_error=ledger_error),
        status_code=status if status is not None else code.status,
        media_type="application/json",
    )


def response_for(error: errors.VaultError) -> Response:
    code = code_of(error)
    if code is Code.INTERNAL:
        log.error("refused with an internal error: %s", type(error).__name__)
        return error_response(code, INTERNAL_DETAIL)
    ledger_error = error.name if isinstance(error, errors.ContractReverted) else None
    return error_response(code, str(error), ledger_error=ledger_error)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the wire's error body."""

    async def on_vault_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.VaultError)
        return response_for(exc)

    async def on_invalid(_: Request, exc: Exception) -> Response:
        # Never echo the input back: it may be anything, including a planted value.
        return error_response(Code.MALFORMED, "the request body or parameters are malformed")

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODE_OF_STATUS.get(exc.status_code, Code.MALFORMED)
        if code is Code.MALFORMED:
            return error_response(code, "the request is malformed")
        return error_response(code, f"HTTP {exc.status_code}", status=exc.status_code)

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.error("unexpected %s while answering", type(exc).__name__)
        return error_response(Code.INTERNAL, INTERNAL_DETAIL)

    app.add_exception_handler(errors.VaultError, on_vault_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
