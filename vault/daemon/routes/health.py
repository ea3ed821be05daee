"""``GET /v1/health``: who this vault is and how fresh its view of the ledger is."""

from __future__ import annotations

from fastapi import APIRouter

from vault.daemon.deps import DaemonDep
from vault.daemon.routes._errors import errors_for
from vault.wire import HealthPublic

router = APIRouter(tags=["company"])


@router.get("/v1/health", response_model=HealthPublic, responses=errors_for())
async def health(daemon: DaemonDep) -> HealthPublic:
    return daemon.health()
