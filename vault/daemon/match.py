"""``POST /v1/match`` without HTTP: rank a company's candidates for the person; only the
ranking leaves (DESIGN.md "Match protocol", docs/match.md).

Every check of the release protocol applies, in the release path's order and through the
same parts (:class:`vault.daemon.release.ReleaseService`'s flood tally, index, book and log;
the pure :func:`vault.policy.check_issued_at` and :func:`vault.policy.check_grant`); a match
is logged as a release of its scopes, so it counts for ``maxReleases``, the daily limit and
the replay store, and the book is rebuilt from it at start. Before them comes the list's
size (400 ``list_size``), after the grant's checks its ids (400 ``duplicate_id``), then the
match budgets, both 429 ``budget_exhausted``: the terms' ``matches_per_epoch`` per
company, and the privacy budget, charged the ε of :func:`vault.match.epsilon` once per
distinct list and epoch plus the profile entries a release of them would charge (THREATS
row 39).

Like a release, the ranking and the owner's receipt over it are prepared before the
signature is known to be good, so the signing process recovers and signs in one job;
nothing leaves unless every check passes and the log entry — with the candidates hash and
the ranking — is durable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vault import audit, errors, match, privacy, scopes
from vault.canonical import canonical_json, keccak256
from vault.daemon.book import Admitted
from vault.daemon.release import REFUSALS, Attempt, ReleaseService
from vault.grant import Grant
from vault.match import Request as MatchRequest
from vault.owner.match import (
    MatchDesk,
    check_size,
    duplicate_ids,
    has_unique_ids,
    matches_this_epoch,
)
from vault.policy import Deny, ReleaseAsk
from vault.wire import Code

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Prepared(Generic[T]):
    """What a match answers, prepared before its signature is known to be good: ``value``
    (the ranking, or a household member's scores), the seed its noise was drawn from (it
    names the match in the privacy budget) and the content hash its receipt covers."""

    value: T
    seed: bytes
    content_hash: bytes


#: Prepares the answer for (the grant, the tier, the candidates hash).
Prepare = Callable[[Grant, str, bytes], Prepared[T]]


@dataclass(frozen=True, slots=True)
class MatchChecked(Generic[T]):
    """A match request that passed every check and that the budgets and the book admitted,
    not yet logged: its answer, and the owner's signature over its receipt at ``moment``."""

    grant: Grant
    listed: bytes
    prepared: Prepared[T]
    admitted: Admitted
    receipt_signature: bytes
    moment: int


