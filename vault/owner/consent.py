"""The owner's decisions: approve (sign the EIP-712 approval, optionally send it), deny,
revoke, and what the daemon does unattended — auto-approval and termination receipts.

Every decision is checked against the index first (this owner's request, in the right
state) and against the owner's own word (terms that never share a scope, an earlier no),
recorded in the access log before it takes effect, and only then sent to the ledger. A
ledger refusal that means "this does not apply any more" becomes :class:`AlreadyDecided`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vault import audit, errors, policy, scopes
from vault.eth import eip712
from vault.eth.index import NO_OWNER
from vault.eth.ledger import TxOutcome
from vault.grant import Grant, Status
from vault.owner.state import APPROVE, AUTO_APPROVE, DENY, REVOKE, Approval, OwnerState
from vault.owner.terms import TermsAndRules
from vault.owner.views import consent_statement
from vault.wire import ApprovalPublic, ApproveResult, Code, DenyResult, RevokeResult


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def _revoked_event(outcome: TxOutcome, owner: str) -> dict[str, Any]:
    """The revoke's split as it concerns ``owner``: a single grant's ``AccessRevoked``, or
    the ``GroupAccessRevoked`` emitted for ``owner`` (one is emitted per member)."""
    for event in outcome.events:
        if event.name == "AccessRevoked" or (
            event.name == "GroupAccessRevoked" and str(event.args["owner"]).lower() == owner.lower()
        ):
            return event.args
    raise errors.LedgerUnavailable("the revoke transaction emitted no revocation for this owner")


def _not_pending(request_id: int) -> errors.AlreadyDecided:
    return errors.AlreadyDecided(f"request {request_id} is already decided; nothing changed")


def _not_active(request_id: int) -> errors.AlreadyDecided:
    return errors.AlreadyDecided(f"request {request_id} is not an active grant; nothing changed")


class Consent:
    def __init__(self, state: OwnerState, terms: TermsAndRules) -> None:
        self._state = state
        self._terms = terms
        self._reviewed: set[int] = set()

    def __repr__(self) -> str:
        return f"Consent(owner={self._state.owner})"

    # --- by the owner ----------------------------------------------------------------------

    def approve(self, request_id: int, *, submit: bool = False, rule: str | None = None
                ) -> ApproveResult:
        """Sign the EIP-712 approval (and, with ``submit``, send ``approve`` as the owner).

        A request already signed, whose signature is still valid and not yet relayed, gets
        that same signature back (``already_signed``): signing again would only leave two
        live approvals for one request. After the deadline it is signed anew; ``submit``
        always sends the transaction."""
        state = self._state
        with state.chain_lock:
            request = state.get(request_id)
            if request.status != Status.PENDING or request_id in state.denied_locally:
                raise _not_pending(request_id)
            if any(m.owner == state.owner and m.approved for m in request.members):
                raise _not_pending(request_id)  # this member's approval is on chain already
            signed = state.approvals.get(request_id)
            if not submit and signed is not None and signed.deadline > state.chain_now():
                return ApproveResult(request_id=request_id, deadline=signed.deadline,
                                     signature=signed.signature, tx_hash=None,
                                     already_signed=True)
            never = policy.never_shared(request.scopes, self._terms.never_shared())
            if never:
                raise errors.ConsentError(
                    f"request {request_id} asks for {', '.join(never)}, which your terms never "
                    "share; nothing was signed (deny it with `vault deny`)"
                )
            self._check_on_chain(request)
            deadline = int(state.chain_now()) + state.settings.approval_ttl_seconds
            signature = "0x" + eip712.sign_approval(
                bytes(state.account.key), state.domain, request_id, deadline
            ).hex()
            tx_hash = None
            if submit:
                try:
                    tx_hash = _hex(state.ledger.approve(request_id).transaction_hash)
                except errors.ContractReverted as reverted:
                    if reverted.name in ("RequestNotPending", "AlreadyApproved"):
                        raise _not_pending(request_id) from None
                    raise
            names = scopes.names_of(request.scopes)
            state.record(
                AUTO_APPROVE if rule is not None else APPROVE, grant_id=request_id,
                company=request.company, names=names,
                detail={"deadline": deadline, "signature": signature, "tx_hash": tx_hash,
                        "rule": rule},
            )
            state.approvals[request_id] = Approval(deadline, signature, sent=tx_hash is not None)
            state.record(
                audit.CONSENT_RECEIPT, grant_id=request_id, company=request.company, names=names,
                detail={
                    "approval": {"request_id": request_id, "deadline": deadline,
                                 "signature": signature},
                    "purpose": request.purpose,
                    "scopes_in_words": [scopes.scope(n).description for n in names],
                    "price_wei": request.price,
                    "duration_seconds": request.duration,
                    "max_releases": request.max_releases,
                    "statement": consent_statement(request),
                },
            )
            return ApproveResult(
                request_id=request_id, deadline=deadline, signature=signature, tx_hash=tx_hash
            )

    def _check_on_chain(self, request: Grant) -> None:
        """Refuse to sign for a request the contract does not hold exactly as the index does:
        an approval signature for an id the node invented would approve whatever request
        later gets that id (THREATS row 32). For a group request the contract must list this
        owner among its members, with the share the index shows, and not yet approved by it
        (a second signature would only be refused as ``AlreadyApproved``)."""
        owner = self._state.owner
        try:
            held: Grant | None = self._state.ledger.get_request(request.id)
        except errors.ContractReverted:
            held = None
        if held is not None and held.is_group:
            member = next((m for m in held.members if m.owner == owner), None)
            if member is not None and member.approved:
                raise _not_pending(request.id)
            # This owner's index holds its part of a group as its own request at its share.
            held = None if member is None or held.owner != NO_OWNER else replace(
                held, owner=owner, price=member.share
            )
        if held is None or (
            held.owner, held.company, held.scopes, held.price, held.duration,
            held.max_releases, held.status, held.is_group,
        ) != (
            owner, request.company, request.scopes, request.price, request.duration,
            request.max_releases, Status.PENDING, request.is_group,
        ):
            raise errors.LedgerUnavailable(
                f"the ledger does not hold request {request.id} as the node's events describe "
                "it; nothing was signed",
                hint="the node may be lying or behind; check it, or set VAULT_RPC_URL_CHECK",
            )

    def approval(self, request_id: int) -> ApprovalPublic:
        """The owner's approval signature for the company to relay (company route), while the
        owner has not denied the request and the signature's deadline has not passed."""
        state = self._state
        if request_id in state.denied_locally:
            raise errors.ReleaseRefused(Code.DENIED, "the owner denied this request")
        found = state.approvals.get(request_id)
        if found is None:
            raise errors.NotFound(f"request {request_id} is not approved (yet)")
        if found.deadline <= state.chain_now():
            raise errors.NotFound(
                f"the approval of request {request_id} expired unrelayed; ask the owner again"
            )
        return ApprovalPublic(request_id=request_id, deadline=found.deadline,
                              signature=found.signature)

    def deny(self, request_id: int) -> DenyResult:
        """Say no: from this moment the vault refuses every release for the request and stops
        offering its approval signature; then deny on chain (refunding the company).

        If a relayed approval made the request active first — the deny transaction then
        reverts — the no still holds locally, and the owner is told to revoke, which ends
        the grant on chain with the usual split (THREATS row 33).
        """
        state = self._state
        with state.chain_lock:
            request = state.get(request_id)
            if (request.status not in (Status.PENDING, Status.ACTIVE)
                    or request.is_expired(state.clock()) or request_id in state.denied_locally):
                raise _not_pending(request_id)
            state.denied_locally.add(request_id)
            state.approvals.pop(request_id, None)
            state.record(DENY, grant_id=request_id, company=request.company,
                         names=scopes.names_of(request.scopes))
            too_late = errors.ConsentError(
                f"request {request_id} was already approved on chain (your earlier approval "
                "was relayed); the vault now refuses every release for it — run "
                f"`vault revoke {request_id}` to end it and keep what it earned"
            )
            if request.status == Status.ACTIVE:
                raise too_late
            try:
                tx_hash = _hex(state.ledger.deny(request_id).transaction_hash)
            except errors.ContractReverted as reverted:
                if reverted.name == "RequestNotPending":
                    raise too_late from None
                raise
            return DenyResult(request_id=request_id, tx_hash=tx_hash)

    def revoke(self, request_id: int) -> RevokeResult:
        """Stop releases at once (local revocation, logged durably), then revoke on chain."""
        state = self._state
        with state.chain_lock:
            request = state.get(request_id)
            if request.status != Status.ACTIVE or request.is_expired(state.clock()):
                raise _not_active(request_id)
            state.revoked_locally.add(request_id)
            state.record(REVOKE, grant_id=request_id, company=request.company,
                         names=scopes.names_of(request.scopes))
            try:
                outcome = state.ledger.revoke(request_id)
            except errors.ContractReverted as reverted:
                if reverted.name in ("GrantNotActive", "GrantExpired"):
                    raise _not_active(request_id) from None
                raise
            event = _revoked_event(outcome, state.owner)
            earned, refund = int(event["ownerEarned"]), int(event["companyRefund"])
            self._terminate(request, "revoked", earned=earned, refund=refund)
            return RevokeResult(
                request_id=request_id, tx_hash=_hex(outcome.transaction_hash),
                owner_earned_wei=earned, company_refund_wei=refund,
            )

    def _terminate(self, request: Grant, why: str, *, earned: int | None = None,
                   refund: int | None = None) -> None:
        state = self._state
        if request.id in state.terminated:
            return
        state.terminated.add(request.id)
        state.record(
            audit.TERMINATION_RECEIPT, grant_id=request.id, company=request.company,
            names=scopes.names_of(request.scopes),
            detail={"reason": why, "owner_earned_wei": earned, "company_refund_wei": refund,
                    "expires_at": request.expires_at},
        )

    # --- unattended (the daemon's sync loop) -----------------------------------------------

    def forget_reviews(self) -> None:
        """Pending requests get another look (the rules changed)."""
        self._reviewed.clear()

    def review_new_requests(self) -> list[int]:
        """Apply the auto-approval rules to pending requests not yet looked at; the approved ids."""
        state = self._state
        rules = self._terms.rules()
        approved: list[int] = []
        for request in state.mine():
            if (request.status != Status.PENDING or request.id in self._reviewed
                    or request.id in state.approvals or request.id in state.denied_locally):
                continue
            self._reviewed.add(request.id)
            verdict = policy.auto_approval(
                request, rules, catalog_hash=scopes.catalog_hash(),
                terms_never=self._terms.terms().scopes_never,
            )
            if verdict.approve:
                self.approve(request.id, submit=False, rule=verdict.rule)
                approved.append(request.id)
        return approved

    def record_terminations(self) -> None:
        """A termination receipt for every grant that expired or was revoked on chain."""
        now = self._state.clock()
        for request in self._state.mine():
            if request.id in self._state.terminated:
                continue
            if request.status == Status.REVOKED:
                self._terminate(request, "revoked")
            elif request.status == Status.ACTIVE and request.is_expired(now):
                self._terminate(request, "expired")
