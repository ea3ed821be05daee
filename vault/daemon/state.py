"""What one running daemon holds (``app.state.daemon``) and its background duties.

:class:`Daemon` wires the parts for one unlocked vault and one chain: the access log, the
ledger index and its sync loop (a thread, since web3 calls block), the release book, the
owner service and the release service. The sync loop also runs the owner's unattended
duties after each round: auto-approval of new requests and termination receipts for grants
that expired or were revoked on chain; and it writes the periodic summary of refusals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import vault
from vault import audit, errors, scopes
from vault.audit import AuditLog
from vault.config import Settings
from vault.daemon.book import ReleaseBook
from vault.daemon.household import HouseholdService
from vault.daemon.match import MatchService
from vault.daemon.release import DerivedCache, RefusalTally, ReleaseService
from vault.daemon.signatures import SignerProcess
from vault.eth.chain import Chain
from vault.eth.index import LedgerIndex, index_path
from vault.eth.sync import follow
from vault.owner import OwnerService
from vault.policy import Limits
from vault.wire import HealthPublic

log = logging.getLogger("vault.daemon")


class DaemonVault(Protocol):
    """What the daemon needs of an unlocked :class:`vault.store.Vault`."""

    @property
    def home(self) -> Any: ...
    @property
    def owner_address(self) -> str: ...
    def owner_account(self) -> Any: ...
    def secret(self, name: str) -> bytes: ...
    def access_log_key(self) -> Any: ...
    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def history(self) -> Any: ...
    def facts(self) -> dict[str, Any]: ...


class Daemon:
    """Everything one running daemon holds; ``app.state.daemon``."""

    def __init__(
        self,
        settings: Settings,
        *,
        vault: DaemonVault,
        chain: Chain,
        clock: Callable[[], float] = time.time,
        start_block: int = 0,
    ) -> None:
        self.settings = settings
        self.vault = vault
        self.chain = chain
        self.clock = clock
        home = vault.home
        self.audit = AuditLog.in_home(home, key=vault.access_log_key())
        self.index = LedgerIndex(
            index_path(home), chain_id=chain.chain_id, ledger_address=chain.ledger_address,
            owner=vault.owner_address,
        )
        self.sync = follow(settings, chain, self.index, start_block=start_block, clock=clock)
        self.book = ReleaseBook.from_log(
            self.audit, now=clock(), skew_seconds=settings.request_skew_seconds,
            limits=Limits(
                company_releases_per_day=settings.company_releases_per_day,
                privacy_budget=settings.privacy_budget,
            ),
        )
        self.owner = OwnerService(
            vault, chain, self.index, self.audit, settings=settings, clock=clock,
            releases_used=self.book.releases_of,
        )
        self.signatures = SignerProcess(bytes(vault.owner_account().key))
        self.tally = RefusalTally(
            per_second=settings.unauthenticated_refusals_per_second, clock=clock
        )
        self._summarised_at = clock()
        self.derived = DerivedCache(vault, clock=clock)
        self.releaser = ReleaseService(
            derived=self.derived,
            owner=vault.owner_address,
            signatures=self.signatures,
            noise_secret=vault.secret("noise"),
            domain=self.owner.state.domain,
            index=self.index,
            log=self.audit,
            book=self.book,
            revoked_locally=self.owner.state.revoked_locally,
            denied_locally=self.owner.state.denied_locally,
            tally=self.tally,
            skew_seconds=settings.request_skew_seconds,
            max_lag_seconds=settings.max_index_lag_seconds,
            max_head_age_seconds=settings.max_head_age_for(chain.chain_id),
            clock=clock,
        )
        self.matcher = MatchService(releases=self.releaser, desk=self.owner.match_desk)
        self.household = HouseholdService(
            releases=self.releaser, matches=self.matcher, signatures=self.signatures,
            desk=self.owner.match_desk, endpoints=self.index,
            timeout_seconds=settings.household_timeout_seconds,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"Daemon(owner={self.vault.owner_address})"

    def records_changed(self) -> None:
        """The owner's records changed (an import, a mood, facts, genres, a forget): the
        next release and the next match read them afresh."""
        self.derived.clear()
        self.owner.match_desk.forget_readings()

    def health(self) -> HealthPublic:
        """``behind`` by the same bounds that make releases fail closed (``check_fresh``)."""
        now = self.clock()
        lag = self.index.lag()
        try:
            self.index.check_fresh(
                now=now, max_age_seconds=self.settings.max_index_lag_seconds,
                max_head_age_seconds=self.settings.max_head_age_for(self.chain.chain_id),
            )
            status: Literal["ok", "behind"] = "ok"
        except errors.IndexStale:
            status = "behind"
        return HealthPublic(
            status=status,
            owner=self.vault.owner_address,
            chain_id=self.chain.chain_id,
            ledger=self.chain.ledger_address,
            synced_block=lag.synced_block or 0,
            # Capped: JSON has no infinity (never synced, or no head seen).
            index_lag_seconds=min(lag.seconds_since_sync(now), 1e12),
            head_age_seconds=min(lag.head_age(now), 1e12),
            catalog_hash="0x" + scopes.catalog_hash().hex(),
            version=vault.__version__,
        )

    # --- the sync loop -----------------------------------------------------------------

    def sync_round(self) -> None:
        """One ledger sync plus the owner's unattended duties; errors are logged, not raised
        (the index's growing lag makes releases fail closed meanwhile)."""
        if self.clock() - self._summarised_at >= self.settings.refusal_summary_seconds:
            self.summarise_refusals()
        try:
            with self.owner.state.chain_lock:
                self.sync.sync_once()
                self.owner.consent.review_new_requests()
                self.owner.consent.record_terminations()
            self.last_error = None
        except errors.VaultError as error:
            self.last_error = str(error)
            log.warning("ledger sync failed: %s", error)
        except Exception as error:  # keep the loop alive; the index lag shows the problem
            self.last_error = type(error).__name__
            log.exception("ledger sync failed unexpectedly")

    def summarise_refusals(self) -> None:
        """One log entry with the refusals counted since the last one (if there were any)."""
        self._summarised_at = self.clock()
        summary = self.tally.take_summary()
        if summary is None:
            return
        since, counts = summary
        self.audit.append(
            audit.NewEntry(
                at=round(self._summarised_at, 3), kind=audit.REFUSAL_SUMMARY,
                outcome=audit.REFUSED, detail={"since": round(since, 3), "counts": counts},
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.settings.sync_interval_seconds):
            self.sync_round()

    def start(self) -> None:
        self.sync_round()
        self._thread = threading.Thread(target=self._run, name="ledger-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.summarise_refusals()
        self.sync.close()
        self.audit.close()
        self.index.close()
