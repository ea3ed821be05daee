"""The release book: used nonces, release counters and privacy spent, checked and counted
atomically.

Both live in memory for the hot path and are rebuilt at start from the access log, whose
release entries carry the company (= signer), nonce and ``issued_at``. A release's response
is sent only after its log entry is durable, so every nonce a company ever saw accepted is
in the log: replay protection survives a restart (THREATS row 10). Nonces are kept while
their ``issued_at`` is inside the skew window — older requests are refused as stale anyway.

:meth:`ReleaseBook.admit` checks the nonce and the limits and reserves the release under
one lock, so concurrent requests can never count past ``maxReleases`` or a budget
(THREATS row 28). A reservation is never given back: a release that fails after it only
makes the count conservative.

The privacy budget (THREATS row 38) is kept per company as the noisy entries it was charged
for (:func:`vault.privacy.revealed_entries`: keyed digest → ε). An entry it receives again
costs nothing — the noise is memoised, so it learns nothing new — and the entries charged
by a release are written in its log entry (``detail.revealed``), from which the book is
rebuilt at start.

After a restore from a backup that did not carry the log, the answered nonces are unknown:
the log's ``restore`` entry holds a floor, and every request issued before it is refused as
stale (THREATS row 35).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from vault import privacy
from vault.audit import RELEASE, RELEASED, AuditLog
from vault.grant import Grant
from vault.policy import Counters, Deny, Limits, ReleaseAsk, check_limits
from vault.wire import Code

SECONDS_PER_DAY = 86_400


def day_of(now: float) -> int:
    return int(now // SECONDS_PER_DAY)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A reserved release; ``charged``: the noisy entries new to this company (keyed digest
    → ε), which its log entry must carry."""

    charged: dict[str, float]


class ReleaseBook:
    def __init__(self, *, skew_seconds: int, limits: Limits) -> None:
        self.skew_seconds = skew_seconds
        self.limits = limits
        self._lock = threading.Lock()
        self._nonces: dict[tuple[str, str], int] = {}
        self._per_grant: defaultdict[int, int] = defaultdict(int)
        self._today = -1
        self._per_company_today: defaultdict[str, int] = defaultdict(int)
        self._charged: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._spent: defaultdict[str, float] = defaultdict(float)
        self._pruned_at = 0.0
        self._issued_floor = 0.0

    @classmethod
    def from_log(
        cls, audit: AuditLog, *, now: float, skew_seconds: int, limits: Limits
    ) -> ReleaseBook:
        """Rebuild from the access log's release entries."""
        book = cls(skew_seconds=skew_seconds, limits=limits)
        book._today = day_of(now)
        per_grant, per_company = audit.release_counts(since=book._today * SECONDS_PER_DAY)
        book._per_grant.update(per_grant)
        book._per_company_today.update({k.lower(): v for k, v in per_company.items() if k})
        for entry in audit.of_kind(RELEASE, since=now - 2 * skew_seconds - 1):
            if entry.outcome != RELEASED or not entry.company:
                continue
            nonce, issued_at = entry.detail.get("nonce"), entry.detail.get("issued_at")
            if isinstance(nonce, str) and isinstance(issued_at, int):
                book._nonces[(entry.company.lower(), nonce.lower())] = issued_at
        for company, charged in privacy.charges_by_company(audit.disclosures()).items():
            book._charged[company] = charged
            book._spent[company] = sum(charged.values())
        book._issued_floor = audit.replay_floor()
        return book

    def releases_of(self, grant_id: int) -> int:
        return self._per_grant.get(grant_id, 0)

    def epsilon_after(self, company: str, revealed: Mapping[str, float]) -> float:
        """The ε ``company`` would have spent once charged the entries of ``revealed`` new
        to it (the match service checks its budget with this before :meth:`admit`)."""
        known = self._charged.get(company.lower(), {})
        fresh = sum(cost for item, cost in revealed.items() if item not in known)
        return self._spent.get(company.lower(), 0.0) + fresh

    def admit(
        self,
        grant: Grant,
        ask: ReleaseAsk,
        *,
        nonce: str,
        now: float,
        revealed: Mapping[str, float],
    ) -> Admitted | Deny:
        """Refuse a replayed nonce or an exhausted limit; otherwise reserve the release and
        charge the entries of ``revealed`` (the answer's noisy entries) new to the company."""
        company = ask.signer.lower()
        key = (company, nonce.lower())
        if ask.issued_at < self._issued_floor:
            return Deny(Code.STALE_REQUEST, "the request was issued before this vault was "
                                            "restored from a backup without its access log")
        with self._lock:
            if key in self._nonces:
                return Deny(Code.REPLAYED, "this nonce was already used")
            day = day_of(now)
            if day != self._today:
                self._today = day
                self._per_company_today.clear()
            decision = check_limits(
                grant,
                ask,
                counters=Counters(
                    self._per_grant.get(grant.id, 0),
                    self._per_company_today.get(company, 0),
                    self._spent.get(company, 0.0),
                ),
                limits=self.limits,
            )
            if isinstance(decision, Deny):
                return decision
            self._nonces[key] = ask.issued_at
            self._per_grant[grant.id] += 1
            self._per_company_today[company] += 1
            charged: dict[str, float] = {}
            if revealed:
                known = self._charged[company]
                charged = {item: cost for item, cost in revealed.items() if item not in known}
                known.update(charged)
                self._spent[company] += sum(charged.values())
            if now - self._pruned_at > self.skew_seconds:
                self._prune(now)
            return Admitted(charged)

    def _prune(self, now: float) -> None:
        """Forget nonces whose requests the skew check would refuse anyway.

        A request's skew was checked at the ``now`` it arrived, which may be well before the
        ``now`` of the admit that prunes (it waited on the signing process meanwhile): the
        horizon keeps a second skew window of slack, as :meth:`from_log` does, so a nonce is
        never forgotten while a request carrying it can still pass the skew check.
        """
        horizon = now - 2 * self.skew_seconds - 1
        self._nonces = {k: t for k, t in self._nonces.items() if t >= horizon}
        self._pruned_at = now
