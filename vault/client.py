"""The company SDK: find an owner's vault, ask for paid access, relay the owner's consent,
fetch derived preferences and verify the owner's receipt.

It installs with the base dependencies only (web3, eth-account, coincurve, httpx, rfc8785,
pydantic): nothing here, nor anything it imports, pulls in the owner's stack (FastAPI,
SQLModel, cryptography, Typer, Rich, eth-tester). ``tests/test_client.py`` proves it.

::

    company = Company(account, w3, ledger_address)
    request = company.request_access(owner, ["preferences.music"], duration=30 * DAY,
                                     price=10**15, purpose="playlist suggestions")
    grant = company.wait_for_grant(request, timeout=60)
    release = company.fetch(grant)          # receipt already verified
    release.preferences["preferences.music"]
    # later, from storage, with no client at all:
    verify_receipt(release, owner=grant.owner, chain_id=chain_id, ledger=ledger_address)
    request = company.request(request.id)   # a request loaded back from the ledger

Errors. Everything the SDK raises on purpose is a :class:`ClientError` (itself a
:class:`vault.errors.VaultError`) whose ``str`` is one line, ``Name: what is wrong — what to
do``; ledger failures keep their shared types (:class:`vault.errors.ContractReverted`,
:class:`vault.errors.LedgerUnavailable`), except an account too poor to pay, which is
:class:`InsufficientFunds` naming the address to fund. A vault's error answer becomes one
:class:`VaultRefused` subclass per wire code (``Revoked`` for ``revoked``, …), carrying
``status``, ``error_code`` and ``detail``. They live here, not in ``vault/errors.py``,
because only a company ever sees them: the owner's side raises ``ReleaseRefused(code)`` and
the daemon turns that into the wire code this module maps back.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

import httpx
import msgspec
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_address, to_checksum_address
from pydantic import BaseModel, ConfigDict
from web3 import Web3

from vault import errors, household, match, scopes
from vault.canonical import json_hash
from vault.eth import abi, eip712
from vault.eth import ledger as eth_ledger
from vault.eth.units import format_eth
from vault.grant import Status
from vault.wire import Code

__all__ = [
    "AccessRequest",
    "AsyncCompany",
    "BadSignature",
    "BodyTooLarge",
    "BudgetExhausted",
    "CatalogMismatch",
    "ClientError",
    "Company",
    "DuplicateId",
    "EndpointNotPublished",
    "Expired",
    "ForbiddenHost",
    "Grant",
    "GrantTimeout",
    "HouseholdMatch",
    "HouseholdReceiptInvalid",
    "HouseholdRelease",
    "HouseholdUnavailable",
    "InsufficientFunds",
    "LedgerRefused",
    "ListSize",
    "Malformed",
    "MatchResult",
    "Member",
    "MemberMatch",
    "MemberRelease",
    "NotFound",
    "NotGranted",
    "OwnerTerms",
    "RateLimited",
    "Receipt",
    "ReceiptInvalid",
    "Release",
    "ReleasesExhausted",
    "Replayed",
    "RequestClosed",
    "RequestDenied",
    "Revoked",
    "ScopeNotGranted",
    "StaleRequest",
    "Terms",
    "TermsInvalid",
    "Unauthorized",
    "UnknownRequest",
    "UnsupportedMediaType",
    "VaultInternalError",
    "VaultLedgerUnavailable",
    "VaultRefused",
    "VaultSigningUnavailable",
    "VaultUnreachable",
    "WrongCompany",
    "content_hash",
    "refusal",
    "verify_receipt",
]

Duration: TypeAlias = int | timedelta
#: The owner the ledger reports for a group request (its owners are its members).
NO_OWNER = "0x0000000000000000000000000000000000000000"


# --------------------------------------------------------------------------------------
# Errors


class ClientError(errors.VaultError):
    """Base of every error the company SDK raises on purpose.

    ``str(error)`` is one line, ``Name: what is wrong — what to do``, so that a log line or
    a traceback says both; the parts stay apart as ``error.args[0]`` and ``error.hint``.
    """

    def __str__(self) -> str:
        what = f"{type(self).__name__}: {super().__str__()}"
        return f"{what} — {self.hint}" if self.hint else what


class VaultUnreachable(ClientError):
    """No HTTP answer from the vault's endpoint (refused, timed out, not HTTP)."""

    hint = "the owner's vault may be offline; try again later"


class EndpointNotPublished(ClientError):
    """The owner never published an endpoint on the ledger."""

    hint = "ask the owner to run `vault terms publish`, or pass the endpoint URL"


class TermsInvalid(ClientError):
    """The terms a vault served do not hash to the terms hash it served with them."""

    hint = "do not rely on these terms; ask the owner to publish their terms again"


class ReceiptInvalid(ClientError):
    """A release's receipt does not prove that the grant's owner sent these preferences."""

    hint = "do not use this data; the answer did not come from the owner's vault"


class HouseholdReceiptInvalid(ReceiptInvalid):
    """A household answer (group grant) lacks a verifiable receipt from one of its members,
    or names other members than the grant's."""


class InvalidCandidates(ClientError):
    """A candidate of a match list is not one the vault accepts (a field it does not know,
    a value out of its range): nothing was signed or sent."""

    hint = ("give each candidate an id (1-64 characters) and only the fields of "
            "vault.wire.MatchCandidate, within their limits")


class RequestClosed(ClientError):
    """The request can no longer become a grant (cancelled, denied, revoked or expired)."""

    hint = "request access again; what the ledger owes you comes back with withdraw()"


class GrantTimeout(ClientError):
    """The owner did not approve within the time given to :meth:`Company.wait_for_grant`."""

    hint = "wait longer, or cancel the request to get the escrow back"


class UnknownRequest(ClientError, errors.NotFound):
    """No request with this id on the ledger (:meth:`Company.request`)."""

    hint = "check the id: the ledger numbers requests from 1, in the order they were made"


class InsufficientFunds(ClientError, errors.InsufficientFunds):
    """The company's account cannot pay a transaction (a price into escrow, gas): nothing
    was sent. The hint names the address to fund."""


class VaultRefused(ClientError):
    """The vault answered with an error body ``{"error": code, "detail": sentence}``.

    ``status`` is the HTTP status, ``error_code`` the wire code and ``detail`` the vault's
    sentence (one line of printable text: a vault cannot write to the company's terminal).
    """

    code: ClassVar[Code | None] = None
    retryable: ClassVar[bool] = False
    hint = "an answer this SDK does not know; update the SDK, or retry later"

    def __init__(self, status: int, code: str, detail: str) -> None:
        code, detail = _printable(code), _printable(detail)
        super().__init__(f"the vault refused ({status} {code}): {detail}")
        self.status = status
        self.error_code = code
        self.detail = detail


