"""Releases and matches under a group grant, without HTTP routes: this vault coordinates a
household's answer, or contributes its member's part to another member's vault (issue 18;
docs/match.md "Household"; the pure rules in :mod:`vault.household`).

**As coordinator** (``POST /v1/release`` or ``POST /v1/match`` with a group grant): this
vault first makes its own contribution through every check a member makes (the company's
signature, the grant on its own index, the budgets and the book), then forwards the
company's request to every other member's vault at the endpoint that member published on
the ledger, signed by this owner's key (EIP-712 ``Contribution``; signed only once the
company's signature verified, by the signing process). Every member must answer with a
contribution that verifies within ``household_timeout_seconds``: a member that is offline,
late, refusing or answering something that does not verify ends the request (503
``household_unavailable``, or the member's own refusal code), and this vault releases
nothing — its log gets the refusal, not a release. Only then are the parts combined, this
vault's release logged (durable), and one answer sent with every member's receipt.

**As member** (:data:`vault.household.CONTRIBUTION_PATH`): the forward's time (skew) and
its signature, which must recover to *another member of the grant on this vault's own
index*; the company's signature; the grant (active, confirmed, this owner's, a group, the
scopes); the budgets and the book (nonce, ``maxReleases``, the daily limit, the privacy
budget) — as for a request from the company itself. The contribution is logged as this
owner's release to the company (``detail.household``: the coordinator) before it leaves.
A member's contribution reserves its release even when another member then fails the
household: the count stays conservative, as for any release that fails after admission.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import msgspec
from pydantic import ValidationError

from vault import audit, errors, household, match, scopes
from vault.canonical import json_hash
from vault.daemon.book import Admitted
from vault.daemon.match import MatchService, Prepared
from vault.daemon.release import REFUSALS, Answer, Attempt, ReleaseService
from vault.daemon.signatures import SignerProcess
from vault.eth import eip712
from vault.eth.index import EndpointView
from vault.grant import Grant
from vault.household import (
    ContributionRequest,
    HouseholdMatchPublic,
    HouseholdReleasePublic,
    MatchContribution,
    MemberMatch,
    MemberRelease,
)
from vault.match import Request as MatchRequest
from vault.owner.match import MatchDesk
from vault.policy import check_issued_at
from vault.wire import Code, ReceiptPublic, ReleaseRequest


class EndpointBook(Protocol):
    """Where members' vaults are: the endpoints they published on the ledger, as this
    vault's index follows them (:class:`vault.eth.index.LedgerIndex`)."""

    def endpoint_of(self, account: str) -> EndpointView | None: ...


@dataclass(frozen=True, slots=True)
class _Own:
    """A contribution admitted by this vault's checks and book, not yet logged."""

    grant: Grant
    admitted: Admitted
    content_hash: str
    receipt: ReceiptPublic
    release: Answer | None = None
    scores: dict[str, float] = field(default_factory=dict)
    seed: bytes = b""
    listed: bytes = b""  # a match's candidates hash


