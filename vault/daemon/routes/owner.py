"""Owner routes (for the CLI): every one needs the daemon's per-start bearer token (its
runtime file, ``<home>/daemon.json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from vault.daemon.deps import OwnerDep
from vault.daemon.guard import require_token
from vault.daemon.routes._errors import errors_for
from vault.policy import RuleSet
from vault.wire import (
    UINT256_MAX,
    ApproveBody,
    ApproveResult,
    BalancePublic,
    ClaimBody,
    ClaimResult,
    DenyResult,
    EarningsPublic,
    LogEntryPublic,
    PrivacyPublic,
    PublishBody,
    PublishResult,
    RequestPublic,
    RevokeResult,
    Terms,
    VerifyPublic,
    WithdrawResult,
)

router = APIRouter(
    prefix="/v1/owner",
    tags=["owner"],
    dependencies=[Depends(require_token)],
    responses=errors_for(400, 401),
)

RequestId = Annotated[int, Path(ge=0, le=UINT256_MAX)]


@router.get("/openapi.json", include_in_schema=False)
def openapi_schema(request: Request) -> dict[str, Any]:
    """The daemon's OpenAPI schema, for the owner only."""
    return request.app.openapi()  # type: ignore[no-any-return]
_ACT = errors_for(404, 409, 503)




@router.get("/requests", response_model=list[RequestPublic])
def list_requests(
    owner: OwnerDep,
    status: Literal["pending", "active", "all"] = "pending",
) -> list[RequestPublic]:
    return owner.requests(status)


@router.get("/requests/{request_id}", response_model=RequestPublic, responses=_ACT)
def get_request(owner: OwnerDep, request_id: RequestId) -> RequestPublic:
    return owner.request(request_id)


@router.post("/requests/{request_id}/approve", response_model=ApproveResult, responses=_ACT)
def approve(
    owner: OwnerDep, request_id: RequestId, body: ApproveBody | None = None
) -> ApproveResult:
    return owner.approve(request_id, submit=body.submit if body is not None else False)


@router.post("/requests/{request_id}/deny", response_model=DenyResult, responses=_ACT)
def deny(owner: OwnerDep, request_id: RequestId) -> DenyResult:
    return owner.deny(request_id)


@router.post("/grants/{request_id}/revoke", response_model=RevokeResult, responses=_ACT)
def revoke(owner: OwnerDep, request_id: RequestId) -> RevokeResult:
    return owner.revoke(request_id)


@router.get("/grants", response_model=list[RequestPublic])
def grants(owner: OwnerDep) -> list[RequestPublic]:
    return owner.grants()


@router.get("/earnings", response_model=EarningsPublic, responses=_ACT)
def earnings(owner: OwnerDep) -> EarningsPublic:
    return owner.earnings()


@router.get("/balance", response_model=BalancePublic, responses=_ACT)
def balance(owner: OwnerDep) -> BalancePublic:
    """The wallet, the ledger's balances and what a payout nets after gas."""
    return owner.balance()


@router.post("/claim", response_model=ClaimResult, responses=_ACT)
def claim(owner: OwnerDep, body: ClaimBody | None = None) -> ClaimResult:
    return owner.claim(body.ids if body is not None else None)


@router.post("/withdraw", response_model=WithdrawResult, responses=_ACT)
def withdraw(owner: OwnerDep) -> WithdrawResult:
    return owner.withdraw()


@router.get("/privacy", response_model=PrivacyPublic)
def privacy(owner: OwnerDep) -> PrivacyPublic:
    """What each company received, the privacy budget it spent and what remains."""
    return owner.privacy()


@router.get("/terms", response_model=Terms)
def get_terms(owner: OwnerDep) -> Terms:
    return owner.terms()


@router.put("/terms", response_model=Terms)
def put_terms(owner: OwnerDep, body: Terms) -> Terms:
    return owner.set_terms(body)


@router.post("/terms/publish", response_model=PublishResult, responses=_ACT)
def publish_terms(owner: OwnerDep, body: PublishBody) -> PublishResult:
    return owner.publish_terms(body.endpoint)


@router.get("/rules", response_model=RuleSet)
def get_rules(owner: OwnerDep) -> RuleSet:
    return owner.rules()


@router.put("/rules", response_model=RuleSet)
def put_rules(owner: OwnerDep, body: RuleSet) -> RuleSet:
    return owner.set_rules(body)


@router.get("/log", response_model=list[LogEntryPublic])
def log(
    owner: OwnerDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[LogEntryPublic]:
    return owner.log(limit)


@router.get("/log/verify", response_model=VerifyPublic)
def verify_log(owner: OwnerDep) -> VerifyPublic:
    return owner.verify_log()