def _printable(text: str) -> str:
    """``text`` on one line, without control characters (terminal escapes)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


class Malformed(VaultRefused):
    code = Code.MALFORMED
    hint = "the vault could not read the request; use the SDK of the vault's version"


class BodyTooLarge(VaultRefused):
    code = Code.TOO_LARGE
    hint = "ask for fewer scopes, or send fewer candidates"


class ListSize(VaultRefused):
    code = Code.LIST_SIZE
    hint = "send 20 to 1,000 candidates and ask for k from 1 to 10"


class DuplicateId(VaultRefused):
    code = Code.DUPLICATE_ID
    hint = "give every candidate its own id"


class BadSignature(VaultRefused):
    code = Code.BAD_SIGNATURE
    hint = "sign with the account the grant was made to: Company(that_account, …)"


class StaleRequest(VaultRefused):
    code = Code.STALE_REQUEST
    hint = "check this machine's clock"


class Unauthorized(VaultRefused):
    code = Code.UNAUTHORIZED
    hint = "this route is not for companies; use fetch(), match() or terms()"


class NotGranted(VaultRefused):
    code = Code.NOT_GRANTED
    hint = "wait for the grant with wait_for_grant(), or request access again"


class WrongCompany(VaultRefused):
    code = Code.WRONG_COMPANY
    hint = "fetch with the account that asked for the grant"


class ScopeNotGranted(VaultRefused):
    code = Code.SCOPE_NOT_GRANTED
    hint = "ask only for scopes in the grant, or request a new grant"


class CatalogMismatch(VaultRefused):
    code = Code.CATALOG_MISMATCH
    hint = "the vault does not know the grant's scope catalog; request a new grant"


class Revoked(VaultRefused):
    code = Code.REVOKED
    hint = "the unearned part of the price is credited back: withdraw() takes it"


class Expired(VaultRefused):
    code = Code.EXPIRED
    hint = "request a new grant"


class RequestDenied(VaultRefused, RequestClosed):
    code = Code.DENIED
    hint = "the owner said no; the price is credited back: withdraw() takes it"


class ForbiddenHost(VaultRefused):
    code = Code.FORBIDDEN_HOST
    hint = "call the vault at the endpoint its owner published"


class NotFound(VaultRefused, errors.NotFound):
    code = Code.NOT_FOUND
    hint = "check the id; a vault offers an approval only once its owner approved"


class Replayed(VaultRefused):
    code = Code.REPLAYED
    hint = "send the request again: the SDK signs each one with a fresh nonce"


class LedgerRefused(VaultRefused):
    code = Code.LEDGER_REFUSED
    hint = "the detail names the contract's error"


class UnsupportedMediaType(VaultRefused):
    code = Code.UNSUPPORTED_MEDIA_TYPE
    hint = "send application/json, as the SDK does"


class ReleasesExhausted(VaultRefused):
    code = Code.RELEASES_EXHAUSTED
    hint = "the grant's max_releases are used up; request a new grant"


class BudgetExhausted(VaultRefused):
    code = Code.BUDGET_EXHAUSTED
    hint = "the owner's match or privacy budget for you is spent; waiting will not change it"


class RateLimited(VaultRefused):
    code = Code.RATE_LIMITED
    retryable = True
    hint = "slow down; fetch() and match() retry it themselves up to max_attempts"


class VaultLedgerUnavailable(VaultRefused):
    code = Code.LEDGER_UNAVAILABLE
    retryable = True
    hint = "the vault cannot confirm the grant on the ledger right now; retry later"


class VaultSigningUnavailable(VaultRefused):
    code = Code.SIGNING_UNAVAILABLE
    retryable = True
    hint = "the vault's signing process restarted while answering; retry"


class HouseholdUnavailable(VaultRefused):
    code = Code.HOUSEHOLD_UNAVAILABLE
    retryable = True
    hint = "a household member's vault did not answer; nothing was released; retry later"


class VaultInternalError(VaultRefused):
    code = Code.INTERNAL
    hint = "the vault failed while answering; retry later, or tell its owner"


_REFUSALS: dict[str, type[VaultRefused]] = {
    str(cls.code): cls
    for cls in (
        Malformed, BodyTooLarge, ListSize, DuplicateId, BadSignature, StaleRequest,
        Unauthorized, NotGranted,
        WrongCompany, ScopeNotGranted, CatalogMismatch, Revoked, Expired, RequestDenied,
        ForbiddenHost, NotFound, Replayed, LedgerRefused, UnsupportedMediaType,
        ReleasesExhausted, BudgetExhausted, RateLimited, VaultLedgerUnavailable,
        VaultSigningUnavailable, VaultInternalError, HouseholdUnavailable,
    )
}


def refusal(status: int, body: Any) -> VaultRefused:
    """The typed error for an error answer. A 503 or 429 with an unknown code stays
    retryable, so that a proxy's bare 503 is treated like the vault's own."""
    code, detail = "unknown", f"HTTP {status}"
    if isinstance(body, Mapping):
        code = str(body.get("error", code))[:64]
        detail = str(body.get("detail", detail))[:300]
    cls = _REFUSALS.get(code)
    if cls is None:
        cls = {429: RateLimited, 503: VaultLedgerUnavailable}.get(status, VaultRefused)
    return cls(status, code, detail)


# --------------------------------------------------------------------------------------
# Typed results


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Terms(_Model):
    """What an owner offers: the floor price per day, the longest grant, which scopes."""

    min_price_per_day_wei: int
    max_duration_seconds: int
    scopes_offered: list[str]
    scopes_never: list[str]
    note: str = ""
    matches_per_epoch: int = 20


class OwnerTerms(_Model):
    """An owner's terms as their vault serves them. ``published_terms_hash`` is the hash the
    owner put on the ledger with the endpoint (None when the terms came from a bare URL);
    :attr:`matches_published` says whether the served terms are the published ones."""

    owner: str
    endpoint: str | None
    terms: Terms
    terms_hash: str
    published_terms_hash: str | None = None

    @property
    def matches_published(self) -> bool:
        return self.published_terms_hash is not None and (
            self.published_terms_hash.lower() == self.terms_hash.lower()
        )


class Member(_Model):
    """One owner of a group request and the vault endpoint it published (if any)."""

    owner: str
    endpoint: str | None


class AccessRequest(_Model):
    """A request paid into escrow on the ledger, waiting for the owner.

    A group request (:meth:`Company.request_group_access`) has the zero address as its
    ``owner`` (as on the ledger), lists its owners in ``members`` and, as ``endpoint``, the
    first member's.
    """

    id: int
    owner: str
    company: str
    scopes: list[str]
    scopes_bitmap: int
    price_wei: int
    duration_seconds: int
    max_releases: int
    purpose: str
    catalog_hash: str
    endpoint: str | None
    members: list[Member] = []


class Grant(_Model):
    """An approved request: the company may fetch ``scopes`` until ``expires_at``. A group
    grant carries its ``members``; :meth:`Company.fetch` and :meth:`Company.match` on it ask
    the first member's vault, which answers for the household (:class:`HouseholdRelease`,
    :class:`HouseholdMatch`)."""

    id: int
    owner: str
    company: str
    scopes: list[str]
    starts_at: int
    expires_at: int
    max_releases: int
    endpoint: str | None
    relay_tx_hash: str | None = None
    members: list[Member] = []


class Receipt(_Model):
    content_hash: str
    issued_at: int
    signature: str


class Release(_Model):
    """Preferences released by an owner's vault, with the owner's verified receipt."""

    grant_id: int
    owner: str
    company: str
    preferences: dict[str, dict[str, Any]]
    receipt: Receipt


class MatchResult(_Model):
    """A company's candidates ranked by an owner's vault (best first), with the owner's
    verified receipt over the candidates hash and the ranking."""

    grant_id: int
    owner: str
    company: str
    candidates_hash: str
    k: int
    ranking: list[str]
    receipt: Receipt


class MemberRelease(_Model):
    """One member's part of a household release, with that member's receipt."""

    owner: str
    preferences: dict[str, dict[str, Any]]
    receipt: Receipt


class HouseholdRelease(_Model):
    """A release under a group grant: every member's preferences (docs/match.md
    "Household"), each receipt verified against that member's key."""

    grant_id: int
    company: str
    coordinator: str
    members: list[MemberRelease]


