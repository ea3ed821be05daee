"""The owner's operations: one implementation behind the daemon's owner routes and the CLI.

:class:`OwnerService` reads the ledger through the local index, acts on the ledger through
:class:`~vault.ledger.LedgerClient` as the owner, and records every action in the access log.
What must outlive a restart is kept in the log itself: local revocations (so a revoke stops
releases at once, even before its transaction confirms, and still after a restart), the
owner's approval signatures (served to the company for ``approveBySig``) and denials.
Terms and auto-approval rules are the owner's settings, in ``<home>/owner-terms.json``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from vault import _files, audit, errors, ledger, policy, scopes
from vault.canonical import json_hash
from vault.chain import Chain
from vault.config import Settings
from vault.daemon.models import (
    ApprovalPublic,
    ApproveResult,
    ClaimResult,
    DenyResult,
    EarningsPublic,
    GrantEarnings,
    LogEntryPublic,
    PublishResult,
    RequestPublic,
    RequestStatus,
    RevokeResult,
    Terms,
    TermsPublic,
    VerifyPublic,
    WithdrawResult,
)
from vault.ledger import Status
from vault.policy import RuleSet
from vault.sync import GrantView, LedgerIndex

SETTINGS_FILE = "owner-terms.json"

APPROVE, DENY, REVOKE = "approve", "deny", "revoke"
AUTO_APPROVE = "auto_approve"
TERMS, RULES, PUBLISH, CLAIM, WITHDRAW = "terms", "rules", "publish", "claim", "withdraw"


class OwnerVault(Protocol):
    @property
    def owner_address(self) -> str: ...

    @property
    def home(self) -> Path: ...

    def owner_account(self) -> Any: ...


def terms_hash(terms: Terms) -> str:
    """keccak256 of the RFC 8785 JSON of the terms, as companies recompute it."""
    return "0x" + json_hash(terms.model_dump()).hex()


def _days(seconds: int) -> str:
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day" + ("s" if days != 1 else "")
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{seconds} seconds"


def consent_statement(request: GrantView) -> str:
    """What approving means, in words, from the request's on-chain fields only."""
    try:
        described = [f"{s.description.lower()} ({s.name})"
                     for s in map(scopes.scope, scopes.names_of(request.scopes))]
    except errors.UnknownScope:
        described = [f"scope bitmap {request.scopes} (not in this vault's catalog)"]
    limit = (f"at most {request.max_releases} releases" if request.max_releases
             else "any number of releases")
    per_day = ledger.format_eth(policy.price_per_day(request.price, request.duration))
    return (
        f"{request.company} pays {ledger.format_eth(request.price)} in total ({per_day} per day)"
        f" for {_days(request.duration)} of access, {limit}, to: {'; '.join(described)}."
        f" Stated purpose: {json.dumps(request.purpose, ensure_ascii=False)}."
        " You can revoke at any time and keep what was earned so far."
    )


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


