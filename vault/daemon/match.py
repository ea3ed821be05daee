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
from typing import Any

from vault import audit, errors, match, privacy, scopes
from vault.canonical import canonical_json, keccak256
from vault.daemon.book import Admitted
from vault.daemon.release import ReleaseService
from vault.daemon.signatures import SignerProcess
from vault.grant import Grant
from vault.match import Ranking
from vault.owner.match import (
    MatchDesk,
    check_size,
    check_unique,
    has_unique_ids,
    matches_this_epoch,
)
from vault.policy import Deny, ReleaseAsk, check_issued_at
from vault.wire import Code, code_of


class MatchService:
    """Answers match requests for one owner, on the daemon's event loop."""

    def __init__(
        self, *, releases: ReleaseService, signatures: SignerProcess, desk: MatchDesk
    ) -> None:
        self._releases = releases
        self._signatures = signatures
        self._desk = desk
        now = releases.clock()
        self._epoch = privacy.epoch_of(now)
        self._matches: Counter[str] = matches_this_epoch(releases.log, now=now)

    def __repr__(self) -> str:
        return f"MatchService(owner={self._releases.owner})"

    async def match(self, body: match.Request) -> bytes:
        """The 200 body for ``body`` (:func:`vault.match.read_request`); raises like
        :meth:`ReleaseService.release`."""
        rs = self._releases
        candidates = body.candidates
        grant_id, k, nonce, issued_at = body.grant_id, body.k, body.nonce, body.issued_at
        now = rs.clock()
        moment = int(now)
        signer: str | None = None
        names: tuple[str, ...] = ()
        grant: Grant | None = None
        if rs.tally.exhausted():
            raise errors.ReleaseRefused(
                Code.RATE_LIMITED, "too many unauthenticated requests; try again in a second"
            )
        try:
            bitmap = scopes.bitmap(body.scopes)  # match scopes only: the model admits no other
            names = tuple(scopes.names_of(bitmap))
            check_size(candidates, k)
            # Duplicate ids are refused after the signature: a schema-valid list can hold
            # them (JSON Schema cannot say "unique by id"), and an unsigned request learns
            # only bad_signature, as everywhere else.
            unique = has_unique_ids(candidates)
            stale = check_issued_at(issued_at, now=now, skew_seconds=rs.skew_seconds)
            if stale is not None:
                raise errors.ReleaseRefused(stale.code, stale.detail)
            listed = match.candidates_hash(candidates)
            listed_hex = "0x" + listed.hex()
            grant = rs.index.grant(grant_id)
            tier = match.tier_of(names)
            ranking: Ranking | None = None
            content_hash = b""
            receipt_digest: bytes | None = None
            if grant is not None and bitmap & grant.scopes == bitmap and unique:
                ranking = match.rank(
                    candidates, self._desk.reading(now).person, k=k, tier=tier,
                    company=grant.company, secret=self._desk.secret, now=now, listed=listed,
                )
                content_hash = keccak256(canonical_json(
                    {"candidates_hash": listed_hex, "ranking": list(ranking.ids)}
                ))
                receipt_digest = rs.domain.receipt_digest(
                    grant_id, grant.company, content_hash, moment
                )
            verified = await self._signatures.recover_and_sign(
                rs.domain.match_digest(grant_id, bitmap, listed, k, nonce, issued_at),
                body.signature,
                company=grant.company if grant is not None else None,
                receipt_digest=receipt_digest,
            )
            signer = verified.signer
            ask = ReleaseAsk(grant_id, signer, bitmap, issued_at)
            rs.check_ledger(grant, ask, now=now)
            check_unique(candidates)
            assert grant is not None and ranking is not None
            assert verified.receipt_signature is not None
            admitted = self.admit(
                grant, ask, nonce=nonce, tier=tier, k=k,
                charge_key="match:" + ranking.seed[:8].hex(), now=now,
            )
        except (
            errors.ReleaseRefused, errors.SignatureInvalid, errors.SigningUnavailable,
            errors.LedgerError,
        ) as refusal:
            if (grant is not None and signer is not None and signer == grant.company
                    and grant.owner == rs.owner):
                rs.log.append(audit.NewEntry(
                    at=round(now, 3), kind=audit.RELEASE, outcome=audit.REFUSED,
                    grant_id=grant_id, company=signer, scopes=names,
                    reason=code_of(refusal),
                ))
            else:
                rs.tally.count(code_of(refusal))
            raise
        detail: dict[str, Any] = {
            "nonce": nonce.lower(), "issued_at": issued_at,
            "candidates_hash": listed_hex, "k": k, "ranking": list(ranking.ids),
        }
        if admitted.charged:
            detail["revealed"] = admitted.charged
        content_hex = "0x" + content_hash.hex()
        await rs.log.append_awaitable(audit.NewEntry(
            at=round(now, 3), kind=audit.RELEASE, outcome=audit.RELEASED,
            grant_id=grant_id, company=grant.company, scopes=names,
            content_hash=content_hex, detail=detail,
        ))
        return json.dumps({
            "grant_id": grant_id, "owner": rs.owner, "company": grant.company,
            "candidates_hash": listed_hex, "k": k, "ranking": list(ranking.ids),
            "receipt": {"content_hash": content_hex, "issued_at": moment,
                        "signature": "0x" + verified.receipt_signature.hex()},
        }, separators=(",", ":")).encode()

    def admit(
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