class MemberMatch(_Model):
    """A member's receipt over its part of a household match (the list, ``k``, the
    coordinator and the hash of the scores it sent the coordinator)."""

    owner: str
    scores_hash: str
    receipt: Receipt


class HouseholdMatch(MatchResult):
    """A match under a group grant: the household ranking with the coordinating member's
    (``owner``) receipt over it, and every member's receipt over its contribution."""

    members: list[MemberMatch]


Candidates: TypeAlias = Sequence[Mapping[str, Any] | BaseModel]


# --------------------------------------------------------------------------------------
# The part shared by the sync and async clients: chain calls, signing and verification


class _HasWeb3(Protocol):
    @property
    def w3(self) -> Web3: ...


def content_hash(preferences: Mapping[str, Any]) -> bytes:
    """keccak256 of the RFC 8785 canonical JSON of a release's ``preferences``."""
    return json_hash(dict(preferences))


def verify_receipt(
    answer: Release | MatchResult, *, owner: str, chain_id: int, ledger: str
) -> None:
    """Check the owner's receipt on a release or a match, as fetched or as stored long after.

    The content hash is recomputed from what the answer carries (a release's preferences; a
    match's candidates hash and ranking) and must be the receipt's; the receipt must be
    ``owner``'s EIP-712 signature over that hash, the answer's grant id and company and its
    time, in the domain of the ConsentLedger at ``ledger`` on chain ``chain_id``. Pass the
    grant's owner as the ledger has it (``grant.owner``), never the answer's own word.
    Raises :class:`ReceiptInvalid`; :meth:`Company.fetch` and :meth:`Company.match` run it
    on every answer::

        stored = Release.model_validate_json(path.read_text())
        verify_receipt(stored, owner=grant.owner, chain_id=1, ledger=LEDGER)
    """
    domain = eip712.Domain(chain_id, ledger)
    if not _same_address(answer.owner, owner):
        raise ReceiptInvalid(f"the answer names {answer.owner} as its owner, not {owner}")
    if isinstance(answer, Release):
        what, computed = "the preferences", content_hash(answer.preferences)
    else:
        what, computed = "the ranking", json_hash(
            {"candidates_hash": answer.candidates_hash, "ranking": answer.ranking}
        )
    try:
        claimed = bytes.fromhex(answer.receipt.content_hash.removeprefix("0x"))
    except ValueError:
        claimed = b""
    if claimed != computed:
        raise ReceiptInvalid(f"the receipt's content hash does not match {what}")
    try:
        digest = domain.receipt_digest(
            answer.grant_id, answer.company, computed, answer.receipt.issued_at
        )
        eip712.verify_signer(digest, answer.receipt.signature, owner)
    except (errors.SignatureInvalid, ValueError):
        raise ReceiptInvalid("the receipt is not signed by the grant's owner") from None


def _seconds(duration: Duration) -> int:
    seconds = int(duration.total_seconds()) if isinstance(duration, timedelta) else duration
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return seconds


def _join(endpoint: str, path: str) -> str:
    return endpoint.rstrip("/") + path


def _vault_url(grant: Grant, path: str) -> str:
    if grant.endpoint is None:
        raise EndpointNotPublished(f"grant {grant.id} has no vault endpoint")
    return _join(grant.endpoint, path)


def _unreachable(url: str, error: httpx.HTTPError) -> VaultUnreachable:
    return VaultUnreachable(f"no answer from {url} ({type(error).__name__})")


def _answer(response: httpx.Response) -> Any:
    """A 200 answer's JSON; the typed refusal for any other."""
    if response.status_code != 200:
        raise refusal(response.status_code, _json_or_none(response))
    return _json_or_none(response)


def _synced(health: Any, block: int) -> bool:
    """Whether a vault's ``/v1/health`` answer says its ledger index reached ``block``."""
    return isinstance(health, Mapping) and int(health.get("synced_block", -1)) >= block


#: Gas every transaction costs at least: an account holding less than this times the gas
#: price (plus the value sent) cannot pay for any transaction.
_INTRINSIC_GAS = 21_000

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Retry:
    """Which refused releases and matches are sent again, and after how long: transient
    answers (``rate_limited``, ``ledger_unavailable``, ``signing_unavailable``, a bare 429
    or 503) up to ``max_attempts`` in all, after the vault's ``Retry-After`` or exponential
    backoff with jitter, never more than ``max_backoff`` seconds."""

    max_attempts: int
    backoff: float
    max_backoff: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, response: httpx.Response) -> float:
        """Seconds to wait before sending again after failed attempt number ``attempt``;
        raises the typed refusal when waiting will not help or the attempts are spent."""
        refused = refusal(response.status_code, _json_or_none(response))
        if not refused.retryable or attempt >= self.max_attempts:
            raise refused
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(self.max_backoff, float(retry_after))
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


#: A signed body as sent: written by msgspec (a 100-candidate match in 0.17 ms, where the
#: json module took 1.25).
_JSON = {"content-type": "application/json"}
_encoded = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class _Call(Generic[_T]):
    """One signed POST to a vault: ``signed()`` makes a fresh body (a new nonce) for each
    attempt, with the check of the answer to that body."""

    url: str
    signed: Callable[[], tuple[dict[str, Any], Callable[[Any], _T]]]


