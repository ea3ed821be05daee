"""Company routes about consent: the owner's terms and the owner's approval signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from vault.daemon.models import UINT256_MAX, ApprovalPublic, TermsPublic
from vault.daemon.routes._errors import errors_for

router = APIRouter(tags=["company"])

RequestId = Annotated[int, Path(ge=0, le=UINT256_MAX)]


@router.get("/v1/terms", response_model=TermsPublic, responses=errors_for())
def terms(request: Request) -> TermsPublic:
    return request.app.state.daemon.owner.public_terms()  # type: ignore[no-any-return]


@router.get(
    "/v1/requests/{request_id}/approval",
    response_model=ApprovalPublic,
    responses=errors_for(400, 404),
)
def approval(request: Request, request_id: RequestId) -> ApprovalPublic:
    """The owner's EIP-712 approval, for the company to relay with ``approveBySig``."""
    return request.app.state.daemon.owner.approval(request_id)  # type: ignore[no-any-return]
