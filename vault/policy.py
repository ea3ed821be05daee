"""Pure policy: may this release happen, and may this request be approved automatically?

No I/O and no clock reads: the daemon passes in the grant as its index sees it, the
verified request, ``now``, the release counters and the local revocations, and gets back a
:class:`Allow` or a :class:`Deny` carrying the wire protocol's error code. Auto-approval
rules are evaluated the same way, from the request's on-chain fields only.

The order of the release checks is part of the contract (DESIGN.md "Release protocol"): a
company learns, at each step, only what it could already know from the public ledger.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vault import privacy
from vault import scopes as catalog
from vault.grant import Grant, Status
from vault.wire import Code

SECONDS_PER_DAY = 86_400
#: ε figures are sums of rounded logarithms: a budget set to exactly such a sum must fit it.
_EPSILON_SLACK = 1e-6
_CATALOG_BITS = catalog.bitmap(s.name for s in catalog.CATALOG)
#: Scopes whose answers carry noise (and so spend the company's privacy budget).
NOISY_BITS = catalog.bitmap(s.name for s in catalog.CATALOG if s.noisy)


@dataclass(frozen=True, slots=True)
class ReleaseAsk:
    """A release request whose signature has already been verified."""

    grant_id: int
    signer: str  # checksummed address recovered from the signature
    scopes: int  # bitmap
    issued_at: int


@dataclass(frozen=True, slots=True)
class Counters:
    """What a company already received (including releases reserved but not yet logged)."""

    grant_releases: int
    company_releases_today: int
    #: ε the company was charged so far for noisy entries it received (THREATS row 38).
    company_epsilon_spent: float = 0.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The owner's per-company limits; 0 means unlimited.

    ``privacy_budget`` caps the ε one company may be charged for the noisy entries it
    receives (:func:`vault.privacy.revealed_entries`): a limit on information, not on
    requests, since an entry received again costs nothing (THREATS row 38).
    """

    company_releases_per_day: int = 0
    privacy_budget: float = 0.0


@dataclass(frozen=True, slots=True)
class Allow:
    """The release (or auto-approval) may go ahead."""


@dataclass(frozen=True, slots=True)
class Deny:
    code: Code
    detail: str


Decision = Allow | Deny
ALLOW = Allow()


def check_issued_at(issued_at: int, *, now: float, skew_seconds: int) -> Deny | None:
    """Refuse a request issued further than the skew window from ``now`` (either side)."""
    if abs(issued_at - now) > skew_seconds:
        return Deny(Code.STALE_REQUEST, "issued_at is outside the accepted clock skew window")
    return None


