"""``GET /v1/health``: who this vault is and how fresh its view of the ledger is."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vault.daemon.models import HealthPublic
from vault.daemon.routes._errors import errors_for

router = APIRouter(tags=["company"])


@router.get("/v1/health", response_model=HealthPublic, responses=errors_for())
async def health(request: Request) -> HealthPublic:
    daemon = request.app.state.daemon
    return daemon.health()  # type: ignore[no-any-return]