class _Core:
    """The account, the ledger and the clock, the bodies the company signs and the checks of
    what vaults answer; no HTTP (the clients do the I/O, each its own way)."""

    def __init__(
        self,
        account: LocalAccount,
        chain_or_w3: Web3 | _HasWeb3,
        ledger_address: str,
        *,
        clock: Callable[[], float],
    ) -> None:
        w3 = chain_or_w3 if isinstance(chain_or_w3, Web3) else chain_or_w3.w3
        self.account = account
        self.ledger = eth_ledger.LedgerClient(w3, ledger_address, sender=account)
        self.clock = clock

    @property
    def address(self) -> str:
        return str(self.account.address)

    def published(self, owner: str) -> tuple[str, str] | None:
        """The owner's latest ``(endpoint, terms_hash)`` from EndpointPublished events."""
        w3 = self.ledger.w3
        topics: list[Any] = [
            "0x" + abi.codec().event_topics["EndpointPublished"].hex(),
            "0x" + eip712.address_bytes(to_checksum_address(owner)).rjust(32, b"\0").hex(),
        ]
        logs = eth_ledger.call_node(
            w3,
            lambda: w3.eth.get_logs(
                {"address": self.ledger.address, "topics": topics, "fromBlock": 0,
                 "toBlock": "latest"}
            ),
        )
        for log in reversed(logs):
            event = abi.codec().decode_log(log)
            if event is not None:
                return str(event.args["url"]), "0x" + bytes(event.args["termsHash"]).hex()
        return None

    def vault_of(self, owner_or_endpoint: str) -> tuple[str, str | None]:
        """The vault's URL and the terms hash its owner published with it, from an owner's
        address (on the ledger); a URL is taken as it is, with no published hash."""
        if not is_address(owner_or_endpoint):
            return owner_or_endpoint, None
        found = self.published(owner_or_endpoint)
        if found is None:
            raise EndpointNotPublished(f"{owner_or_endpoint} has not published a vault endpoint")
        return found

    def transact(self, what: str, send: Callable[[], _T], *, price: int = 0) -> _T:
        """Run ledger transaction ``send`` from the company's account. An account that cannot
        pay ``price`` and the gas gets one :class:`InsufficientFunds` naming the address to
        fund, checked before anything is sent (every backend) and as the node answers."""
        held = self.ledger.balance_of(self.address)
        if held < price + _INTRINSIC_GAS * self.ledger.gas_price():
            raise self._short_of_funds(what, held, price)
        try:
            return send()
        except errors.InsufficientFunds:
            raise self._short_of_funds(
                what, self.ledger.balance_of(self.address), price
            ) from None

    def _short_of_funds(self, what: str, held: int, price: int) -> InsufficientFunds:
        cost = f"the price of {format_eth(price)} and the gas" if price else "the gas"
        return InsufficientFunds(
            f"{self.address} holds {format_eth(held)}, too little to pay {cost} of {what}",
            hint=f"send ETH to {self.address}, then try again",
        )

    def load_request(self, request_id: int) -> AccessRequest:
        """Request ``request_id`` as the ledger holds it: its stored state, the catalog hash
        and purpose from its request event, the endpoints its owners published."""
        try:
            state = self.ledger.get_request(request_id)
        except errors.ContractReverted as reverted:
            if reverted.name != "UnknownRequest":
                raise
            raise UnknownRequest(
                f"request {request_id} is not on the ledger at {self.ledger.address}"
            ) from None
        requested = self._requested_event(request_id)
        members = [
            Member(owner=m.owner, endpoint=self._endpoint_or_none(m.owner))
            for m in state.members
        ]
        return AccessRequest(
            id=request_id,
            owner=state.owner,
            company=state.company,
            scopes=scopes.names_of(state.scopes),
            scopes_bitmap=state.scopes,
            price_wei=state.price,
            duration_seconds=state.duration,
            max_releases=state.max_releases,
            purpose=str(requested.args["purpose"]),
            catalog_hash="0x" + bytes(requested.args["catalogHash"]).hex(),
            endpoint=members[0].endpoint if members else self._endpoint_or_none(state.owner),
            members=members,
        )

    def _requested_event(self, request_id: int) -> abi.LedgerEvent:
        w3 = self.ledger.w3
        topics: list[Any] = [None, "0x" + request_id.to_bytes(32, "big").hex()]
        logs = eth_ledger.call_node(
            w3,
            lambda: w3.eth.get_logs(
                {"address": self.ledger.address, "topics": topics, "fromBlock": 0,
                 "toBlock": "latest"}
            ),
        )
        for log in logs:
            event = abi.codec().decode_log(log)
            if event is not None and event.name in ("AccessRequested", "GroupAccessRequested"):
                return event
        raise UnknownRequest(f"the ledger holds request {request_id} but not its request event")

    def _endpoint_or_none(self, owner: str) -> str | None:
        found = self.published(owner)
        return found[0] if found else None

    def request_access(
        self,
        owner: str,
        names: Sequence[str],
        duration: Duration,
        price: int,
        purpose: str,
        max_releases: int,
        endpoint: str | None,
    ) -> AccessRequest:
        bits = scopes.bitmap(names)
        seconds = _seconds(duration)
        catalog = scopes.catalog_hash()
        checksummed = to_checksum_address(owner)
        if endpoint is None:
            endpoint = self._endpoint_or_none(checksummed)
        request_id = self.transact(
            "this request",
            lambda: self.ledger.request_access(
                checksummed,
                bits,
                seconds,
                price=price,
                max_releases=max_releases,
                catalog_hash=catalog,
                purpose=purpose,
            ),
            price=price,
        )
        return AccessRequest(
            id=request_id,
            owner=checksummed,
            company=self.address,
            scopes=scopes.names_of(bits),
            scopes_bitmap=bits,
            price_wei=price,
            duration_seconds=seconds,
            max_releases=max_releases,
            purpose=purpose,
            catalog_hash="0x" + catalog.hex(),
            endpoint=endpoint,
        )

    def request_group_access(
        self,
        members: Sequence[Member],
        names: Sequence[str],
        duration: Duration,
        price: int,
        purpose: str,
        max_releases: int,
    ) -> AccessRequest:
        bits = scopes.bitmap(names)
        seconds = _seconds(duration)
        catalog = scopes.catalog_hash()
        request_id = self.transact("this request", lambda: self.ledger.request_group_access(
            [m.owner for m in members], bits, seconds, price=price, max_releases=max_releases,
            catalog_hash=catalog, purpose=purpose,
        ), price=price)
        return AccessRequest(
            id=request_id,
            owner=NO_OWNER,
            company=self.address,
            scopes=scopes.names_of(bits),
            scopes_bitmap=bits,
            price_wei=price,
            duration_seconds=seconds,
            max_releases=max_releases,
            purpose=purpose,
            catalog_hash="0x" + catalog.hex(),
            endpoint=members[0].endpoint,
            members=list(members),
        )

    def awaited_endpoints(self, request: AccessRequest) -> list[str]:
        """Where approvals still to relay may be offered: the owner's vault, or for a group
        the vault of every member whose approval the ledger does not hold yet."""
        if not request.members:
            return [] if request.endpoint is None else [request.endpoint]
        approved = {m.owner for m in self.ledger.get_request(request.id).members if m.approved}
        return [m.endpoint for m in request.members
                if m.endpoint is not None and m.owner not in approved]

    def grant_if_active(self, request: AccessRequest, relay_tx_hash: str | None) -> Grant | None:
        """The grant when the request is Active on chain, None while Pending; raises
        :class:`RequestClosed` when it can never become one."""
        state = self.ledger.get_request(request.id)
        if state.status is Status.PENDING:
            return None
        if state.status is Status.DENIED:
            raise RequestDenied(403, Code.DENIED, f"the owner denied request {request.id}")
        if state.status is not Status.ACTIVE:
            raise RequestClosed(f"request {request.id} is {state.status.name.lower()}")
        return Grant(
            id=request.id,
            owner=state.owner,
            company=state.company,
            scopes=scopes.names_of(state.scopes),
            starts_at=state.starts_at,
            expires_at=state.starts_at + state.duration,  # active: starts_at is set
            max_releases=state.max_releases,
            endpoint=request.endpoint,
            relay_tx_hash=relay_tx_hash,
            members=request.members,
        )

    def head(self) -> int:
        w3 = self.ledger.w3
        return int(eth_ledger.call_node(w3, lambda: w3.eth.block_number))

    def relay(
        self, request: AccessRequest, approval: Mapping[str, Any]
    ) -> tuple[Grant, int] | None:
        """Send an owner's signed approval (``approveBySig``); if someone else already
        did, the chain's state decides. Returns the grant and a block it is active at; for a
        group, ``None`` while other members have still to approve."""
        try:
            request_id = int(approval["request_id"])
            deadline = int(approval["deadline"])
            signature = bytes.fromhex(str(approval["signature"]).removeprefix("0x"))
        except (KeyError, TypeError, ValueError):
            raise Malformed(200, "malformed", "the vault offered an unreadable approval") from None
        if request_id != request.id:
            raise Malformed(200, "malformed", "the vault offered an approval for another request")
        tx_hash: str | None = None
        try:
            outcome = self.transact(
                "relaying the approval",
                lambda: self.ledger.approve_by_sig(request.id, deadline, signature),
            )
            tx_hash = "0x" + outcome.transaction_hash.hex()
            block = outcome.block_number
        except errors.ContractReverted as reverted:
            # Someone (the owner, or another relayer) was faster: the chain decides below.
            if reverted.name not in ("RequestNotPending", "AlreadyApproved"):
                raise
            block = self.head()
        grant = self.grant_if_active(request, tx_hash)
        if grant is None and request.members:
            return None
        if grant is None:
            raise RequestClosed(f"request {request.id} stayed pending after approveBySig")
        return grant, block

    def poll(self, request: AccessRequest) -> tuple[Grant, int] | None:
        """The grant and a block it is active at, if it is active now."""
        block = self.head()
        grant = self.grant_if_active(request, None)
        return None if grant is None else (grant, block)

    def cancel(self, request: AccessRequest) -> str:
        outcome = self.transact("cancelling", lambda: self.ledger.cancel(request.id))
        return "0x" + outcome.transaction_hash.hex()

    def withdraw(self) -> int:
        return self.transact("the withdrawal", self.ledger.withdraw)

    def release_call(
        self, grant: Grant, names: Sequence[str] | None
    ) -> _Call[Release | HouseholdRelease]:
        url = _vault_url(grant, "/v1/release")

        def check(body: Any) -> Release | HouseholdRelease:
            if grant.members:  # a group grant: every member's receipt
                return self.verify_household_release(grant, body)
            return self.verify_release(grant, body)

        return _Call(url, lambda: (self.release_body(grant, names), check))

    def match_call(
        self, grant: Grant, candidates: Candidates, k: int, names: Sequence[str] | None
    ) -> _Call[MatchResult | HouseholdMatch]:
        url = _vault_url(grant, "/v1/match")

        def signed() -> tuple[dict[str, Any], Callable[[Any], MatchResult | HouseholdMatch]]:
            sent, listed_hash = self.match_body(grant, candidates, k, names)
            ids = {str(c["id"]) for c in sent["candidates"]}

            def check(body: Any) -> MatchResult | HouseholdMatch:
                if grant.members:  # a group grant: ranked for the household
                    return self.verify_household_match(grant, body, listed_hash, ids)
                return self.verify_match(grant, body, listed_hash, ids)

            return sent, check

        return _Call(url, signed)

    def release_body(self, grant: Grant, names: Sequence[str] | None) -> dict[str, Any]:
        """A signed ``POST /v1/release`` body with a fresh nonce."""
        wanted = list(names) if names is not None else list(grant.scopes)
        nonce = os.urandom(32)
        issued_at = int(self.clock())
        signature = eip712.sign_release(
            self.account.key, self.ledger.domain, grant.id, scopes.bitmap(wanted), nonce,
            issued_at,
        )
        return {
            "grant_id": grant.id,
            "scopes": wanted,
            "nonce": "0x" + nonce.hex(),
            "issued_at": issued_at,
            "signature": "0x" + signature.hex(),
        }

    def match_body(
        self, grant: Grant, candidates: Candidates, k: int, names: Sequence[str] | None
    ) -> tuple[dict[str, Any], bytes]:
        """A signed ``POST /v1/match`` body with a fresh nonce, and its candidates hash.
        ``names`` defaults to the match scopes the grant holds."""
        # Read as the vault reads them, so a candidate it would refuse is refused here,
        # before anything is signed, and hashed as it hashes them (RFC 8785).
        try:
            read = match.read_candidates([
                c.model_dump(exclude_unset=True) if isinstance(c, BaseModel) else dict(c)
                for c in candidates
            ])
        except match.Malformed as invalid:
            raise InvalidCandidates(f"a candidate is not one the vault accepts: {invalid}"
                                    ) from None
        listed = match.as_json_value(read)
        wanted = list(names) if names is not None else [
            n for n in grant.scopes if n in match.SCOPES
        ]
        listed_hash = match.candidates_hash(read)
        nonce = os.urandom(32)
        issued_at = int(self.clock())
        signature = eip712.sign_match(
            self.account.key, self.ledger.domain, grant.id, scopes.bitmap(wanted),
            listed_hash, k, nonce, issued_at,
        )
        body = {
            "grant_id": grant.id, "scopes": wanted, "k": k, "candidates": listed,
            "nonce": "0x" + nonce.hex(), "issued_at": issued_at,
            "signature": "0x" + signature.hex(),
        }
        return body, listed_hash

    def verify_match(self, grant: Grant, body: Any, listed_hash: bytes, ids: set[str]
                     ) -> MatchResult:
        """Parse a 200 match answer and check it: this grant and company, the list sent,
        ``k`` distinct ids of it, and the owner's receipt over the candidates hash and the
        ranking."""
        try:
            result = MatchResult.model_validate(body)
        except ValueError:
            raise ReceiptInvalid("the vault's answer is not a match") from None
        if (
            result.grant_id != grant.id
            or not _same_address(result.owner, grant.owner)
            or not _same_address(result.company, self.address)
            or result.candidates_hash.lower() != "0x" + listed_hash.hex()
        ):
            raise ReceiptInvalid(f"the match is not for this list under grant {grant.id}")
        if (len(result.ranking) != result.k or len(set(result.ranking)) != result.k
                or not set(result.ranking) <= ids):
            raise ReceiptInvalid("the ranking is not k distinct candidates of the list")
        self.verify_receipt(result, grant.owner)
        return result

    def verify_release(self, grant: Grant, body: Any) -> Release:
        """Parse a 200 answer and check its receipt: the content hash recomputed from the
        preferences, the receipt signed by the grant's owner over this grant and company."""
        try:
            release = Release.model_validate(body)
        except ValueError:
            raise ReceiptInvalid("the vault's answer is not a release") from None
        if (
            release.grant_id != grant.id
            or not _same_address(release.owner, grant.owner)
            or not _same_address(release.company, self.address)
        ):
            raise ReceiptInvalid(f"the release is not for grant {grant.id} of this company")
        self.verify_receipt(release, grant.owner)
        return release

    def verify_receipt(self, answer: Release | MatchResult, owner: str) -> None:
        """:func:`verify_receipt` on this ledger."""
        verify_receipt(answer, owner=owner, chain_id=self.ledger.chain_id,
                       ledger=self.ledger.address)

    # --- group grants: one answer, every member's receipt (docs/match.md "Household") ---

    def verify_household_release(self, grant: Grant, body: Any) -> HouseholdRelease:
        """Parse a household release and check it: this grant and company, exactly the
        grant's members in its order, and each member's receipt over its own preferences,
        signed by that member."""
        try:
            release = HouseholdRelease.model_validate(body)
        except ValueError:
            raise HouseholdReceiptInvalid("the vault's answer is not a household release"
                                          ) from None
        self._check_household(grant, release.grant_id, release.company, release.coordinator,
                              [m.owner for m in release.members])
        for member in release.members:
            self._check_member_receipt(grant, member.owner, member.receipt,
                                       content_hash(member.preferences))
        return release

    def verify_household_match(
        self, grant: Grant, body: Any, listed_hash: bytes, ids: set[str]
    ) -> HouseholdMatch:
        """Parse a household match and check it: this grant, company and list, ``k``
        distinct ids of it, the coordinator's receipt over the candidates hash and the
        ranking, and every member's receipt over its contribution (the list, ``k``, the
        coordinator, its scores' hash), each signed by that member."""
        try:
            result = HouseholdMatch.model_validate(body)
        except ValueError:
            raise HouseholdReceiptInvalid("the vault's answer is not a household match"
                                          ) from None
        listed_hex = "0x" + listed_hash.hex()
        self._check_household(grant, result.grant_id, result.company, result.owner,
                              [m.owner for m in result.members])
        if result.candidates_hash.lower() != listed_hex:
            raise HouseholdReceiptInvalid(f"the match is not for this list under grant {grant.id}")
        if (len(result.ranking) != result.k or len(set(result.ranking)) != result.k
                or not set(result.ranking) <= ids):
            raise HouseholdReceiptInvalid("the ranking is not k distinct candidates of the list")
        self._check_member_receipt(
            grant, result.owner, result.receipt,
            json_hash({"candidates_hash": result.candidates_hash, "ranking": result.ranking}),
        )
        for member in result.members:
            statement = household.match_statement(
                listed_hex, coordinator=result.owner, k=result.k,
                scores_digest=member.scores_hash,
            )
            self._check_member_receipt(grant, member.owner, member.receipt, json_hash(statement))
        return result

    def _check_household(
        self, grant: Grant, grant_id: int, company: str, coordinator: str, owners: list[str]
    ) -> None:
        expected = [m.owner for m in grant.members]
        if grant_id != grant.id or not _same_address(company, self.address):
            raise HouseholdReceiptInvalid(f"the answer is not for grant {grant.id} of this "
                                          "company")
        if len(owners) != len(expected) or not all(
            _same_address(a, b) for a, b in zip(owners, expected, strict=True)
        ):
            raise HouseholdReceiptInvalid("the answer does not carry exactly one part per "
                                          "member of the grant")
        if not any(_same_address(coordinator, owner) for owner in expected):
            raise HouseholdReceiptInvalid("the coordinating vault is not a member of the grant")

    def _check_member_receipt(
        self, grant: Grant, owner: str, receipt: Receipt, computed: bytes
    ) -> None:
        if receipt.content_hash.lower() != "0x" + computed.hex():
            raise HouseholdReceiptInvalid(
                f"member {owner}'s receipt does not cover what it contributed"
            )
        digest = self.ledger.domain.receipt_digest(
            grant.id, self.address, computed, receipt.issued_at
        )
        try:
            eip712.verify_signer(digest, receipt.signature, owner)
        except (errors.SignatureInvalid, ValueError):
            raise HouseholdReceiptInvalid(
                f"member {owner}'s receipt is not signed by that member"
            ) from None


