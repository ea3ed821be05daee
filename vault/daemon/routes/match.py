"""``POST /v1/match`` (the match protocol, DESIGN.md; answered by MatchService) and the
owner's ``POST /v1/owner/match/preview``. Both take lists of up to 1,000 candidates, so the
guard lets their bodies grow to :data:`MATCH_BODY_BYTES` (every other route keeps
``max_body_bytes``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from vault.daemon.deps import OwnerDep, household_service, match_service
from vault.daemon.guard import require_token
from vault.daemon.routes._errors import errors_for
from vault.match import Malformed, read_request
from vault.wire import MatchPreviewBody, MatchPreviewPublic, MatchPublic, MatchRequest

#: The body limit of the match routes (DESIGN.md: 1 MiB). Their bodies are parsed into fixed
#: types (msgspec for the match, pydantic for the preview), which refuse a nested value
#: where the schema has none at its first bracket (400), so the larger cap does not reopen
#: THREATS row 24.
MATCH_BODY_BYTES = 1 << 20
MATCH_PATH = "/v1/match"
PREVIEW_PATH = "/v1/owner/match/preview"

router = APIRouter()

def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` written in place: the OpenAPI document has no
    ``#/$defs`` for the references to point to (the models are not recursive)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _inlined(MatchRequest.model_json_schema())}},
}
_PREVIEW_BODY = {
    "required": True,
    "content": {"application/json": {"schema": MatchPreviewBody.model_json_schema()}},
}


def _malformed(error: ValidationError) -> RequestValidationError:
    return RequestValidationError(error.errors(include_input=False))


@router.post(
    MATCH_PATH,
    tags=["company"],
    response_model=MatchPublic,
    responses=errors_for(400, 401, 409, 429, 503),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def match(request: Request) -> Response:
    """The company's candidates ranked for the person (only the ranking), with the owner's
    signed receipt over the candidates hash and the ranking."""
    # Validated into structs holding exactly what was sent: the list is hashed as sent
    # (RFC 8785 of the JSON value).
    try:
        body = read_request(await request.body())
    except Malformed:
        raise RequestValidationError([]) from None
    household = household_service(request)
    if household.coordinates(body.grant_id):
        content = await household.match(body)
    else:
        content = await match_service(request).match(body)
    return Response(content, media_type="application/json")


@router.post(
    PREVIEW_PATH,
    tags=["owner"],
    dependencies=[Depends(require_token)],
    # Not in the owner's schema: a schema-valid list may repeat an id, which the preview
    # refuses (400 duplicate_id) as the company's match would.
    include_in_schema=False,
    response_model=MatchPreviewPublic,
    responses=errors_for(400, 401),
    openapi_extra={"requestBody": _PREVIEW_BODY},
)
async def preview(request: Request, owner: OwnerDep) -> MatchPreviewPublic:
    """What a company would get for a list, and why each pick (nothing is logged)."""
    try:
        body = MatchPreviewBody.model_validate_json(await request.body())
    except ValidationError as invalid:
        raise _malformed(invalid) from None
    return owner.match_preview(body)