def check_grant(
    grant: Grant | None,
    ask: ReleaseAsk,
    *,
    owner: str,
    now: float,
    revoked_locally: Container[int],
    denied_locally: Container[int],
    catalog_hash: bytes,
    max_confirmation_age: float,
    signer_on_ledger: bool = True,
    household: bool = False,
) -> Decision:
    """The ledger checks of a release, failing closed, in the protocol's order.

    A grant whose owner is not ``owner`` (this vault's) does not exist as far as this vault
    is concerned, whatever the index holds (THREATS row 31). A signature that recovers to
    someone other than the grant's company is ``wrong_company`` when the signer is a company
    on this ledger (``signer_on_ledger``), and ``bad_signature`` otherwise: a signature made
    for another chain, another ledger, another type or another message recovers to an
    arbitrary address (THREATS rows 12, 20). A request the owner denied stays refused even if
    a relayed approval made it active first (row 33). An active grant counts only while a
    contract read confirmed it within ``max_confirmation_age`` seconds (row 32).
    A group grant (issue 18) passes only on the household path (``household``: this vault
    coordinates the members' answer or contributes to it), so no vault serves a member's
    data alone under it; that path takes group grants only.
    """
    if grant is None or grant.owner.lower() != owner.lower():
        return Deny(Code.NOT_GRANTED, "no such grant for this vault")
    if grant.company.lower() != ask.signer.lower():
        if not signer_on_ledger:
            return Deny(Code.BAD_SIGNATURE, "the signature does not verify for this grant")
        return Deny(Code.WRONG_COMPANY, "the request is not signed by the grant's company")
    if grant.id in revoked_locally or grant.status == Status.REVOKED:
        return Deny(Code.REVOKED, "the owner revoked this grant")
    if grant.id in denied_locally:
        return Deny(Code.DENIED, "the owner denied this request")
    if grant.status == Status.ACTIVE and grant.is_expired(now):
        return Deny(Code.EXPIRED, "the grant has expired")
    if grant.status != Status.ACTIVE:
        return Deny(Code.NOT_GRANTED, "the grant is not active")
    if grant.is_group and not household:
        # One member's vault answering alone would hand the company that member's data
        # under a household grant; the combined answer needs every member's vault.
        return Deny(
            Code.NOT_GRANTED,
            "this is a group grant: it is served only as one household answer from every "
            "member's vault; nothing was released",
        )
    if household and not grant.is_group:
        return Deny(Code.NOT_GRANTED, "a household contribution needs a group grant")
    if grant.confirmed_at is None or now - grant.confirmed_at > max_confirmation_age:
        return Deny(
            Code.LEDGER_UNAVAILABLE, "the vault has not yet confirmed this grant on the ledger"
        )
    if not grant.grants_all(ask.scopes):
        return Deny(Code.SCOPE_NOT_GRANTED, "a requested scope is not covered by the grant")
    if grant.catalog_hash != catalog_hash:
        return Deny(
            Code.CATALOG_MISMATCH,
            "the grant was made under a scope catalog this vault does not use",
        )
    return ALLOW


def check_limits(
    grant: Grant, ask: ReleaseAsk, *, counters: Counters, limits: Limits
) -> Decision:
    """The grant's ``maxReleases`` and the owner's per-company budgets (after the nonce).

    The privacy budget admits noisy scopes only while the most their answer could cost
    still fits, whatever it will actually cost: the decision depends on what the company
    already received and on what it asks for, never on the owner's current data, so a
    refusal cannot tell a company whether the data changed (THREATS row 38).
    """
    if grant.max_releases and counters.grant_releases >= grant.max_releases:
        return Deny(Code.RELEASES_EXHAUSTED, "the grant's maximum number of releases is used up")
    if (
        limits.company_releases_per_day
        and counters.company_releases_today >= limits.company_releases_per_day
    ):
        return Deny(Code.BUDGET_EXHAUSTED, "the daily release budget for this company is spent")
    if limits.privacy_budget and ask.scopes & NOISY_BITS:
        spent = counters.company_epsilon_spent
        most = privacy.worst_case_epsilon(ask.scopes & NOISY_BITS)
        if spent + most > limits.privacy_budget + _EPSILON_SLACK:
            return Deny(
                Code.BUDGET_EXHAUSTED,
                f"this company has spent ε {spent:.1f} of its privacy budget of ε "
                f"{limits.privacy_budget:g}, and an answer for these noisy scopes may cost up "
                f"to ε {most:.1f} more",
            )
    return ALLOW


# --- auto-approval ------------------------------------------------------------------------


#: A scope name; the JSON schema lists the catalog and the validator refuses anything else.
ScopeName = Annotated[str, Field(json_schema_extra={"enum": [s.name for s in catalog.CATALOG]})]


def _known_scopes(names: list[str]) -> list[str]:
    for name in names:
        catalog.scope(name)  # raises UnknownScope
    return names