def _endpoints_of(grant: Grant) -> list[str]:
    """The vaults that must have synced a grant before it is used: every member's."""
    if grant.members:
        return [m.endpoint for m in grant.members if m.endpoint is not None]
    return [] if grant.endpoint is None else [grant.endpoint]


def _same_address(a: str, b: str) -> bool:
    return is_address(a) and is_address(b) and a.lower() == b.lower()


def _terms_from(body: Any, published: str | None, endpoint: str) -> OwnerTerms:
    try:
        served = OwnerTerms.model_validate({**dict(body), "published_terms_hash": published})
    except (TypeError, ValueError):
        raise TermsInvalid(f"{endpoint} did not answer with terms") from None
    recomputed = "0x" + json_hash(served.terms.model_dump()).hex()
    if recomputed.lower() != served.terms_hash.lower():
        raise TermsInvalid(f"{endpoint} served terms that do not match their own hash")
    return served


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------
# The synchronous client


class Company:
    """A company's side of the consent ledger, for one account.

    ``chain_or_w3`` is a ``Web3`` or anything with a ``w3`` attribute (a
    :mod:`vault.eth.chain` backend). ``transport`` replaces httpx's network transport, e.g.
    ``httpx.ASGITransport(app)`` to talk to an in-process daemon. :meth:`fetch` and
    :meth:`match` send a transient 429 or 503 again (``rate_limited``,
    ``ledger_unavailable``, ``signing_unavailable``, or an unknown code), each time with a
    fresh nonce, up to ``max_attempts`` in all, after the vault's ``Retry-After`` or
    exponential backoff with jitter (``backoff_seconds`` doubling, at most
    ``max_backoff_seconds``); every other answer is raised at once.
    """

    def __init__(
        self,
        account: LocalAccount,
        chain_or_w3: Web3 | _HasWeb3,
        ledger_address: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 5.0,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retry = _Retry(max_attempts, backoff_seconds, max_backoff_seconds)
        self._core = _Core(account, chain_or_w3, ledger_address, clock=clock)
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self._poll_interval = poll_interval

    @property
    def address(self) -> str:
        """The company's checksummed address."""
        return self._core.address

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Company:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Company({self.address})"

    def _get(self, url: str) -> Any:
        try:
            return _answer(self._http.get(url))
        except httpx.HTTPError as error:
            raise _unreachable(url, error) from None

    def _send(self, call: _Call[_T]) -> _T:
        """POST ``call`` until it is answered 200 (checked) or refused for good."""
        attempt = 0
        while True:
            attempt += 1
            body, check = call.signed()
            try:
                response = self._http.post(call.url, content=_encoded(body), headers=_JSON)
            except httpx.HTTPError as error:
                raise _unreachable(call.url, error) from None
            if response.status_code == 200:
                return check(_json_or_none(response))
            time.sleep(self._retry.delay(attempt, response))

    def endpoint_of(self, owner: str) -> str:
        """The vault URL the owner published on the ledger (latest wins)."""
        found = self._core.published(owner)
        if found is None:
            raise EndpointNotPublished(f"{owner} has not published a vault endpoint")
        return found[0]

    def terms(self, owner_or_endpoint: str) -> OwnerTerms:
        """The owner's terms, from an owner address (looked up on the ledger) or a URL."""
        endpoint, published = self._core.vault_of(owner_or_endpoint)
        return _terms_from(self._get(_join(endpoint, "/v1/terms")), published, endpoint)

    def request_access(
        self,
        owner: str,
        scopes: Sequence[str],
        duration: Duration,
        price: int,
        purpose: str,
        max_releases: int = 0,
        *,
        endpoint: str | None = None,
    ) -> AccessRequest:
        """Pay ``price`` wei into escrow for ``scopes`` over ``duration`` (seconds or a
        timedelta). ``endpoint`` defaults to the one the owner published, if any. An account
        that cannot pay the price and the gas gets :class:`InsufficientFunds`."""
        return self._core.request_access(
            owner, scopes, duration, price, purpose, max_releases, endpoint
        )

    def request_group_access(
        self,
        owners: Sequence[str],
        scopes: Sequence[str],
        duration: Duration,
        price: int,
        purpose: str,
        max_releases: int = 0,
    ) -> AccessRequest:
        """Ask 2 to 6 ``owners`` together (a household), paying ``price`` wei into escrow,
        shared equally among them (the remainder to the first). Each member's endpoint is
        the one it published; :meth:`wait_for_grant` relays every member's approval."""
        members = []
        for owner in owners:
            found = self._core.published(owner)
            members.append(Member(owner=to_checksum_address(owner),
                                  endpoint=found[0] if found else None))
        return self._core.request_group_access(
            members, scopes, duration, price, purpose, max_releases
        )

    def request(self, request_id: int) -> AccessRequest:
        """Request ``request_id`` loaded from the ledger, e.g. to wait for it again after a
        restart; :class:`UnknownRequest` if the ledger has none by that id."""
        return self._core.load_request(request_id)

    def wait_for_grant(
        self, request: AccessRequest, timeout: float = 60.0, *, vault_synced: bool = True
    ) -> Grant:
        """Block until the request is a grant: relays the owner's signed approval as soon
        as the vault offers it (for a group, every member's, each from its own vault), or
        notices the owners approved on chain themselves.

        With ``vault_synced`` it then waits (within the same ``timeout``) until the vault's
        ledger index (every member's, for a group) has reached the approval's block, so
        that the first :meth:`fetch` is not refused ``not_granted`` by a vault that has not
        seen the approval yet.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self._core.poll(request)
            for endpoint in [] if found is not None else self._core.awaited_endpoints(request):
                try:
                    approval = self._get(_join(endpoint, f"/v1/requests/{request.id}/approval"))
                except (NotFound, VaultUnreachable, VaultLedgerUnavailable):
                    continue
                found = self._core.relay(request, approval)
            if found is not None:
                grant, block = found
                if vault_synced:
                    for endpoint in _endpoints_of(grant):
                        self._await_index(endpoint, block, deadline)
                return grant
            if time.monotonic() >= deadline:
                raise GrantTimeout(f"request {request.id} was not approved within {timeout:g} s")
            time.sleep(self._poll_interval)

    def _await_index(self, endpoint: str, block: int, deadline: float) -> None:
        """Until the vault reports ``synced_block >= block``, or the deadline passes."""
        while time.monotonic() < deadline:
            try:
                health = self._get(_join(endpoint, "/v1/health"))
            except ClientError:
                health = None
            if _synced(health, block):
                return
            time.sleep(self._poll_interval)

    def fetch(
        self, grant: Grant, scopes: Sequence[str] | None = None
    ) -> Release | HouseholdRelease:
        """Fetch ``scopes`` (default: all granted) and verify the owner's receipt
        (:func:`verify_receipt`; under a group grant every member's,
        :class:`HouseholdRelease`); transient refusals are retried."""
        return self._send(self._core.release_call(grant, scopes))

    def match(
        self,
        grant: Grant,
        candidates: Candidates,
        k: int = 10,
        *,
        scopes: Sequence[str] | None = None,
    ) -> MatchResult | HouseholdMatch:
        """Have the owner's vault rank ``candidates`` (20-1,000, DESIGN.md "Match
        protocol") for the person; the best ``k`` come back, with a verified receipt (under
        a group grant: ranked for the household, every member's receipt verified,
        :class:`HouseholdMatch`). Retried like :meth:`fetch`. :class:`InvalidCandidates`
        before anything is sent for a candidate the vault would refuse."""
        return self._send(self._core.match_call(grant, candidates, k, scopes))

    def cancel(self, request: AccessRequest) -> str:
        """Cancel a pending request; its full price is credited back. Returns the tx hash."""
        return self._core.cancel(request)

    def owed(self) -> int:
        """Wei credited to this company (refunds) and not yet withdrawn."""
        return self._core.ledger.owed(self.address)

    def withdraw(self) -> int:
        """Withdraw every credited wei (refunds of cancelled, denied, revoked requests);
        :class:`vault.errors.ContractReverted` ``NothingOwed`` when there is none."""
        return self._core.withdraw()

    def describe(self, name: str, url: str = "") -> str:
        """Publish the name this company goes by and its web address on the ledger (event
        ``CompanyDescribed``); the vaults it asks show the name beside its address. The name
        is 1 to 64 bytes of UTF-8, the URL at most 256 (else
        :class:`vault.errors.ContractReverted` ``InvalidCompanyName`` / ``CompanyUrlTooLong``,
        before anything is sent). The transaction hash."""
        core = self._core
        outcome = core.transact("describing the company",
                                lambda: core.ledger.describe_company(name, url))
        return "0x" + outcome.transaction_hash.hex()


# --------------------------------------------------------------------------------------
# The asynchronous client: many vaults at once


class AsyncCompany:
    """The async variant, for fetching from many vaults concurrently.

    At most ``max_concurrency`` releases and matches are in flight; transient refusals are
    retried as :class:`Company` retries them (a backing-off call holds no slot). Ledger
    operations run the sync client's code in a worker thread.
    """

    def __init__(
        self,
        account: LocalAccount,
        chain_or_w3: Web3 | _HasWeb3,
        ledger_address: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_concurrency: int = 16,
        max_attempts: int = 5,
        backoff_seconds: float = 0.1,
        max_backoff_seconds: float = 5.0,
        poll_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._retry = _Retry(max_attempts, backoff_seconds, max_backoff_seconds)
        self._core = _Core(account, chain_or_w3, ledger_address, clock=clock)
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._limit = asyncio.Semaphore(max_concurrency)
        self._poll_interval = poll_interval

    @property
    def address(self) -> str:
        return self._core.address

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncCompany:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncCompany({self.address})"

    async def _get(self, url: str) -> Any:
        try:
            return _answer(await self._http.get(url))
        except httpx.HTTPError as error:
            raise _unreachable(url, error) from None

    async def _send(self, call: _Call[_T]) -> _T:
        """:meth:`Company._send` under the concurrency bound."""
        attempt = 0
        while True:
            attempt += 1
            body, check = call.signed()
            async with self._limit:
                try:
                    response = await self._http.post(call.url, content=_encoded(body),
                                                     headers=_JSON)
                except httpx.HTTPError as error:
                    raise _unreachable(call.url, error) from None
            if response.status_code == 200:
                return check(_json_or_none(response))
            # Sleep outside the semaphore so a backing-off call does not hold a slot.
            await asyncio.sleep(self._retry.delay(attempt, response))

    async def terms(self, owner_or_endpoint: str) -> OwnerTerms:
        endpoint, published = await asyncio.to_thread(self._core.vault_of, owner_or_endpoint)
        return _terms_from(await self._get(_join(endpoint, "/v1/terms")), published, endpoint)

    async def request_access(
        self,
        owner: str,
        scopes: Sequence[str],
        duration: Duration,
        price: int,
        purpose: str,
        max_releases: int = 0,
        *,
        endpoint: str | None = None,
    ) -> AccessRequest:
        return await asyncio.to_thread(
            self._core.request_access, owner, scopes, duration, price, purpose, max_releases,
            endpoint,
        )

    async def request(self, request_id: int) -> AccessRequest:
        """:meth:`Company.request`."""
        return await asyncio.to_thread(self._core.load_request, request_id)

    async def wait_for_grant(
        self, request: AccessRequest, timeout: float = 60.0, *, vault_synced: bool = True
    ) -> Grant:
        """:meth:`Company.wait_for_grant`, without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            found = await asyncio.to_thread(self._core.poll, request)
            awaited = [] if found is not None else await asyncio.to_thread(
                self._core.awaited_endpoints, request
            )
            for endpoint in awaited:
                try:
                    approval = await self._get(
                        _join(endpoint, f"/v1/requests/{request.id}/approval")
                    )
                except (NotFound, VaultUnreachable, VaultLedgerUnavailable):
                    continue
                found = await asyncio.to_thread(self._core.relay, request, approval)
            if found is not None:
                grant, block = found
                if vault_synced:
                    for endpoint in _endpoints_of(grant):
                        await self._await_index(endpoint, block, deadline)
                return grant
            if time.monotonic() >= deadline:
                raise GrantTimeout(f"request {request.id} was not approved within {timeout:g} s")
            await asyncio.sleep(self._poll_interval)

    async def _await_index(self, endpoint: str, block: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                health = await self._get(_join(endpoint, "/v1/health"))
            except ClientError:
                health = None
            if _synced(health, block):
                return
            await asyncio.sleep(self._poll_interval)

    async def fetch(
        self, grant: Grant, scopes: Sequence[str] | None = None
    ) -> Release | HouseholdRelease:
        """One release, under the concurrency bound, retried on transient 429/503."""
        return await self._send(self._core.release_call(grant, scopes))

    async def match(
        self,
        grant: Grant,
        candidates: Candidates,
        k: int = 10,
        *,
        scopes: Sequence[str] | None = None,
    ) -> MatchResult | HouseholdMatch:
        """:meth:`Company.match` under the concurrency bound, retried like :meth:`fetch`."""
        return await self._send(self._core.match_call(grant, candidates, k, scopes))

    async def match_many(
        self, grants: Iterable[Grant], candidates: Candidates, k: int = 10
    ) -> list[MatchResult | HouseholdMatch | ClientError]:
        """The same list ranked by every grant's vault concurrently; results in the grants'
        order, a :class:`ClientError` in place of each match that failed."""

        async def one(grant: Grant) -> MatchResult | HouseholdMatch | ClientError:
            try:
                return await self.match(grant, candidates, k)
            except ClientError as error:
                return error

        return list(await asyncio.gather(*(one(g) for g in grants)))

    async def fetch_many(
        self, grants: Iterable[Grant], scopes: Sequence[str] | None = None
    ) -> list[Release | HouseholdRelease | ClientError]:
        """Fetch from every grant's vault concurrently; results in the grants' order, a
        :class:`ClientError` in place of each release that failed."""

        async def one(grant: Grant) -> Release | HouseholdRelease | ClientError:
            try:
                return await self.fetch(grant, scopes)
            except ClientError as error:
                return error

        return list(await asyncio.gather(*(one(g) for g in grants)))

    async def cancel(self, request: AccessRequest) -> str:
        return await asyncio.to_thread(self._core.cancel, request)

    async def owed(self) -> int:
        return await asyncio.to_thread(self._core.ledger.owed, self.address)

    async def withdraw(self) -> int:
        return await asyncio.to_thread(self._core.withdraw)

    async def describe(self, name: str, url: str = "") -> str:
        """:meth:`Company.describe`."""
        core = self._core
        outcome = await asyncio.to_thread(core.transact, "describing the company",
                                          lambda: core.ledger.describe_company(name, url))
        return "0x" + outcome.transaction_hash.hex()
