"""``POST /v1/release``: the release protocol (DESIGN.md), answered by ReleaseService."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from vault.daemon.models import ReleasePublic, ReleaseRequest
from vault.daemon.routes._errors import errors_for

router = APIRouter(tags=["company"])


@router.post(
    "/v1/release",
    response_model=ReleasePublic,
    responses=errors_for(400, 401, 409, 429, 503),
)
async def release(request: Request, body: ReleaseRequest) -> Response:
    """Derived preferences for a signed request under an active grant, with the owner's
    signed receipt."""
    content = await request.app.state.daemon.releaser.release(body)
    return Response(content, media_type="application/json")
