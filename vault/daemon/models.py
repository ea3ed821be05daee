"""The daemon's wire models. Every model here may leave the process: none carries a secret
or a raw personal value (derived preferences only ever appear in :class:`ReleasePublic`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vault import scopes

HEX32 = r"^0x[0-9a-fA-F]{64}$"
HEX65 = r"^0x[0-9a-fA-F]{130}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
#: A scope name; the schema lists the catalog, the services refuse anything else (400).
ScopeName = Annotated[str, Field(json_schema_extra={"enum": [s.name for s in scopes.CATALOG]})]
UINT64_MAX = (1 << 64) - 1
UINT256_MAX = (1 << 256) - 1
#: The largest integer RFC 8785 (hence ``terms_hash``) can represent exactly.
JSON_SAFE_MAX = (1 << 53) - 1

RequestStatus = Literal["pending", "active", "expired", "denied", "cancelled", "revoked"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorPublic(_Out):
    error: str = Field(description="machine-readable code, e.g. `revoked`")
    detail: str = Field(description="one human sentence; never owner data")


class HealthPublic(_Out):
    status: Literal["ok"]
    owner: str
    chain_id: int
    ledger: str
    synced_block: int
    index_lag_seconds: float
    catalog_hash: str
    version: str


class Terms(_In):
    """What the owner offers; ``terms_hash`` is keccak256 of its RFC 8785 JSON."""

    min_price_per_day_wei: int = Field(
        default=0, ge=0, le=JSON_SAFE_MAX, description="≤ 2^53-1: RFC 8785 hashes IEEE doubles"
    )
    max_duration_seconds: int = Field(default=30 * 86_400, gt=0, le=(1 << 32) - 1)
    scopes_offered: list[ScopeName] = Field(default_factory=list, max_length=64)
    scopes_never: list[ScopeName] = Field(default_factory=list, max_length=64)
    note: str = Field(default="", max_length=2000)


class TermsPublic(_Out):
    owner: str
    endpoint: str | None
    terms: Terms
    terms_hash: str


class ApprovalPublic(_Out):
    request_id: int
    deadline: int
    signature: str


class ReleaseRequest(_In):
    """A company's signed release request (DESIGN.md "Release protocol")."""

    grant_id: int = Field(ge=0, le=UINT256_MAX)
    scopes: list[ScopeName] = Field(min_length=1, max_length=64)
    nonce: str = Field(pattern=HEX32)
    issued_at: int = Field(ge=0, le=UINT64_MAX)
    signature: str = Field(pattern=HEX65)


class ReceiptPublic(_Out):
    content_hash: str
    issued_at: int
    signature: str


class ReleasePublic(_Out):
    grant_id: int
    owner: str
    company: str
    preferences: dict[str, dict[str, Any]]
    receipt: ReceiptPublic


class RequestPublic(_Out):
    id: int
    owner: str
    company: str
    company_endpoint: str | None
    scopes: list[str]
    scopes_bitmap: int
    price_wei: int
    price_per_day_wei: int
    duration_seconds: int
    max_releases: int
    purpose: str
    catalog_hash: str
    catalog_matches: bool
    status: RequestStatus
    starts_at: int | None
    expires_at: int | None
    releases_used: int
    consent_statement: str


class ApproveBody(_In):
    submit: bool = Field(
        default=False, description="true: the owner sends `approve` itself (needs gas)"
    )


class ApproveResult(_Out):
    request_id: int
    deadline: int
    signature: str
    tx_hash: str | None


class DenyResult(_Out):
    request_id: int
    tx_hash: str | None


class RevokeResult(_Out):
    request_id: int
    tx_hash: str | None
    owner_earned_wei: int | None
    company_refund_wei: int | None


class GrantEarnings(_Out):
    id: int
    earned_wei: int
    claimable_wei: int


class EarningsPublic(_Out):
    owed_wei: int
    claimable_wei: int
    grants: list[GrantEarnings]


class ClaimBody(_In):
    ids: list[int] | None = Field(default=None, max_length=1000)


class ClaimResult(_Out):
    claimed_wei: int
    tx_hash: str | None


class WithdrawResult(_Out):
    withdrawn_wei: int
    tx_hash: str | None


class PublishBody(_In):
    endpoint: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")


class PublishResult(_Out):
    tx_hash: str | None
    terms_hash: str


class LogEntryPublic(_Out):
    seq: int
    at: float
    kind: str
    grant_id: int | None
    company: str | None
    scopes: list[str]
    outcome: str
    reason: str | None
    content_hash: str | None
    entry_hash: str


class VerifyPublic(_Out):
    ok: bool
    entries: int
    first_bad_seq: int | None


class IdentityChallenge(_In):
    """The CLI's challenge before it sends any secret (THREATS row 34)."""

    nonce: str = Field(pattern=HEX32, description="32 random bytes, fresh per challenge")


class IdentityPublic(_Out):
    """The daemon's answer: its owner and the HMAC that proves it holds the per-start token."""

    owner: str = Field(pattern=ADDRESS)
    proof: str = Field(
        pattern=HEX32,
        description="HMAC-SHA256(token, label ‖ nonce ‖ lower-case owner): vault.daemon.runtime",
    )
