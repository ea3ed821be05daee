"""A request and, once approved, a grant: the one picture of it every part uses.

The contract stores a request (``getRequest``); the ledger index folds the same request from
its events and adds what only the events carry (the catalog hash, the purpose, what a revoke
split) and its own bookkeeping (blocks, when a contract read last confirmed it). The policy,
the owner's views and the company SDK all read this one :class:`Grant`; "expired" is derived
here, once, from ``starts_at + duration`` as the contract derives it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.IntEnum):
    """A request's stored status; "expired" is derived from ``startsAt + duration``."""

    NONE = 0
    PENDING = 1
    ACTIVE = 2
    DENIED = 3
    CANCELLED = 4
    REVOKED = 5


@dataclass(frozen=True, slots=True)
class Member:
    """One owner of a group request: who, whether they approved, and their part of the price
    (an equal share, the remainder to the first owner)."""

    owner: str
    approved: bool
    share: int


@dataclass(frozen=True, slots=True)
class Grant:
    """A request or grant. Wei and timestamps are ``int``; ``scopes`` is the bitmap.

    ``catalog_hash`` and ``purpose`` are empty when the grant was read from the contract
    (they live only in its ``AccessRequested`` event).
    """

    id: int
    owner: str
    company: str
    scopes: int
    price: int
    duration: int
    max_releases: int
    status: Status
    starts_at: int
    claimed: int = 0
    catalog_hash: bytes = b""
    purpose: str = ""
    #: What a revoke split (from its event); ``None`` until revoked.
    owner_earned: int | None = None
    company_refund: int | None = None
    #: A group request's owners in the company's order; empty for a single owner's request.
    members: tuple[Member, ...] = ()
    #: The index's bookkeeping: the blocks of the first and the latest event.
    requested_block: int = 0
    updated_block: int = 0
    #: When a contract read last agreed with this state (wall clock); ``None`` until then and
    #: again after every event that changes it. Not part of the state's identity.
    confirmed_at: float | None = field(default=None, compare=False)

    @property
    def is_group(self) -> bool:
        return bool(self.members)

    @property
    def expires_at(self) -> int | None:
        """When an approved grant stops being active; ``None`` while never approved."""
        return self.starts_at + self.duration if self.starts_at else None

    def is_expired(self, now: float) -> bool:
        """Approved once and past its end at unix time ``now``."""
        end = self.expires_at
        return end is not None and now >= end

    def is_active(self, now: float) -> bool:
        """Active and unexpired at ``now`` (the contract's ``isActive`` rule)."""
        return self.status is Status.ACTIVE and not self.is_expired(now)

    def grants_all(self, scopes: int) -> bool:
        """``scopes`` is non-empty and every one of them is granted."""
        return scopes != 0 and scopes & ~self.scopes == 0

    def covers(self, scopes: int, now: float) -> bool:
        """The contract's ``covers``: active at ``now`` and :meth:`grants_all`."""
        return self.is_active(now) and self.grants_all(scopes)
