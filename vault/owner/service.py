"""One owner service behind the daemon's owner routes and the CLI, and the one way to open
it without a daemon; and what the owner reads from the vault alone, without the chain."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vault import audit
from vault.config import Settings
from vault.eth.chain import Chain
from vault.eth.index import LedgerIndex, index_path
from vault.eth.sync import follow
from vault.owner.consent import Consent
from vault.owner.match import MatchDesk, MatchPreview
from vault.owner.money import Money
from vault.owner.privacy import PrivacyBudget
from vault.owner.state import OwnerState, OwnerVault
from vault.owner.terms import TermsAndRules, saved_rules, saved_terms
from vault.owner.views import OwnerViews, log_entries, verify_log
from vault.policy import RuleSet
from vault.wire import (
    ApprovalPublic,
    ApproveResult,
    BalancePublic,
    ClaimResult,
    DenyResult,
    EarningsPublic,
    LogEntryPublic,
    MatchPreviewBody,
    MatchPreviewPublic,
    PrivacyPublic,
    PublishResult,
    RequestPublic,
    RevokeResult,
    Terms,
    TermsPublic,
    VerifyPublic,
    WithdrawResult,
)


class OwnerService:
    """The owner's operations over one vault on one chain, by concern: :attr:`views`
    (requests, grants, the log), :attr:`consent` (approve, deny, revoke, the unattended
    duties), :attr:`money`, :attr:`terms_and_rules` and :attr:`budget` (privacy spent). The
    methods below are the interface the daemon's owner routes serve and the CLI calls
    (``vault.cli.backend.OwnerBackend``)."""

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
        self.state = OwnerState(vault, chain, index, log, settings=settings, clock=clock,
                                releases_used=releases_used)
        self.views = OwnerViews(self.state)
        self.terms_and_rules = TermsAndRules(self.state)
        self.consent = Consent(self.state, self.terms_and_rules)
        self.money = Money(self.state)
        self.budget = PrivacyBudget(self.state)
        self.match_desk = MatchDesk(vault, self.terms_and_rules)
        self.match = MatchPreview(self.state, self.match_desk)

    def __repr__(self) -> str:
        return f"OwnerService(owner={self.state.owner})"

    def requests(self, status: str = "pending") -> list[RequestPublic]:
        return self.views.requests(status)

    def request(self, request_id: int) -> RequestPublic:
        return self.views.request(request_id)

    def grants(self) -> list[RequestPublic]:
        return self.views.grants()

    def approve(self, request_id: int, *, submit: bool = False) -> ApproveResult:
        return self.consent.approve(request_id, submit=submit)

    def approval(self, request_id: int) -> ApprovalPublic:
        return self.consent.approval(request_id)

    def deny(self, request_id: int) -> DenyResult:
        return self.consent.deny(request_id)

    def revoke(self, request_id: int) -> RevokeResult:
        return self.consent.revoke(request_id)

    def earnings(self) -> EarningsPublic:
        return self.money.earnings()

    def balance(self) -> BalancePublic:
        return self.money.balance()

    def claim(self, ids: list[int] | None = None) -> ClaimResult:
        return self.money.claim(ids)

    def withdraw(self) -> WithdrawResult:
        return self.money.withdraw()

    def terms(self) -> Terms:
        return self.terms_and_rules.terms()

    def set_terms(self, terms: Terms) -> Terms:
        return self.terms_and_rules.set_terms(terms)

    def public_terms(self) -> TermsPublic:
        return self.terms_and_rules.public_terms()

    def publish_terms(self, endpoint: str) -> PublishResult:
        return self.terms_and_rules.publish_terms(endpoint)

    def rules(self) -> RuleSet:
        return self.terms_and_rules.rules()

    def set_rules(self, rules: RuleSet) -> RuleSet:
        saved = self.terms_and_rules.set_rules(rules)
        self.consent.forget_reviews()
        return saved

    def log(self, limit: int = 100) -> list[LogEntryPublic]:
        return self.views.log(limit)

    def verify_log(self) -> VerifyPublic:
        return self.views.verify_log()

    def privacy(self) -> PrivacyPublic:
        return self.budget.report()

    def match_preview(self, body: MatchPreviewBody) -> MatchPreviewPublic:
        return self.match.preview(body)


@contextmanager
def opened(settings: Settings, vault: OwnerVault, chain: Chain) -> Iterator[OwnerService]:
    """The owner service over ``vault`` without a daemon (the CLI when none runs): its index
    brought up to date first — a failure there is the chain's and surfaces — and its log."""
    log = audit.AuditLog.in_home(vault.home, key=vault.access_log_key())
    index = LedgerIndex(
        index_path(vault.home), chain_id=chain.chain_id, ledger_address=chain.ledger_address,
        owner=vault.owner_address,
    )
    sync = follow(settings, chain, index)
    try:
        sync.sync_once()
        yield OwnerService(vault, chain, index, log, settings=settings)
    finally:
        sync.close()
        log.close()
        index.close()


class OfflineOwner:
    """What the owner reads from the vault's own files, with no chain: the access log, its
    verification, terms and rules — the CLI's read-only commands when no daemon runs, so
    they work while the chain is unreachable (issue 14)."""

    def __init__(self, home: Path, log: audit.AuditLog) -> None:
        self._home = home
        self._log = log

    def __repr__(self) -> str:
        return f"OfflineOwner({self._home})"

    def log(self, limit: int = 100) -> list[LogEntryPublic]:
        return log_entries(self._log, limit)

    def verify_log(self) -> VerifyPublic:
        return verify_log(self._log)

    def terms(self) -> Terms:
        return saved_terms(self._home)

    def rules(self) -> RuleSet:
        return saved_rules(self._home)


@contextmanager
def opened_offline(vault: OwnerVault) -> Iterator[OfflineOwner]:
    """:class:`OfflineOwner` over ``vault``: its log and saved settings, no chain, no sync."""
    log = audit.AuditLog.in_home(vault.home, key=vault.access_log_key())
    try:
        yield OfflineOwner(vault.home, log)
    finally:
        log.close()