class HouseholdService:
    """Coordinates household answers and answers other members' forwards, on the daemon's
    event loop."""

    def __init__(
        self,
        *,
        releases: ReleaseService,
        matches: MatchService,
        signatures: SignerProcess,
        desk: MatchDesk,
        endpoints: EndpointBook,
        timeout_seconds: float,
    ) -> None:
        self._releases = releases
        self._matches = matches
        self._signatures = signatures
        self._desk = desk
        self._endpoints = endpoints
        self._timeout = timeout_seconds
        # One client for the daemon's life: a new one costs ~90 ms (its TLS context) and
        # loses the members' keep-alive connections.
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"HouseholdService(owner={self._releases.owner})"

    async def aclose(self) -> None:
        """Close the connections to the other members' vaults (the daemon is stopping)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def coordinates(self, grant_id: int) -> bool:
        """Whether a company's request under ``grant_id`` is a household's (a group grant on
        this vault's index): it is then answered here, never by one member alone."""
        grant = self._releases.index.grant(grant_id)
        return grant is not None and grant.is_group

    # --- as coordinator ------------------------------------------------------------------

    async def release(self, body: ReleaseRequest) -> bytes:
        """The household release for ``body``; raises like
        :meth:`ReleaseService.release`."""
        rs = self._releases
        now = rs.clock()
        attempt = Attempt(body.grant_id)
        rs.check_flood()
        try:
            own = await self._release_part(body, attempt, now=now, coordinator=None)
            digest = _release_digest(rs.domain, body)
            answers = await self._forward(
                own.grant, "release", body.model_dump(mode="json"), digest, body.signature,
                now=now,
            )
            parts = {
                owner: self._verified_release(own.grant, owner, answer)
                for owner, answer in answers.items()
            }
        except REFUSALS as refusal:
            rs.refused(attempt, now, refusal)
            raise
        assert own.release is not None
        parts[rs.owner] = MemberRelease(
            owner=rs.owner, preferences=own.release.preferences, receipt=own.receipt
        )
        await self._log(own, body.nonce, body.issued_at, now, attempt.names, {})
        return HouseholdReleasePublic(
            grant_id=body.grant_id, company=own.grant.company, coordinator=rs.owner,
            members=[parts[m.owner] for m in own.grant.members],
        ).model_dump_json().encode()

    async def match(self, body: MatchRequest) -> bytes:
        """The household ranking for ``body``; raises like :meth:`MatchService.match`."""
        rs = self._releases
        now = rs.clock()
        attempt = Attempt(body.grant_id)
        rs.check_flood()
        try:
            own = await self._match_part(body, attempt, now=now, coordinator=None)
            listed = own.listed
            digest = _match_digest(rs.domain, body, listed)
            request = match.as_json_value(body)
            answers = await self._forward(
                own.grant, "match", request, digest, body.signature, now=now
            )
            listed_hex = "0x" + listed.hex()
            ids = [c.id for c in body.candidates]
            parts = {
                owner: self._verified_match(own.grant, owner, answer, listed_hex, body.k, ids)
                for owner, answer in answers.items()
            }
            ranking = household.household_ranking(
                [own.scores, *(p.scores for p in parts.values())], ids=ids, k=body.k,
                tier=match.tier_of(attempt.names), secret=self._desk.secret, seed=own.seed,
            )
            answer_hash = json_hash({"candidates_hash": listed_hex, "ranking": list(ranking)})
            moment = int(now)
            signed = await self._signatures.recover_and_sign(
                digest, body.signature, company=own.grant.company,
                receipt_digest=rs.domain.receipt_digest(
                    body.grant_id, own.grant.company, answer_hash, moment
                ),
            )
        except REFUSALS as refusal:
            rs.refused(attempt, now, refusal)
            raise
        assert signed.receipt_signature is not None
        members = {owner: MemberMatch(owner=owner, scores_hash=p.scores_hash, receipt=p.receipt)
                   for owner, p in parts.items()}
        members[rs.owner] = MemberMatch(
            owner=rs.owner, scores_hash="0x" + household.scores_hash(own.scores).hex(),
            receipt=own.receipt,
        )
        answer_hex = "0x" + answer_hash.hex()
        await self._log(
            own, body.nonce, body.issued_at, now, attempt.names,
            {"candidates_hash": listed_hex, "k": body.k, "ranking": list(ranking)},
            content_hash=answer_hex,
        )
        return HouseholdMatchPublic(
            grant_id=body.grant_id, owner=rs.owner, company=own.grant.company,
            candidates_hash=listed_hex, k=body.k, ranking=list(ranking),
            receipt=ReceiptPublic(content_hash=answer_hex, issued_at=moment,
                                  signature="0x" + signed.receipt_signature.hex()),
            members=[members[m.owner] for m in own.grant.members],
        ).model_dump_json().encode()

    async def _forward(
        self, grant: Grant, kind: str, request: dict[str, Any], request_digest: bytes,
        company_signature: str, *, now: float,
    ) -> dict[str, Any]:
        """Every other member's answer to ``request`` (parsed JSON, by owner), all within the
        timeout, or :class:`ReleaseRefused` for the first member that fails the household."""
        rs = self._releases
        others = [m.owner for m in grant.members if m.owner != rs.owner]
        endpoints = {}
        for owner in others:
            published = self._endpoints.endpoint_of(owner)
            if published is None:
                raise errors.ReleaseRefused(
                    Code.HOUSEHOLD_UNAVAILABLE,
                    f"member {owner} has published no vault endpoint on the ledger; "
                    "nothing was released",
                )
            endpoints[owner] = published.url.rstrip("/") + household.CONTRIBUTION_PATH
        moment = int(now)
        bodies = {}
        for owner in others:
            # Signed by the signing process only because the company's request verifies.
            signed = await self._signatures.recover_and_sign(
                request_digest, company_signature, company=grant.company,
                receipt_digest=rs.domain.contribution_digest(
                    grant.id, request_digest, owner, moment
                ),
            )
            assert signed.receipt_signature is not None
            bodies[owner] = ContributionRequest(
                kind="release" if kind == "release" else "match", request=request,
                issued_at=moment, signature="0x" + signed.receipt_signature.hex(),
            ).model_dump()
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        asked = {owner: asyncio.ensure_future(_ask(self._http, endpoints[owner], bodies[owner]))
                 for owner in others}
        _, late = await asyncio.wait(asked.values(), timeout=self._timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*asked.values(), return_exceptions=True)
        found: dict[str, Any] = {}
        for owner, task in asked.items():
            if task in late:
                raise _unavailable(owner, "did not answer in time")
            outcome = task.exception() or task.result()
            if isinstance(outcome, errors.ReleaseRefused):
                raise errors.ReleaseRefused(
                    outcome.code,
                    f"member {owner}'s vault refused its part: {outcome}; nothing was released",
                )
            if isinstance(outcome, httpx.TimeoutException):
                raise _unavailable(owner, "did not answer in time")
            if isinstance(outcome, BaseException):
                raise _unavailable(owner, "could not be reached or did not answer in JSON")
            found[owner] = outcome
        return found

    def _verified_release(self, grant: Grant, owner: str, answer: Any) -> MemberRelease:
        try:
            part = MemberRelease.model_validate(answer)
        except ValidationError:
            raise _unavailable(owner, "answered with something that is not a release") from None
        computed = json_hash(part.preferences)
        if part.owner != owner or part.receipt.content_hash.lower() != "0x" + computed.hex():
            raise _unavailable(owner, "answered with a release its receipt does not cover")
        self._check_receipt(grant, owner, part.receipt, computed)
        return part

    def _verified_match(
        self, grant: Grant, owner: str, answer: Any, listed_hex: str, k: int, ids: list[str],
    ) -> MatchContribution:
        try:
            part = MatchContribution.model_validate(answer)
        except ValidationError:
            raise _unavailable(owner, "answered with something that is not a contribution"
                               ) from None
        if (part.owner != owner or set(part.scores) != set(ids)
                or not all(math.isfinite(s) for s in part.scores.values())
                or part.scores_hash.lower() != "0x" + household.scores_hash(part.scores).hex()):
            raise _unavailable(owner, "answered with scores that are not for this list")
        statement = json_hash(household.match_statement(
            listed_hex, coordinator=self._releases.owner, k=k, scores_digest=part.scores_hash
        ))
        if part.receipt.content_hash.lower() != "0x" + statement.hex():
            raise _unavailable(owner, "answered with a receipt that does not cover its scores")
        self._check_receipt(grant, owner, part.receipt, statement)
        return part

    def _check_receipt(
        self, grant: Grant, owner: str, receipt: ReceiptPublic, content_hash: bytes
    ) -> None:
        digest = self._releases.domain.receipt_digest(
            grant.id, grant.company, content_hash, receipt.issued_at
        )
        try:
            eip712.verify_signer(digest, receipt.signature, owner)
        except (errors.SignatureInvalid, ValueError):
            raise _unavailable(owner, "answered with a receipt it did not sign") from None

    # --- as member -----------------------------------------------------------------------

    async def contribute(
        self, forward: ContributionRequest, body: ReleaseRequest | MatchRequest
    ) -> bytes:
        """This member's part of another member's household answer; ``body``: the forward's
        ``request`` as the route validated it (the model ``kind`` names). Raises like a
        release."""
        rs = self._releases
        now = rs.clock()
        rs.check_flood()
        attempt = Attempt(body.grant_id)
        try:
            stale = check_issued_at(forward.issued_at, now=now, skew_seconds=rs.skew_seconds)
            if stale is not None:
                raise errors.ReleaseRefused(stale.code, "the coordinator's forward: "
                                            + stale.detail)
            if isinstance(body, ReleaseRequest):
                coordinator = self._coordinator(forward, body.grant_id,
                                                _release_digest(rs.domain, body))
                own = await self._release_part(body, attempt, now=now, coordinator=coordinator)
                assert own.release is not None
                answer: MemberRelease | MatchContribution = MemberRelease(
                    owner=rs.owner, preferences=own.release.preferences, receipt=own.receipt
                )
                extra: dict[str, Any] = {}
                nonce, issued_at = body.nonce, body.issued_at
            else:
                listed = match.candidates_hash(body.candidates)
                coordinator = self._coordinator(
                    forward, body.grant_id, _match_digest(rs.domain, body, listed)
                )
                own = await self._match_part(body, attempt, now=now, coordinator=coordinator)
                answer = MatchContribution(
                    owner=rs.owner, scores=own.scores,
                    scores_hash="0x" + household.scores_hash(own.scores).hex(),
                    receipt=own.receipt,
                )
                extra = {"candidates_hash": "0x" + listed.hex(), "k": body.k}
                nonce, issued_at = body.nonce, body.issued_at
        except REFUSALS as refusal:
            rs.refused(attempt, now, refusal)
            raise
        await self._log(own, nonce, issued_at, now, attempt.names,
                        {**extra, "household": {"coordinator": coordinator}})
        return answer.model_dump_json().encode()

    def _coordinator(
        self, forward: ContributionRequest, grant_id: int, request_digest: bytes
    ) -> str:
        """Who signed the forward to this member (401 if nobody did); whether they are a
        member is checked against the grant once the company's signature verified."""
        rs = self._releases
        return eip712.recover_signer(
            rs.domain.contribution_digest(grant_id, request_digest, rs.owner,
                                          forward.issued_at),
            forward.signature,
        )

    # --- one member's part, through that member's own checks ------------------------------

    async def _release_part(
        self, body: ReleaseRequest, attempt: Attempt, *, now: float, coordinator: str | None
    ) -> _Own:
        done = await self._releases.checked(
            body, attempt, now=now, household=True,
            also=lambda grant: self._check_member(grant, coordinator),
        )
        return _Own(
            done.grant, done.admitted, done.answer.content_hash_hex,
            ReceiptPublic(content_hash=done.answer.content_hash_hex, issued_at=done.moment,
                          signature="0x" + done.receipt_signature.hex()),
            release=done.answer,
        )

    async def _match_part(
        self, body: MatchRequest, attempt: Attempt, *, now: float, coordinator: str | None,
    ) -> _Own:
        def member_scores(grant: Grant, tier: str, listed: bytes) -> Prepared[dict[str, float]]:
            scores, seed = household.member_scores(
                body.candidates, self._desk.reading(now).person, tier=tier,
                company=grant.company, secret=self._desk.secret, now=now, listed=listed,
            )
            statement = json_hash(household.match_statement(
                "0x" + listed.hex(), coordinator=coordinator or self._releases.owner,
                k=body.k, scores_digest="0x" + household.scores_hash(scores).hex(),
            ))
            return Prepared(scores, seed, statement)

        done = await self._matches.checked(
            body, attempt, now=now, prepare=member_scores, charge="household", household=True,
            also=lambda grant: self._check_member(grant, coordinator),
        )
        statement_hex = "0x" + done.prepared.content_hash.hex()
        return _Own(
            done.grant, done.admitted, statement_hex,
            ReceiptPublic(content_hash=statement_hex, issued_at=done.moment,
                          signature="0x" + done.receipt_signature.hex()),
            scores=done.prepared.value, seed=done.prepared.seed, listed=done.listed,
        )

    def _check_member(self, grant: Grant, coordinator: str | None) -> None:
        """A forward must come from another member of the grant as this vault's index holds
        it (``None``: this vault coordinates)."""
        if coordinator is None:
            return
        members = {m.owner for m in grant.members}
        if coordinator == self._releases.owner or coordinator not in members:
            raise errors.ReleaseRefused(
                Code.NOT_GRANTED,
                "the coordinating vault is not another member of this group grant",
            )

    # --- the log -------------------------------------------------------------------------

    async def _log(
        self, own: _Own, nonce: str, issued_at: int, now: float, names: tuple[str, ...],
        detail: dict[str, Any], *, content_hash: str | None = None,
    ) -> None:
        """This owner's release, durable before its answer leaves."""
        entry: dict[str, Any] = {"nonce": nonce.lower(), "issued_at": issued_at, **detail}
        entry.setdefault("household", {"members": [m.owner for m in own.grant.members]})
        if own.admitted.charged:
            entry["revealed"] = own.admitted.charged
        await self._releases.log.append_awaitable(audit.NewEntry(
            at=round(now, 3), kind=audit.RELEASE, outcome=audit.RELEASED,
            grant_id=own.grant.id, company=own.grant.company, scopes=names,
            content_hash=content_hash or own.content_hash, detail=entry,
        ))


def _release_digest(domain: eip712.Domain, body: ReleaseRequest) -> bytes:
    return domain.release_digest(
        body.grant_id, scopes.bitmap(body.scopes), body.nonce, body.issued_at
    )


def _match_digest(domain: eip712.Domain, body: MatchRequest, listed: bytes) -> bytes:
    return domain.match_digest(
        body.grant_id, scopes.bitmap(body.scopes), listed, body.k, body.nonce, body.issued_at
    )


def _unavailable(owner: str, what: str) -> errors.ReleaseRefused:
    return errors.ReleaseRefused(
        Code.HOUSEHOLD_UNAVAILABLE, f"member {owner}'s vault {what}; nothing was released"
    )


async def _ask(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Any:
    """One member's answer (parsed JSON); its refusal as :class:`ReleaseRefused` with the
    member's code; anything else (unreachable, not JSON) as an exception."""
    response = await http.post(url, content=msgspec.json.encode(body),
                               headers={"content-type": "application/json"})
    payload = response.json()
    if response.status_code != 200:
        try:
            code = Code(payload["error"])
        except (KeyError, TypeError, ValueError):
            code = Code.HOUSEHOLD_UNAVAILABLE
        raise errors.ReleaseRefused(code, str(payload.get("detail", ""))[:300])
    return payload

