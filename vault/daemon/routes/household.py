"""``POST /v1/household/contribution``: another member's vault forwards a company's request
under a group grant, and this vault answers with its member's part (answered by
:class:`vault.daemon.household.HouseholdService`; docs/match.md "Household")."""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic_core
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError
from starlette.responses import Response

from vault.daemon.deps import household_service
from vault.daemon.routes._errors import errors_for
from vault.daemon.routes.match import _inlined
from vault.household import CONTRIBUTION_PATH, ContributionRequest
from vault.match import Malformed, request_of
from vault.wire import MatchRequest, ReleaseRequest

router = APIRouter(tags=["household"])


# The body's schema only: the route reads ``request`` as a JSON value (a match list is
# hashed as sent) and validates it as the model ``kind`` names, which these spell out.
class _ReleaseForward(ContributionRequest):
    kind: Literal["release"]
    request: ReleaseRequest  # type: ignore[assignment]


class _MatchForward(ContributionRequest):
    kind: Literal["match"]
    request: MatchRequest  # type: ignore[assignment]


_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _inlined(TypeAdapter(
        Annotated[_ReleaseForward | _MatchForward, Field(discriminator="kind")]
    ).json_schema())}},
}


@router.post(
    CONTRIBUTION_PATH,
    responses=errors_for(400, 401, 409, 429, 503),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def contribution(request: Request) -> Response:
    """This member's part of a household answer, with its owner's receipt: its released
    preferences, or its noisy score per candidate."""
    # Parsed to a value first: a match list is hashed as sent.
    try:
        forward = ContributionRequest.model_validate(pydantic_core.from_json(await request.body()))
        body = (
            ReleaseRequest.model_validate(forward.request) if forward.kind == "release"
            else request_of(forward.request)
        )
    except (ValidationError, ValueError, Malformed):
        raise RequestValidationError([]) from None
    content = await household_service(request).contribute(forward, body)
    return Response(content, media_type="application/json")
