"""``POST /v1/release``: the release protocol (DESIGN.md), answered by ReleaseService."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from vault.daemon.deps import household_service, release_service
from vault.daemon.routes._errors import errors_for
from vault.wire import ReleasePublic, ReleaseRequest

router = APIRouter(tags=["company"])

_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": ReleaseRequest.model_json_schema()}},
}


@router.post(
    "/v1/release",
    response_model=ReleasePublic,
    responses=errors_for(400, 401, 409, 429, 503),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def release(request: Request) -> Response:
    """Derived preferences for a signed request under an active grant, with the owner's
    signed receipt."""
    # The body is parsed here rather than declared as a parameter: pydantic-core reads the
    # bytes straight into the model, where FastAPI would run json.loads, then validate the
    # objects, then solve dependencies — about a tenth of a release on the hot path.
    try:
        body = ReleaseRequest.model_validate_json(await request.body())
    except ValidationError as invalid:
        raise RequestValidationError(invalid.errors(include_input=False)) from None
    # A plain call, not a dependency: FastAPI solving one costs more than the lookup.
    household = household_service(request)
    if household.coordinates(body.grant_id):
        content = await household.release(body)
    else:
        content = await release_service(request).release(body)
    return Response(content, media_type="application/json")