class OwnerService:
    def __init__(
        self,
        vault: OwnerVault,
        chain: Chain,
        index: LedgerIndex,
        log: audit.AuditLog,
        *,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        releases_used: Callable[[int], int] | None = None,
    ) -> None:
        self.vault = vault
        self.chain = chain
        self.index = index
        self.audit = log
        self.settings = settings
        self.clock = clock
        self.owner = vault.owner_address
        self.domain = ledger.Domain(chain.chain_id, chain.ledger_address)
        self._account = vault.owner_account()
        self.ledger = ledger.LedgerClient(chain.w3, chain.ledger_address, sender=self._account)
        self._releases_used = releases_used
        #: Held for every chain interaction (the sync loop takes it too): some backends,
        #: like the embedded py-evm chain, are not thread-safe.
        self.chain_lock = threading.RLock()
        self._path = vault.home / SETTINGS_FILE
        self.revoked_locally: set[int] = set()
        #: Requests the owner said no to: refused whatever the ledger says later (a relayed
        #: approval may beat the deny transaction; THREATS row 33).
        self.denied_locally: set[int] = set()
        self._approvals: dict[int, tuple[int, str]] = {}
        self._terminated: set[int] = set()
        self._reviewed: set[int] = set()
        for entry in log.of_kind(REVOKE):
            if entry.grant_id is not None:
                self.revoked_locally.add(entry.grant_id)
        for kind in (APPROVE, AUTO_APPROVE):
            for entry in log.of_kind(kind):
                if entry.grant_id is not None:
                    self._approvals[entry.grant_id] = (
                        int(entry.detail["deadline"]), str(entry.detail["signature"])
                    )
        self.denied_locally.update(
            e.grant_id for e in log.of_kind(DENY) if e.grant_id is not None
        )
        self._terminated.update(
            e.grant_id for e in log.of_kind(audit.TERMINATION_RECEIPT) if e.grant_id is not None
        )

    def __repr__(self) -> str:
        return f"OwnerService(owner={self.owner})"

    # --- requests and grants -----------------------------------------------------------

    def _status(self, request: GrantView, now: float) -> RequestStatus:
        if request.id in self.revoked_locally or request.status == Status.REVOKED:
            return "revoked"
        if request.id in self.denied_locally:
            return "denied"
        if request.status == Status.ACTIVE:
            return "expired" if policy.is_expired(request, now=now) else "active"
        names: dict[int, RequestStatus] = {
            Status.PENDING: "pending", Status.DENIED: "denied", Status.CANCELLED: "cancelled",
        }
        return names.get(request.status, "pending")

    def _public(self, request: GrantView, now: float) -> RequestPublic:
        try:
            names = scopes.names_of(request.scopes)
        except errors.UnknownScope:
            names = []
        if self._releases_used is not None:
            used = self._releases_used(request.id)
        else:
            used = len(
                [e for e in self.audit.for_grant(request.id, kind=audit.RELEASE)
                 if e.outcome == audit.RELEASED]
            )
        return RequestPublic(
            id=request.id,
            owner=request.owner,
            company=request.company,
            company_endpoint=self._endpoint(request.company),
            scopes=names,
            scopes_bitmap=request.scopes,
            price_wei=request.price,
            price_per_day_wei=policy.price_per_day(request.price, request.duration),
            duration_seconds=request.duration,
            max_releases=request.max_releases,
            purpose=request.purpose,
            catalog_hash="0x" + bytes(request.catalog_hash).hex(),
            catalog_matches=bytes(request.catalog_hash) == scopes.catalog_hash(),
            status=self._status(request, now),
            starts_at=request.starts_at or None,
            expires_at=policy.expires_at(request),
            releases_used=used,
            consent_statement=consent_statement(request),
        )

    def _endpoint(self, account: str) -> str | None:
        published = self.index.endpoint_of(account)
        return published.url if published is not None else None

    def _mine(self) -> list[GrantView]:
        return self.index.requests()

    def _get(self, request_id: int) -> GrantView:
        request = self.index.grant(request_id)
        if request is None or request.owner.lower() != self.owner.lower():
            raise errors.NotFound(f"no request {request_id} for this vault")
        return request

    def requests(self, status: str = "pending") -> list[RequestPublic]:
        now = self.clock()
        every = [self._public(r, now) for r in self._mine()]
        if status == "all":
            return every
        return [r for r in every if r.status == status]

    def request(self, request_id: int) -> RequestPublic:
        return self._public(self._get(request_id), self.clock())

    def grants(self) -> list[RequestPublic]:
        now = self.clock()
        every = (self._public(r, now) for r in self._mine())
        return [r for r in every if r.status in ("active", "expired", "revoked")]

    # --- consent ---------------------------------------------------------------------------

    def _record(self, kind: str, *, grant_id: int | None = None, company: str | None = None,
                names: Iterable[str] = (), detail: dict[str, Any] | None = None) -> None:
        self.audit.append_sync(
            audit.NewEntry(
                at=round(self.clock(), 3), kind=kind, outcome=audit.OK, grant_id=grant_id,
                company=company, scopes=tuple(names), detail=detail or {},
            )
        )

    def approve(self, request_id: int, *, submit: bool = False, rule: str | None = None
                ) -> ApproveResult:
        """Sign the EIP-712 approval (and, with ``submit``, send ``approve`` as the owner)."""
        with self.chain_lock:
            request = self._get(request_id)
            if request.status != Status.PENDING or request_id in self.denied_locally:
                raise errors.ContractReverted(
                    "RequestNotPending", {"id": request_id, "status": int(request.status)}
                )
            never = policy.never_shared(
                request.scopes, [*self.terms().scopes_never, *self.rules().never_share]
            )
            if never:
                raise errors.ConsentError(
                    f"request {request_id} asks for {', '.join(never)}, which your terms never "
                    "share; nothing was signed (deny it with `vault deny`)"
                )
            self._check_on_chain(request)
            deadline = int(self.clock()) + self.settings.approval_ttl_seconds
            signature = "0x" + ledger.sign_approval(
                bytes(self._account.key), self.domain, request_id, deadline
            ).hex()
            tx_hash = None
            if submit:
                tx_hash = _hex(self.ledger.approve(request_id).transaction_hash)
            names = scopes.names_of(request.scopes)
            self._record(
                AUTO_APPROVE if rule is not None else APPROVE, grant_id=request_id,
                company=request.company, names=names,
                detail={"deadline": deadline, "signature": signature, "tx_hash": tx_hash,
                        "rule": rule},
            )
            self._approvals[request_id] = (deadline, signature)
            self._record(
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

    def _check_on_chain(self, request: GrantView) -> None:
        """Refuse to sign for a request the contract does not hold exactly as the index does:
        an approval signature for an id the node invented would approve whatever request
        later gets that id (THREATS row 32)."""
        try:
            state = self.ledger.get_request(request.id)
        except errors.ContractReverted:
            state = None
        if state is None or (
            state.owner, state.company, state.scopes, state.price, state.duration,
            state.max_releases, state.status,
        ) != (
            request.owner, request.company, request.scopes, request.price, request.duration,
            request.max_releases, Status.PENDING,
        ):
            raise errors.LedgerUnavailable(
                f"the ledger does not hold request {request.id} as the node's events describe "
                "it; nothing was signed",
                hint="the node may be lying or behind; check it, or set VAULT_RPC_URL_CHECK",
            )

    def approval(self, request_id: int) -> ApprovalPublic:
        """The owner's approval signature for the company to relay (company route), while the
        owner has not denied the request and the signature's deadline has not passed."""
        if request_id in self.denied_locally:
            raise errors.ReleaseRefused("denied", "the owner denied this request")
        found = self._approvals.get(request_id)
        if found is None:
            raise errors.NotFound(f"request {request_id} is not approved (yet)")
        if found[0] <= self.clock():
            raise errors.NotFound(
                f"the approval of request {request_id} expired unrelayed; ask the owner again"
            )
        return ApprovalPublic(request_id=request_id, deadline=found[0], signature=found[1])

    def deny(self, request_id: int) -> DenyResult:
        """Say no: from this moment the vault refuses every release for the request and stops
        offering its approval signature; then deny on chain (refunding the company).

        If a relayed approval made the request active first — the deny transaction then
        reverts — the no still holds locally, and the owner is told to revoke, which ends
        the grant on chain with the usual split.
        """
        with self.chain_lock:
            request = self._get(request_id)
            if request.status not in (Status.PENDING, Status.ACTIVE) or policy.is_expired(
                request, now=self.clock()
            ) or request_id in self.denied_locally:
                raise errors.ContractReverted(
                    "RequestNotPending", {"id": request_id, "status": int(request.status)}
                )
            self.denied_locally.add(request_id)
            self._approvals.pop(request_id, None)
            self._record(DENY, grant_id=request_id, company=request.company,
                         names=scopes.names_of(request.scopes))
            too_late = errors.ConsentError(
                f"request {request_id} was already approved on chain (your earlier approval "
                "was relayed); the vault now refuses every release for it — run "
                f"`vault revoke {request_id}` to end it and keep what it earned"
            )
            if request.status == Status.ACTIVE:
                raise too_late
            try:
                tx_hash = _hex(self.ledger.deny(request_id).transaction_hash)
            except errors.ContractReverted as reverted:
                if reverted.name == "RequestNotPending":
                    raise too_late from None
                raise
            return DenyResult(request_id=request_id, tx_hash=tx_hash)

    def revoke(self, request_id: int) -> RevokeResult:
        """Stop releases at once (local revocation, logged durably), then revoke on chain."""
        with self.chain_lock:
            request = self._get(request_id)
            if request.status != Status.ACTIVE or policy.is_expired(request, now=self.clock()):
                raise errors.ContractReverted(
                    "GrantNotActive", {"id": request_id, "status": int(request.status)}
                )
            self.revoked_locally.add(request_id)
            self._record(REVOKE, grant_id=request_id, company=request.company,
                         names=scopes.names_of(request.scopes))
            outcome = self.ledger.revoke(request_id)
            event = outcome.event("AccessRevoked").args
            earned, refund = int(event["ownerEarned"]), int(event["companyRefund"])
            self._terminate(request, "revoked", earned=earned, refund=refund)
            return RevokeResult(
                request_id=request_id, tx_hash=_hex(outcome.transaction_hash),
                owner_earned_wei=earned, company_refund_wei=refund,
            )

    def _terminate(self, request: GrantView, why: str, *, earned: int | None = None,
                   refund: int | None = None) -> None:
        if request.id in self._terminated:
            return
        self._terminated.add(request.id)
        self._record(
            audit.TERMINATION_RECEIPT, grant_id=request.id, company=request.company,
            names=scopes.names_of(request.scopes),
            detail={"reason": why, "owner_earned_wei": earned, "company_refund_wei": refund,
                    "expires_at": policy.expires_at(request)},
        )

    # --- background duties (called by the daemon's sync loop) ------------------------------

    def review_new_requests(self) -> list[int]:
        """Apply the auto-approval rules to pending requests not yet looked at; the approved ids."""
        rules = self.rules()
        approved: list[int] = []
        for request in self._mine():
            if (request.status != Status.PENDING or request.id in self._reviewed
                    or request.id in self._approvals or request.id in self.denied_locally):
                continue
            self._reviewed.add(request.id)
            verdict = policy.auto_approval(
                request, rules, catalog_hash=scopes.catalog_hash(),
                terms_never=self.terms().scopes_never,
            )
            if verdict.approve:
                self.approve(request.id, submit=False, rule=verdict.rule)
                approved.append(request.id)
        return approved

    def record_terminations(self) -> None:
        """A termination receipt for every grant that expired or was revoked on chain."""
        now = self.clock()
        for request in self._mine():
            if request.id in self._terminated:
                continue
            if request.status == Status.REVOKED:
                self._terminate(request, "revoked")
            elif request.status == Status.ACTIVE and policy.is_expired(request, now=now):
                self._terminate(request, "expired")

    # --- money -----------------------------------------------------------------------------

    def earnings(self) -> EarningsPublic:
        with self.chain_lock:
            return self._earnings()

    def _earnings(self) -> EarningsPublic:
        grants = []
        for request in self._mine():
            if request.status in (Status.ACTIVE, Status.REVOKED):
                grants.append(GrantEarnings(
                    id=request.id, earned_wei=self.ledger.earned(request.id),
                    claimable_wei=self.ledger.claimable(request.id),
                ))
        return EarningsPublic(
            owed_wei=self.ledger.owed(self.owner),
            claimable_wei=sum(g.claimable_wei for g in grants),
            grants=grants,
        )

    def claim(self, ids: list[int] | None = None) -> ClaimResult:
        with self.chain_lock:
            if ids is None:
                ids = [g.id for g in self.earnings().grants if g.claimable_wei > 0]
            if not ids:
                return ClaimResult(claimed_wei=0, tx_hash=None)
            for request_id in ids:
                self._get(request_id)
            claimed = self.ledger.claim_many(ids)
            self._record(CLAIM, detail={"ids": ids, "claimed_wei": claimed})
            return ClaimResult(claimed_wei=claimed, tx_hash=None)

    def withdraw(self) -> WithdrawResult:
        with self.chain_lock:
            withdrawn = self.ledger.withdraw()
            self._record(WITHDRAW, detail={"withdrawn_wei": withdrawn})
            return WithdrawResult(withdrawn_wei=withdrawn, tx_hash=None)

    # --- terms and rules -------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as exc:
            raise errors.CorruptFile(f"{self._path} is unreadable ({type(exc).__name__})") from None
        return data if isinstance(data, dict) else {}

    def _save(self, **changes: Any) -> None:
        data = {**self._settings(), **changes}
        _files.write_atomically(self._path, json.dumps(data, indent=2, sort_keys=True).encode())

    def terms(self) -> Terms:
        raw = self._settings().get("terms")
        return Terms.model_validate(raw) if raw is not None else Terms(
            scopes_offered=[s.name for s in scopes.CATALOG]
        )

    def set_terms(self, terms: Terms) -> Terms:
        for name in [*terms.scopes_offered, *terms.scopes_never]:
            scopes.scope(name)
        with self.chain_lock:
            self._save(terms=terms.model_dump())
            self._record(TERMS, detail={"terms_hash": terms_hash(terms)})
        return terms

    def public_terms(self) -> TermsPublic:
        terms = self.terms()
        return TermsPublic(
            owner=self.owner, endpoint=self._settings().get("endpoint"), terms=terms,
            terms_hash=terms_hash(terms),
        )

    def publish_terms(self, endpoint: str) -> PublishResult:
        with self.chain_lock:
            digest = terms_hash(self.terms())
            outcome = self.ledger.publish_endpoint(endpoint, bytes.fromhex(digest[2:]))
            self._save(endpoint=endpoint)
            self._record(PUBLISH, detail={"endpoint": endpoint, "terms_hash": digest})
            return PublishResult(tx_hash=_hex(outcome.transaction_hash), terms_hash=digest)

    def rules(self) -> RuleSet:
        raw = self._settings().get("rules")
        return RuleSet.model_validate(raw) if raw is not None else RuleSet()

    def set_rules(self, rules: RuleSet) -> RuleSet:
        with self.chain_lock:
            self._save(rules=rules.model_dump())
            self._record(RULES, detail={"rules": len(rules.rules),
                                        "never_share": list(rules.never_share)})
            self._reviewed.clear()  # new rules: pending requests get another look
        return rules

    # --- the access log --------------------------------------------------------------------

    def log(self, limit: int = 100) -> list[LogEntryPublic]:
        return [
            LogEntryPublic(
                seq=e.seq, at=e.at, kind=e.kind, grant_id=e.grant_id, company=e.company,
                scopes=list(e.scopes), outcome=e.outcome, reason=e.reason,
                content_hash=e.content_hash, entry_hash="0x" + e.entry_hash.hex(),
            )
            for e in self.audit.entries(limit=limit)
        ]

    def verify_log(self) -> VerifyPublic:
        result = self.audit.verify()
        return VerifyPublic(
            ok=result.ok, entries=result.entries, first_bad_seq=result.first_bad_seq
        )