class Rule(BaseModel):
    """Approve a request automatically when it fits entirely inside this rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    scopes: list[ScopeName] = Field(description="the request's scopes must all be in this list")
    min_price_per_day_wei: int = Field(default=0, ge=0)
    min_price_wei: int = Field(
        default=0, ge=0, description="the request's total price must be at least this"
    )
    min_duration_seconds: int = Field(
        default=SECONDS_PER_DAY,
        gt=0,
        description="shorter grants are refused: a company that keeps a snapshot pays for "
        "the whole of it, not for a minute",
    )
    max_duration_seconds: int = Field(default=30 * SECONDS_PER_DAY, gt=0)
    companies_allow: list[str] | None = Field(
        default=None, description="null: any company; else only these addresses"
    )
    companies_deny: list[str] = Field(default_factory=list)
    max_releases_at_most: int | None = Field(
        default=None, ge=1, description="null: any; else the request's maxReleases (≠ 0) ≤ this"
    )

    _check_scopes = field_validator("scopes")(_known_scopes)


class RuleSet(BaseModel):
    """The owner's auto-approval rules plus the scopes never shared, whatever a rule says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    never_share: list[ScopeName] = Field(default_factory=list)

    _check_never = field_validator("never_share")(_known_scopes)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Auto-approval's answer: ``approve`` with the matching rule, or why not."""

    approve: bool
    rule: str | None
    reason: str


def price_per_day(price: int, duration: int) -> int:
    return price * SECONDS_PER_DAY // duration if duration else 0


def _lower(addresses: Iterable[str]) -> set[str]:
    return {a.lower() for a in addresses}


def _rule_fits(rule: Rule, request: Grant) -> str | None:
    """``None`` if the request fits the rule, else the first reason it does not."""
    if request.scopes & ~catalog.bitmap(rule.scopes):
        return "asks for a scope outside the rule"
    if price_per_day(request.price, request.duration) < rule.min_price_per_day_wei:
        return "pays less per day than the rule's minimum"
    if request.price < rule.min_price_wei:
        return "pays less in total than the rule's minimum"
    if request.duration < rule.min_duration_seconds:
        return "is shorter than the rule's minimum duration"
    if request.duration > rule.max_duration_seconds:
        return "lasts longer than the rule allows"
    company = request.company.lower()
    if company in _lower(rule.companies_deny):
        return "the company is on the rule's deny list"
    if rule.companies_allow is not None and company not in _lower(rule.companies_allow):
        return "the company is not on the rule's allow list"
    if rule.max_releases_at_most is not None and not (
        0 < request.max_releases <= rule.max_releases_at_most
    ):
        return "allows more releases than the rule"
    return None


def never_shared(scopes: int, never: Iterable[str]) -> list[str]:
    """The names in bitmap ``scopes`` that the owner never shares (terms or rules)."""
    return [name for name in catalog.names_of(scopes & catalog.bitmap(never))]


def auto_approval(
    request: Grant, rules: RuleSet, *, catalog_hash: bytes, terms_never: Iterable[str] = ()
) -> Verdict:
    """Decide from the request's on-chain fields whether a rule approves it unattended.

    ``terms_never``: the scopes the owner's published terms never share; they are refused
    like the rules' own ``never_share``.
    """
    if request.status != Status.PENDING:
        return Verdict(False, None, "the request is not pending")
    if request.catalog_hash != catalog_hash:
        return Verdict(False, None, "the request commits to another scope catalog")
    if request.scopes == 0 or request.scopes & ~_CATALOG_BITS:
        return Verdict(False, None, "the request's scopes are not in the catalog")
    if never_shared(request.scopes, [*rules.never_share, *terms_never]):
        return Verdict(False, None, "the request asks for a scope the owner never shares")
    reasons = []
    for rule in rules.rules:
        why_not = _rule_fits(rule, request)
        if why_not is None:
            return Verdict(True, rule.name, f"matches rule {rule.name!r}")
        reasons.append(f"{rule.name}: {why_not}")
    if not reasons:
        return Verdict(False, None, "no auto-approval rules are set")
    return Verdict(False, None, "; ".join(reasons))
