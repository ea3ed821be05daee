"""What the owner reads: their requests and grants as the wire shows them, with the
plain-language consent statement, and the access log."""

from __future__ import annotations

import json

from vault import audit, errors, policy, scopes
from vault.eth import units
from vault.grant import Grant, Status
from vault.owner.state import OwnerState
from vault.wire import (
    LogEntryPublic,
    MemberPublic,
    RequestPublic,
    RequestStatus,
    VerifyPublic,
)


def _duration(seconds: int) -> str:
    if seconds % 86_400 == 0:
        days = seconds // 86_400
        return f"{days} day" + ("s" if days != 1 else "")
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{seconds} seconds"


def consent_statement(request: Grant) -> str:
    """What approving means, in words, from the request's on-chain fields only."""
    try:
        described = [f"{s.description.lower()} ({s.name})"
                     for s in map(scopes.scope, scopes.names_of(request.scopes))]
    except errors.UnknownScope:
        described = [f"scope bitmap {request.scopes} (not in this vault's catalog)"]
    limit = (f"at most {request.max_releases} releases" if request.max_releases
             else "any number of releases")
    per_day = units.format_eth(policy.price_per_day(request.price, request.duration))
    if not request.is_group:
        return (
            f"{request.company} pays {units.format_eth(request.price)} in total ({per_day} per "
            f"day) for {_duration(request.duration)} of access, {limit}, to: "
            f"{'; '.join(described)}. Stated purpose: "
            f"{json.dumps(request.purpose, ensure_ascii=False)}."
            " You can revoke at any time and keep what was earned so far."
        )
    total = sum(m.share for m in request.members)
    members = "; ".join(f"{m.owner} ({units.format_eth(m.share)})" for m in request.members)
    return (
        f"{request.company} asks {len(request.members)} people together and pays "
        f"{units.format_eth(total)} in total, shared as: {members}. Your share is "
        f"{units.format_eth(request.price)} ({per_day} per day) for "
        f"{_duration(request.duration)} of access, {limit}, to: {'; '.join(described)}."
        f" Stated purpose: {json.dumps(request.purpose, ensure_ascii=False)}."
        " The grant starts only when every member has approved; any member can revoke it for"
        " everyone at any time, and each keeps what they earned so far."
    )


class OwnerViews:
    def __init__(self, state: OwnerState) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"OwnerViews(owner={self._state.owner})"

    def _status(self, request: Grant, now: float) -> RequestStatus:
        if request.id in self._state.revoked_locally or request.status == Status.REVOKED:
            return "revoked"
        if request.id in self._state.denied_locally:
            return "denied"
        if request.status == Status.ACTIVE:
            return "expired" if request.is_expired(now) else "active"
        names: dict[int, RequestStatus] = {
            Status.PENDING: "pending", Status.DENIED: "denied", Status.CANCELLED: "cancelled",
        }
        return names.get(request.status, "pending")

    def public(self, request: Grant, now: float) -> RequestPublic:
        try:
            names = scopes.names_of(request.scopes)
        except errors.UnknownScope:
            names = []
        endpoint = self._state.index.endpoint_of(request.company)
        return RequestPublic(
            id=request.id,
            owner=request.owner,
            company=request.company,
            company_endpoint=endpoint.url if endpoint is not None else None,
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
            expires_at=request.expires_at,
            releases_used=self._state.releases_used(request.id),
            consent_statement=consent_statement(request),
            members=[
                MemberPublic(owner=m.owner, approved=m.approved, share_wei=m.share)
                for m in request.members
            ] or None,
        )

    def requests(self, status: str = "pending") -> list[RequestPublic]:
        now = self._state.clock()
        every = [self.public(r, now) for r in self._state.mine()]
        if status == "all":
            return every
        return [r for r in every if r.status == status]

    def request(self, request_id: int) -> RequestPublic:
        return self.public(self._state.get(request_id), self._state.clock())

    def grants(self) -> list[RequestPublic]:
        now = self._state.clock()
        every = (self.public(r, now) for r in self._state.mine())
        return [r for r in every if r.status in ("active", "expired", "revoked")]

    def log(self, limit: int = 100) -> list[LogEntryPublic]:
        return log_entries(self._state.audit, limit)

    def verify_log(self) -> VerifyPublic:
        return verify_log(self._state.audit)


def log_entries(log: audit.AuditLog, limit: int = 100) -> list[LogEntryPublic]:
    """The newest ``limit`` entries of the access log, as the wire shows them (no chain)."""
    return [
        LogEntryPublic(
            seq=e.seq, at=e.at, kind=e.kind, grant_id=e.grant_id, company=e.company,
            scopes=list(e.scopes), outcome=e.outcome, reason=e.reason,
            content_hash=e.content_hash, entry_hash="0x" + e.entry_hash.hex(),
        )
        for e in log.entries(limit=limit)
    ]


def verify_log(log: audit.AuditLog) -> VerifyPublic:
    """Whether the access log's hash chain holds (no chain needed)."""
    result = log.verify()
    return VerifyPublic(ok=result.ok, entries=result.entries, first_bad_seq=result.first_bad_seq)
