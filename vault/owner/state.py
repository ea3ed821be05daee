"""What the owner's parts share: the vault, the chain, the index, the log, and the owner's
local decisions, reloaded from the log.

What must outlive a restart is kept in the access log itself: local revocations (a revoke
stops releases at once, before its transaction confirms, and still after a restart), the
owner's denials (their no wins over a relayed approval, THREATS row 33), the approval
signatures served to companies for ``approveBySig``, and which grants got a termination
receipt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from vault import audit, errors
from vault.config import Settings
from vault.eth import eip712
from vault.eth import ledger as eth_ledger
from vault.eth.chain import Chain
from vault.eth.index import LedgerIndex
from vault.grant import Grant

APPROVE, DENY, REVOKE = "approve", "deny", "revoke"
AUTO_APPROVE = "auto_approve"
TERMS, RULES, PUBLISH, CLAIM, WITHDRAW = "terms", "rules", "publish", "claim", "withdraw"


class OwnerVault(Protocol):
    @property
    def owner_address(self) -> str: ...

    @property
    def home(self) -> Path: ...

    def owner_account(self) -> Any: ...

    def access_log_key(self) -> Any: ...

    # What the match desk reads (vault.owner.match.MatchVault).
    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def history(self) -> Any: ...
    def facts(self) -> dict[str, Any]: ...
    def secret(self, name: str) -> bytes: ...


class Approval(NamedTuple):
    """The owner's newest approval of a request: its signature and deadline, and whether the
    owner sent ``approve`` to the ledger itself (else the company relays the signature)."""

    deadline: int
    signature: str
    sent: bool


class OwnerState:
    """The owner's side of one vault on one chain. ``releases_used`` is the daemon's release
    count per grant (the CLI without a daemon counts the log's release entries)."""

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
        self.domain = eip712.Domain(chain.chain_id, chain.ledger_address)
        self.account = vault.owner_account()
        self.ledger = eth_ledger.LedgerClient(chain.w3, chain.ledger_address, sender=self.account)
        self.releases_used = releases_used or self._logged_releases
        #: Held for every chain interaction (the sync loop takes it too): some backends,
        #: like the embedded py-evm chain, are not thread-safe.
        self.chain_lock = threading.RLock()
        self.revoked_locally: set[int] = _ids(log.of_kind(REVOKE))
        #: Requests the owner said no to: refused whatever the ledger says later.
        self.denied_locally: set[int] = _ids(log.of_kind(DENY))
        self.approvals: dict[int, Approval] = {
            entry.grant_id: Approval(int(entry.detail["deadline"]), str(entry.detail["signature"]),
                                     sent=bool(entry.detail.get("tx_hash")))
            for kind in (APPROVE, AUTO_APPROVE)
            for entry in log.of_kind(kind)
            if entry.grant_id is not None
        }
        self.terminated: set[int] = _ids(log.of_kind(audit.TERMINATION_RECEIPT))

    def __repr__(self) -> str:
        return f"OwnerState(owner={self.owner})"

    def chain_now(self) -> float:
        """The ledger's time as far as this vault knows: the wall clock, or the newest block's
        timestamp when the chain runs ahead of it (a devnet moved forward). An approval's
        deadline is checked against ``block.timestamp``, so it is counted from here."""
        return max(self.clock(), float(self.index.lag().head_timestamp or 0))

    def mine(self) -> list[Grant]:
        """Every request addressed to this owner, oldest first."""
        return self.index.requests()

    def get(self, request_id: int) -> Grant:
        """This owner's request ``request_id``; :class:`NotFound` for any other id."""
        request = self.index.grant(request_id)
        if request is None or request.owner.lower() != self.owner.lower():
            raise errors.NotFound(f"no request {request_id} for this vault")
        return request

    def record(self, kind: str, *, grant_id: int | None = None, company: str | None = None,
               names: Iterable[str] = (), detail: dict[str, Any] | None = None) -> None:
        """Append an owner action to the access log, durably, before it takes effect."""
        self.audit.append_sync(
            audit.NewEntry(
                at=round(self.clock(), 3), kind=kind, outcome=audit.OK, grant_id=grant_id,
                company=company, scopes=tuple(names), detail=detail or {},
            )
        )

    def _logged_releases(self, grant_id: int) -> int:
        return sum(
            1 for e in self.audit.for_grant(grant_id, kind=audit.RELEASE)
            if e.outcome == audit.RELEASED
        )


def _ids(entries: Iterable[audit.Entry]) -> set[int]:
    return {e.grant_id for e in entries if e.grant_id is not None}
