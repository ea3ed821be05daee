"""Company routes about consent: the owner's terms and the owner's approval signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from vault.daemon.deps import OwnerDep
from vault.daemon.routes._errors import errors_for
from vault.wire import UINT256_MAX, ApprovalPublic, TermsPublic

router = APIRouter(tags=["company"])

RequestId = Annotated[int, Path(ge=0, le=UINT256_MAX)]


@router.get("/v1/terms", response_model=TermsPublic, responses=errors_for())
def terms(owner: OwnerDep) -> TermsPublic:
    return owner.public_terms()


@router.get(
    "/v1/requests/{request_id}/approval",
    response_model=ApprovalPublic,
    responses=errors_for(400, 404),
)
def approval(owner: OwnerDep, request_id: RequestId) -> ApprovalPublic:
    """The owner's EIP-712 approval, for the company to relay with ``approveBySig``."""
    return owner.approval(request_id)