class MatchService:
    """Answers match requests for one owner, on the daemon's event loop."""

    def __init__(self, *, releases: ReleaseService, desk: MatchDesk) -> None:
        self._releases = releases
        self._desk = desk
        now = releases.clock()
        self._epoch = privacy.epoch_of(now)
        self._matches: Counter[str] = matches_this_epoch(releases.log, now=now)

    def __repr__(self) -> str:
        return f"MatchService(owner={self._releases.owner})"

    async def match(self, body: MatchRequest) -> bytes:
        """The 200 body for ``body`` (:func:`vault.match.read_request`); raises like
        :meth:`ReleaseService.release`."""
        rs = self._releases
        now = rs.clock()
        rs.check_flood()
        attempt = Attempt(body.grant_id)
        try:
            done = await self.checked(body, attempt, now=now, charge="match",
                                      prepare=self._ranking(body, now))
        except REFUSALS as refusal:
            rs.refused(attempt, now, refusal)
            raise
        listed_hex = "0x" + done.listed.hex()
        ranking = list(done.prepared.value)
        detail: dict[str, Any] = {
            "nonce": body.nonce.lower(), "issued_at": body.issued_at,
            "candidates_hash": listed_hex, "k": body.k, "ranking": ranking,
        }
        if done.admitted.charged:
            detail["revealed"] = done.admitted.charged
        content_hex = "0x" + done.prepared.content_hash.hex()
        await rs.log.append_awaitable(audit.NewEntry(
            at=round(now, 3), kind=audit.RELEASE, outcome=audit.RELEASED,
            grant_id=body.grant_id, company=done.grant.company, scopes=attempt.names,
            content_hash=content_hex, detail=detail,
        ))
        return json.dumps({
            "grant_id": body.grant_id, "owner": rs.owner, "company": done.grant.company,
            "candidates_hash": listed_hex, "k": body.k, "ranking": ranking,
            "receipt": {"content_hash": content_hex, "issued_at": done.moment,
                        "signature": "0x" + done.receipt_signature.hex()},
        }, separators=(",", ":")).encode()

    def _ranking(self, body: MatchRequest, now: float) -> Prepare[tuple[str, ...]]:
        def prepare(grant: Grant, tier: str, listed: bytes) -> Prepared[tuple[str, ...]]:
            ranking = match.rank(
                body.candidates, self._desk.reading(now).person, k=body.k, tier=tier,
                company=grant.company, secret=self._desk.secret, now=now, listed=listed,
            )
            content_hash = keccak256(canonical_json(
                {"candidates_hash": "0x" + listed.hex(), "ranking": list(ranking.ids)}
            ))
            return Prepared(ranking.ids, ranking.seed, content_hash)
        return prepare

    async def checked(
        self,
        body: MatchRequest,
        attempt: Attempt,
        *,
        now: float,
        prepare: Prepare[T],
        charge: str,
        household: bool = False,
        also: Callable[[Grant], None] | None = None,
    ) -> MatchChecked[T]:
        """Every check of a match request, in order, then the budgets and the book: the
        answer ``prepare`` made, with its signed receipt, not yet logged. ``attempt`` records
        how far the request got (for the caller's refusal log); ``charge`` names the match
        in the privacy budget (with its noise seed); ``household``: a member's part of a
        household answer (a group grant); ``also``: one more check of the grant before the
        ids and the budgets."""
        rs = self._releases
        moment = int(now)
        candidates = body.candidates
        bitmap = scopes.bitmap(body.scopes)  # match scopes only: the reader admits no other
        attempt.names = tuple(scopes.names_of(bitmap))
        check_size(candidates, body.k)
        # Duplicate ids are refused after the signature: a schema-valid list can hold them
        # (JSON Schema cannot say "unique by id"), and an unsigned request learns only
        # bad_signature, as everywhere else.
        unique = has_unique_ids(candidates)
        rs.check_skew(body.issued_at, now=now)
        listed = match.candidates_hash(candidates)
        grant = attempt.grant = rs.index.grant(body.grant_id)
        tier = match.tier_of(attempt.names)
        prepared: Prepared[T] | None = None
        receipt_digest: bytes | None = None
        if grant is not None and bitmap & grant.scopes == bitmap and unique:
            prepared = prepare(grant, tier, listed)
            receipt_digest = rs.domain.receipt_digest(
                body.grant_id, grant.company, prepared.content_hash, moment
            )
        ask, verified = await rs.signed_for_grant(
            attempt,
            rs.domain.match_digest(body.grant_id, bitmap, listed, body.k, body.nonce,
                                   body.issued_at),
            body.signature, bitmap=bitmap, issued_at=body.issued_at,
            receipt_digest=receipt_digest, now=now, household=household,
        )
        if also is not None:
            assert grant is not None
            also(grant)
        if not unique:
            raise duplicate_ids()
        assert grant is not None and prepared is not None
        assert verified.receipt_signature is not None
        admitted = self._admit(
            grant, ask, nonce=body.nonce, tier=tier, k=body.k,
            charge_key=f"{charge}:{prepared.seed[:8].hex()}", now=now,
        )
        return MatchChecked(grant, listed, prepared, admitted, verified.receipt_signature,
                            moment)

    def _admit(
        self, grant: Grant, ask: ReleaseAsk, *, nonce: str, tier: str, k: int, charge_key: str,
        now: float,
    ) -> Admitted:
        """The match budgets, then the book (nonce, ``maxReleases``, the daily limit): the
        match reserved and counted, or :class:`ReleaseRefused`. What it discloses to the
        privacy budget: the profile entries a release of them would charge, and under
        match.history the match's own ε, named ``charge_key`` (from the list's noise seed:
        the same list in the same epoch costs nothing again)."""
        revealed = dict(self._desk.reading(now).revealed)
        cost = match.epsilon(tier, k)
        if cost:
            revealed[charge_key] = cost
        self._check_budgets(grant.company, revealed, now)
        admitted = self._releases.book.admit(grant, ask, nonce=nonce, now=now, revealed=revealed)
        if isinstance(admitted, Deny):
            raise errors.ReleaseRefused(admitted.code, admitted.detail)
        self._matches[grant.company.lower()] += 1
        return admitted

    def _check_budgets(self, company: str, revealed: dict[str, float], now: float) -> None:
        epoch = privacy.epoch_of(now)
        if epoch != self._epoch:
            self._epoch = epoch
            self._matches.clear()
        allowed = self._desk.reading(now).matches_per_epoch
        if self._matches[company.lower()] >= allowed:
            raise errors.ReleaseRefused(
                Code.BUDGET_EXHAUSTED,
                f"this company's {allowed} matches of this 7-day epoch are used up",
            )
        budget = self._releases.book.limits.privacy_budget
        if budget and self._releases.book.epsilon_after(company, revealed) > budget + 1e-6:
            raise errors.ReleaseRefused(
                Code.BUDGET_EXHAUSTED,
                f"this match would take the company past its privacy budget of ε {budget:g}",
            )
