"""What the owner reads: their requests and grants as the wire shows them, with the
plain-language consent statement, the name each company published and its history with this
owner, and the access log."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from vault import audit, errors, policy, scopes
from vault.eth import units
from vault.grant import Grant, Status
from vault.owner.state import OwnerState
from vault.wire import (
    CompanyHistoryPublic,
    LogEntryPublic,
    MemberPublic,
    RequestPublic,
    RequestStatus,
    VerifyPublic,
)

#: The most of a company's self-published name and URL shown, in characters (the ledger
#: allows 64 and 256 bytes).
NAME_CHARS, URL_CHARS = 40, 200
#: An address, whole or shortened (``0x7099…79C8``), inside a name.
_ADDRESS_LIKE = re.compile(r"0x[0-9a-f]{4}", re.IGNORECASE)


def _visible(text: str, limit: int) -> str:
    """``text`` with every control and format character (escapes, bidi overrides,
    zero-width joiners) removed, runs of whitespace made one space, cut to ``limit``."""
    # Tabs and line breaks are control characters too: they become spaces, not nothing.
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c)[0] != "C")
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def shown_name(raw: str) -> str | None:
    """A company's self-published name as the owner sees it, or ``None`` for no name: what
    is left after :func:`_visible`, unless it holds something that reads as an address (a
    name must never pass for another account; the address is always shown beside it)."""
    name = _visible(raw, NAME_CHARS)
    if not name or _ADDRESS_LIKE.search(unicodedata.normalize("NFKC", name)):
        return None
    return name


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

    def _approval(self, request: Grant, status: RequestStatus) -> tuple[int | None, bool, bool]:
        """The owner's newest approval of a pending request: when its signature expires,
        whether it still waits for the company to relay it (valid, not sent by the owner, and
        for a group request not yet counted as this member's approval on chain), and whether
        the owner sent it to the ledger itself."""
        signed = self._state.approvals.get(request.id)
        if status != "pending" or signed is None:
            return None, False, False
        relayed = any(m.owner == self._state.owner and m.approved for m in request.members)
        waiting = signed.deadline > self._state.chain_now() and not relayed and not signed.sent
        return signed.deadline, waiting, signed.sent

    def _described(self, company: str) -> tuple[str | None, str | None]:
        """The name and URL ``company`` published, as the owner may see them (no URL
        without a name)."""
        described = self._state.index.name_of(company)
        name = None if described is None else shown_name(described.name)
        if described is None or name is None:
            return None, None
        return name, _visible(described.url, URL_CHARS) or None

    def _history(self, request: Grant, now: float) -> CompanyHistoryPublic:
        """What the company's other requests to this owner came to."""
        others = [self._status(r, now) for r in self._state.index.requests_for_company(
            request.company) if r.id != request.id]
        return CompanyHistoryPublic(
            requests=len(others),
            granted=sum(s in ("active", "expired", "revoked") for s in others),
            revoked=others.count("revoked"),
            denied=others.count("denied"),
        )

    def public(self, request: Grant, now: float) -> RequestPublic:
        try:
            names = scopes.names_of(request.scopes)
        except errors.UnknownScope:
            names = []
        endpoint = self._state.index.endpoint_of(request.company)
        company_name, company_url = self._described(request.company)
        status = self._status(request, now)
        approval_expires_at, awaiting_relay, approval_sent = self._approval(request, status)
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
            status=status,
            starts_at=request.starts_at or None,
            expires_at=request.expires_at,
            releases_used=self._state.releases_used(request.id),
            consent_statement=consent_statement(request),
            members=[
                MemberPublic(owner=m.owner, approved=m.approved, share_wei=m.share)
                for m in request.members
            ] or None,
            company_name=company_name,
            company_url=company_url,
            company_history=self._history(request, now),
            approval_expires_at=approval_expires_at,
            awaiting_relay=awaiting_relay,
            approval_sent=approval_sent,
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
            note=records_note(e.kind, e.detail),
        )
        for e in log.entries(limit=limit)
    ]


def records_note(kind: str, detail: Mapping[str, Any]) -> str | None:
    """An import's or a forget's counts in words: "30 new, 2 already stored (spotify)"."""
    facts = detail.get("facts")
    if kind == audit.IMPORT:
        words = (f"{detail.get('new_events', 0)} new, {detail.get('duplicate_events', 0)} "
                 f"already stored ({', '.join(detail.get('sources', ())) or 'no events'})")
        return words + (f", {facts} facts" if facts else "")
    if kind == audit.FORGET:
        by_source = ", ".join(f"{source} {n}"
                              for source, n in detail.get("events_by_source", {}).items())
        words = f"{detail.get('events', 0)} events" + (f" ({by_source})" if by_source else "")
        return words + (f", facts {', '.join(facts)}" if facts else "")
    return None


def verify_log(log: audit.AuditLog) -> VerifyPublic:
    """Whether the access log's hash chain holds (no chain needed)."""
    result = log.verify()
    return VerifyPublic(ok=result.ok, entries=result.entries, first_bad_seq=result.first_bad_seq)
