"""The wire protocol's vocabulary: every error code with its HTTP status, and the public
request and response models of the daemon.

One home for what the daemon, the company SDK and the CLI say to each other. Free of FastAPI
and web3 (pydantic only), so the SDK, the pure policy and the CLI can import it cheaply.
Every model here may leave the process: none carries a secret or a raw personal value
(derived preferences only ever appear in :class:`ReleasePublic`).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from vault import errors, scopes

HEX32 = r"^0x[0-9a-fA-F]{64}$"
HEX65 = r"^0x[0-9a-fA-F]{130}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
#: A scope name; the schema lists the catalog, the services refuse anything else (400).
ScopeName = Annotated[str, Field(json_schema_extra={"enum": [s.name for s in scopes.CATALOG]})]
UINT256_MAX = (1 << 256) - 1
#: The largest integer RFC 8785 (hence ``terms_hash``) can represent exactly.
JSON_SAFE_MAX = (1 << 53) - 1
#: Grant ids count up from 1 and a body's numbers are bounded where JSON parsers (and
#: schema tools) still read them exactly: larger ids are refused as malformed.
_ID_BOUND = "a ledger request id (they count up from 1; at most 2^53-1 here)"



class Code(enum.StrEnum):
    """Every ``error`` code an error body can carry (DESIGN.md "Release protocol" plus the
    daemon's own); :attr:`status` is its HTTP status."""

    MALFORMED = "malformed"
    #: A match list outside 20 to 1,000 candidates, or ``k`` outside 1 to 10.
    LIST_SIZE = "list_size"
    #: Two candidates of a match list share an id.
    DUPLICATE_ID = "duplicate_id"
    UNAUTHORIZED = "unauthorized"
    BAD_SIGNATURE = "bad_signature"
    STALE_REQUEST = "stale_request"
    FORBIDDEN_HOST = "forbidden_host"
    NOT_GRANTED = "not_granted"
    WRONG_COMPANY = "wrong_company"
    SCOPE_NOT_GRANTED = "scope_not_granted"
    CATALOG_MISMATCH = "catalog_mismatch"
    REVOKED = "revoked"
    EXPIRED = "expired"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REPLAYED = "replayed"
    #: The ledger refused a transaction; the body's ``ledger_error`` names the contract error.
    LEDGER_REFUSED = "ledger_refused"
    #: The owner's account has too little ETH to pay a transaction's gas; nothing was sent.
    INSUFFICIENT_FUNDS = "insufficient_funds"
    #: Not pending any more (approve, deny) or not active (revoke).
    ALREADY_DECIDED = "already_decided"
    NOT_YOUR_REQUEST = "not_your_request"
    NOTHING_OWED = "nothing_owed"
    #: The owner's own word refuses it: a never-shared scope, a request already denied.
    CONSENT_REFUSED = "consent_refused"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RELEASES_EXHAUSTED = "releases_exhausted"
    BUDGET_EXHAUSTED = "budget_exhausted"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    SIGNING_UNAVAILABLE = "signing_unavailable"
    #: A household member's vault did not answer in time, or answered something that does not
    #: verify; nothing was released (issue 18).
    HOUSEHOLD_UNAVAILABLE = "household_unavailable"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS: dict[Code, int] = {
    Code.MALFORMED: 400,
    Code.LIST_SIZE: 400,
    Code.DUPLICATE_ID: 400,
    Code.UNAUTHORIZED: 401,
    Code.BAD_SIGNATURE: 401,
    Code.STALE_REQUEST: 401,
    Code.FORBIDDEN_HOST: 403,
    Code.NOT_GRANTED: 403,
    Code.WRONG_COMPANY: 403,
    Code.SCOPE_NOT_GRANTED: 403,
    Code.CATALOG_MISMATCH: 403,
    Code.REVOKED: 403,
    Code.EXPIRED: 403,
    Code.DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.REPLAYED: 409,
    Code.LEDGER_REFUSED: 409,
    Code.INSUFFICIENT_FUNDS: 409,
    Code.ALREADY_DECIDED: 409,
    Code.NOT_YOUR_REQUEST: 409,
    Code.NOTHING_OWED: 409,
    Code.CONSENT_REFUSED: 409,
    Code.TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.RELEASES_EXHAUSTED: 429,
    Code.BUDGET_EXHAUSTED: 429,
    Code.RATE_LIMITED: 429,
    Code.INTERNAL: 500,
    Code.LEDGER_UNAVAILABLE: 503,
    Code.SIGNING_UNAVAILABLE: 503,
    Code.HOUSEHOLD_UNAVAILABLE: 503,
}


RequestStatus = Literal["pending", "active", "expired", "denied", "cancelled", "revoked"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorPublic(_Out):
    error: Code = Field(description="machine-readable code, e.g. `revoked`")
    detail: str = Field(description="one human sentence; never owner data")
    ledger_error: str | None = Field(
        default=None, description="with `ledger_refused`: the contract's custom error name"
    )
    vault_error: str | None = Field(
        default=None,
        description="owner record routes only: the vault error's class, so the CLI raises "
        "the very error it raises in process (same message, same exit code)",
    )
    hint: str | None = Field(default=None, description="with `vault_error`: what to do")


class HealthPublic(_Out):
    status: Literal["ok", "behind"] = Field(
        description="`behind`: the ledger index is older than the daemon's freshness bound "
        "(releases answer 503 until it catches up)"
    )
    owner: str
    chain_id: int
    ledger: str
    synced_block: int
    index_lag_seconds: float = Field(description="seconds since the last completed sync round")
    head_age_seconds: float = Field(
        description="seconds since the newest block the index saw was mined"
    )
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
    matches_per_epoch: int = Field(
        default=20, ge=0, le=1_000_000,
        description="matches (POST /v1/match) one company may ask per 7-day epoch; 0 = none",
    )


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

    grant_id: int = Field(ge=0, le=JSON_SAFE_MAX, description=_ID_BOUND)
    scopes: list[ScopeName] = Field(min_length=1, max_length=64)
    nonce: str = Field(pattern=HEX32)
    issued_at: int = Field(ge=0, le=JSON_SAFE_MAX)
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


class SimilarRef(_In):
    """A ``similar`` reference with its weight (a bare string means weight 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ref: str = Field(min_length=1, max_length=200)
    weight: float = Field(ge=0, le=1)


MatchScope = Literal["match.content", "match.history"]
MatchKind = Literal["movie", "series", "video", "track", "album", "artist", "product", "other"]
ShortText = Annotated[str, Field(max_length=40)]


class MatchCandidate(_In):
    """One of a company's candidates (DESIGN.md "Match protocol"); strict, so the vault
    scores exactly the JSON the company hashed and signed."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    kind: MatchKind | None = None
    genres: list[ShortText] = Field(default_factory=list, max_length=10)
    tags: list[ShortText] = Field(default_factory=list, max_length=20)
    prior: float | None = Field(default=None, ge=0, le=1)
    similar: list[
        Annotated[
            Annotated[str, Field(min_length=1, max_length=200), Tag("str")]
            | Annotated[SimilarRef, Tag("ref")],
            # Chosen by the value's type, not by trying each: a failed attempt builds an
            # error, and a 1,000-candidate list holds up to 50,000 references.
            Discriminator(lambda value: "str" if isinstance(value, str) else "ref"),
        ]
    ] = Field(default_factory=list, max_length=50)


class MatchRequest(_In):
    """A company's signed match request. The list's size and ``k`` are checked by the
    service (400 ``list_size``), not here, so that they get their own code."""

    grant_id: int = Field(ge=0, le=JSON_SAFE_MAX, description=_ID_BOUND)
    scopes: list[MatchScope] = Field(min_length=1, max_length=2)
    # The schema states the sizes; the service refuses others with their own code.
    k: int = Field(json_schema_extra={"minimum": 1, "maximum": 10})
    candidates: list[MatchCandidate] = Field(
        json_schema_extra={"minItems": 20, "maxItems": 1000}
    )
    nonce: str = Field(pattern=HEX32)
    issued_at: int = Field(ge=0, le=JSON_SAFE_MAX)
    signature: str = Field(pattern=HEX65)


class MatchPublic(_Out):
    grant_id: int
    owner: str
    company: str
    candidates_hash: str
    k: int
    ranking: list[str]
    receipt: ReceiptPublic


class MatchPreviewBody(_In):
    """What the owner previews: a company's list (a match body's ``candidates``, or a whole
    match body) as that company would have it ranked."""

    candidates: list[MatchCandidate]
    company: str = Field(pattern=ADDRESS)
    k: int = 10
    scopes: list[MatchScope] = Field(
        default_factory=lambda: list[MatchScope](["match.history"]), min_length=1,
        max_length=2,
    )


class MatchPickPublic(_Out):
    id: str
    title: str | None
    reason: str


class MatchPreviewPublic(_Out):
    company: str
    tier: str
    epoch: int
    epsilon: float = Field(description="ε this match would cost the company, per history item")
    matches_left: int = Field(description="matches the company may still ask this epoch")
    picks: list[MatchPickPublic]


class MemberPublic(_Out):
    """One owner of a group request, as the contract last said (``approved`` so far)."""

    owner: str
    approved: bool
    share_wei: int


class CompanyHistoryPublic(_Out):
    """What a company's other requests to this owner on this ledger came to."""

    requests: int = Field(default=0, description="its other requests to this owner")
    granted: int = Field(default=0, description="of those, approved (active, expired or revoked)")
    revoked: int = Field(default=0, description="of those, grants the owner revoked")
    denied: int = Field(default=0, description="of those, denied by the owner")

    def in_words(self) -> str:
        """One sentence for the owner (the CLI's request table, the dashboard)."""
        if not self.requests:
            return "first request from this company"
        return (f"{self.requests} earlier request{'s' if self.requests != 1 else ''}: "
                f"{self.granted} granted, {self.denied} denied by you, "
                f"{self.revoked} revoked by you")


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
    members: list[MemberPublic] | None = Field(
        default=None,
        description="a group request's owners in order, who approved so far and each one's "
        "share (`price_wei` is this owner's share); null for a single owner's request",
    )
    approval_expires_at: int | None = Field(
        default=None,
        description="while the request is pending: when this owner's newest approval "
        "signature expires (unix seconds; in the past when it expired unrelayed); null when "
        "the owner has not signed",
    )
    company_name: str | None = Field(
        default=None,
        description="the name the company published on the ledger (its own words: control "
        "characters removed, length capped, never shown without `company`); null if none",
    )
    company_url: str | None = Field(
        default=None, description="the URL the company published beside its name"
    )
    company_history: CompanyHistoryPublic = Field(
        default_factory=CompanyHistoryPublic,
        description="the company's other requests to this owner on this ledger",
    )
    awaiting_relay: bool = Field(
        default=False,
        description="true while the request is pending, the owner has signed it and the "
        "signature is still valid: signed, waiting for the company to relay it",
    )
    approval_sent: bool = Field(
        default=False,
        description="true while the request is pending and the owner sent `approve` "
        "itself: waiting for the ledger to confirm it",
    )


class ApproveBody(_In):
    submit: bool = Field(
        default=False, description="true: the owner sends `approve` itself (needs gas)"
    )


class ApproveResult(_Out):
    request_id: int
    deadline: int
    signature: str
    tx_hash: str | None
    already_signed: bool = Field(
        default=False,
        description="true when the request was already signed and that signature is still "
        "valid: the same signature is returned and nothing new was signed",
    )


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


class BalancePublic(_Out):
    """The owner's money in one place: the wallet that pays gas, the ledger's balances, and
    what paying them out costs in gas at the node's current price."""

    address: str = Field(description="the owner's address: gas is paid from it, payouts go to it")
    wallet_wei: int = Field(description="ETH at the address (pays for gas)")
    owed_wei: int = Field(description="on the ledger, ready to withdraw")
    claimable_wei: int = Field(description="earned by grants, not yet claimed")
    gas_price_wei: int
    payout_gas: int = Field(description="gas to claim what is claimable and withdraw it all")
    payout_gas_wei: int = Field(description="payout_gas at gas_price_wei")
    payout_net_wei: int = Field(
        description="owed + claimable - payout_gas_wei: what paying out yields (may be < 0)"
    )


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
    note: str | None = Field(
        default=None,
        description="what an import or a forget did, in counts (never a value or a path)",
    )


class VerifyPublic(_Out):
    ok: bool
    entries: int
    first_bad_seq: int | None


class FieldPrivacyPublic(_Out):
    field: str
    vocabulary_size: int
    max_entries: int
    epsilon_per_entry: float


class ScopePrivacyPublic(_Out):
    """A noisy scope's privacy figure (docs/scopes.md, "The privacy figure")."""

    scope: str
    keep_probability: float = Field(description="the chance an entry is released as it is")
    epsilon_per_answer: float = Field(
        description="ε of a whole answer (every list full); the same for any number of "
        "answers while the truth is unchanged"
    )
    best_guess_accuracy: float = Field(
        description="how often the best guess of a true entry from a released one is right"
    )
    fields: list[FieldPrivacyPublic]


class CompanyPrivacyPublic(_Out):
    company: str
    releases: int
    scopes: list[str] = Field(description="every scope the company received")
    epochs: list[int] = Field(description="the 7-day epochs (unix time // 604800) it received in")
    entries_revealed: int = Field(description="noisy entries it was charged for")
    epsilon_spent: float
    epsilon_remaining: float | None = Field(description="null when the budget has no cap")


class PrivacyPublic(_Out):
    """What each company received and what it spent of its privacy budget (THREATS row 38)."""

    budget_epsilon: float = Field(description="ε each company may spend; 0 = no cap")
    scopes: list[ScopePrivacyPublic]
    companies: list[CompanyPrivacyPublic]


class LoginLinkPublic(_Out):
    """A one-time login to the owner dashboard (``vault open``): the daemon's own address
    plus ``path``, usable once before ``expires_at``."""

    path: str = Field(description="/login?code=…, to append to the daemon's address")
    expires_at: int


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


# --------------------------------------------------------------------------- errors ↔ codes

#: Vault error type → wire code; the first match wins (subclasses before their bases).
_CODE_OF_ERROR: tuple[tuple[type[errors.VaultError], Code], ...] = (
    (errors.SignatureInvalid, Code.BAD_SIGNATURE),
    (errors.SigningUnavailable, Code.SIGNING_UNAVAILABLE),
    (errors.AlreadyDecided, Code.ALREADY_DECIDED),
    (errors.NotYourRequest, Code.NOT_YOUR_REQUEST),
    (errors.NothingOwed, Code.NOTHING_OWED),
    (errors.ConsentError, Code.CONSENT_REFUSED),
    (errors.ContractReverted, Code.LEDGER_REFUSED),
    (errors.InsufficientFunds, Code.INSUFFICIENT_FUNDS),
    (errors.LedgerError, Code.LEDGER_UNAVAILABLE),
    (errors.NotFound, Code.NOT_FOUND),
    (errors.InputError, Code.MALFORMED),
)


def code_of(error: errors.VaultError) -> Code:
    """The wire code of a vault error (``internal`` for one the wire has no code for)."""
    if isinstance(error, errors.ReleaseRefused):
        return Code(error.code)
    for cls, code in _CODE_OF_ERROR:
        if isinstance(error, cls):
            return code
    return Code.INTERNAL


def error_of(body: ErrorPublic) -> errors.VaultError:
    """The vault error an error body stands for (the CLI's side of :func:`code_of`)."""
    detail = body.detail
    if body.error is Code.LEDGER_REFUSED:
        return errors.ContractReverted(body.ledger_error or "Reverted", {"detail": detail})
    by_code: dict[Code, type[errors.VaultError]] = {
        code: cls for cls, code in reversed(_CODE_OF_ERROR)
    }
    cls = by_code.get(body.error)
    if cls is not None and cls is not errors.ContractReverted:
        return cls(detail)
    return errors.ReleaseRefused(body.error, detail)
