"""The release hot path (DESIGN.md "Release protocol"), free of HTTP.

Checks, failing closed, in this order: the flood bucket (429 ``rate_limited`` once too many
requests were refused before proving who sent them); skew window (401 ``stale_request``);
the signature over the precomputed ``Release`` digest, low-s only, recovered by the signing
process (:class:`SignerProcess`; 401 ``bad_signature``); the ledger index's freshness, from
the last sync and the chain head's time (503 ``ledger_unavailable``); the grant (403 …, pure
:func:`vault.policy.check_grant` over the in-memory index, no chain round trip: this owner's,
this company's, confirmed by a contract read, not denied); the nonce and the limits, checked
and reserved atomically by the :class:`ReleaseBook` (409 / 429).

Only a refusal of the grant's own company is written to the access log as an entry of its
own. Everything else — malformed, stale, forged or foreign requests, which anyone can send —
is counted in memory by the :class:`RefusalTally` and summarised in the log periodically, so
unauthenticated traffic cannot grow the log or push the owner's entries out of view (THREATS
row 37).
The answer — materialised derived values, memoised noise, RFC 8785 canonical JSON and its
keccak256, memoised per scopes and values — and the owner's EIP-712 ``Receipt`` over it are
prepared alongside the signature check; the log entry (with the noisy entries newly charged
to the company's privacy budget) must be durable before the answer leaves (group commit
keeps that cheap).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from vault import audit, errors, privacy, scopes
from vault.canonical import canonical_json, keccak256
from vault.daemon.book import Admitted, ReleaseBook
from vault.daemon.signatures import SignerProcess, Verified
from vault.eth import eip712
from vault.grant import Grant
from vault.policy import Deny, ReleaseAsk, check_grant, check_issued_at
from vault.wire import Code, ReleaseRequest, code_of


class GrantIndex(Protocol):
    """What the hot path reads of the ledger index (:class:`vault.eth.index.LedgerIndex`)."""

    def grant(self, grant_id: int) -> Grant | None: ...

    def check_fresh(
        self, *, now: float, max_age_seconds: float, max_head_age_seconds: float | None = None
    ) -> None: ...

    def requests_for_company(self, company: str) -> list[Any]: ...


class DerivedSource(Protocol):
    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]: ...


_STALE = "the vault cannot confirm the grant on the ledger right now"
_RELEASED = (
    b'{"grant_id":%d,"owner":"%s","company":"%s","preferences":%s,'
    b'"receipt":{"content_hash":"%s","issued_at":%d,"signature":"0x%s"}}'
)


class DerivedCache:
    """The vault's materialised values, each kept for ``ttl`` seconds.

    Reading them from the store costs a SQLite query, AES-GCM opens and, for time-dependent
    scopes (age range, moods), a re-derivation — about a millisecond, most of a release.
    While the daemon runs it holds the vault's lock, so data changes only through its owner
    routes, which call :meth:`clear` after each write; otherwise values change with time
    alone, and a few seconds of lag on an age range or a mood is harmless.
    Callers must not mutate what they get (``privacy.release_value`` copies before it
    perturbs a value, and returns it untouched otherwise).
    """

    def __init__(
        self, source: DerivedSource, *, ttl: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._clock = clock
        self._values: dict[str, tuple[float, dict[str, Any]]] = {}

    def derived(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        now = self._clock()
        wanted = list(names)
        found: dict[str, dict[str, Any]] = {}
        for name in wanted:
            cached = self._values.get(name)
            if cached is None or now - cached[0] > self._ttl:
                break
            found[name] = cached[1]
        else:
            return found
        fresh = self._source.derived(wanted)
        for name, value in fresh.items():
            self._values[name] = (now, value)
        return fresh

    def clear(self) -> None:
        """Forget every value: the vault's data changed (an import, a mood, a fact)."""
        self._values = {}


@dataclass(frozen=True, slots=True)
class Answer:
    """What every company receives for some scopes while the values are unchanged: the
    preferences, their RFC 8785 bytes (sent as they are), the keccak-256 of those bytes
    (the receipt's ``contentHash``, also as ``0x`` hex) and the noisy entries it reveals
    (:func:`vault.privacy.revealed_entries`, what the book charges a company for)."""

    preferences: dict[str, Any]
    canonical: bytes
    content_hash: bytes
    content_hash_hex: str
    revealed: dict[str, float]


class AnswerCache:
    """Memoised :class:`Answer` per scopes, while their values are unchanged.

    The noise is memoised per true entry (:func:`vault.privacy.release_value`, THREATS row
    38), so the answer is a pure function of the scopes and their values — the same for
    every company in every epoch. An entry is reused while its values are the very objects
    :class:`DerivedCache` hands out, or equal to them (it hands out new ones when it
    refreshes); a release then skips the noise draws, the canonical encoding and the
    keccak, about a fifth of a release. At most ``max_entries`` are kept, the oldest
    dropped first.
    """

    def __init__(self, *, noise_secret: bytes, max_entries: int = 256) -> None:
        self._noise_secret = noise_secret
        self._max_entries = max_entries
        self._entries: dict[tuple[str, ...], tuple[tuple[dict[str, Any], ...], Answer]] = {}

    def __repr__(self) -> str:
        return f"AnswerCache(entries={len(self._entries)})"

    def answer(self, names: tuple[str, ...], values: dict[str, dict[str, Any]]) -> Answer:
        inputs = tuple(values[name] for name in names)
        cached = self._entries.get(names)
        if cached is not None:
            if all(a is b for a, b in zip(cached[0], inputs, strict=True)):
                return cached[1]
            if cached[0] == inputs:  # refreshed but unchanged: same answer, new identities
                self._entries[names] = (inputs, cached[1])
                return cached[1]
        preferences: dict[str, Any] = {}
        revealed: dict[str, float] = {}
        for name, value in zip(names, inputs, strict=True):
            scope = scopes.scope(name)
            released = privacy.release_value(scope, value, secret=self._noise_secret)
            preferences[name] = released
            revealed.update(
                privacy.revealed_entries(scope, value, released, secret=self._noise_secret)
            )
        canonical = canonical_json(preferences)
        content_hash = keccak256(canonical)
        answer = Answer(
            preferences, canonical, content_hash, "0x" + content_hash.hex(), revealed
        )
        if names not in self._entries and len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[names] = (inputs, answer)
        return answer


class RefusalTally:
    """Refusals of requests that did not prove who sent them: counted, summarised, bounded.

    A token bucket of ``per_second`` (burst of the same size) is spent by each such refusal;
    while it is empty, new requests are answered 429 before any signature work. Thread-safe:
    the summary is taken by the daemon's sync thread.
    """

    def __init__(self, *, per_second: float, clock: Callable[[], float] = time.time) -> None:
        self._rate = per_second
        self._tokens = per_second
        self._clock = clock
        self._last = clock()
        self._counts: Counter[str] = Counter()
        self._since = self._last
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RefusalTally(pending={sum(self._counts.values())})"

    def _refill(self, now: float) -> None:
        self._tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now

    def exhausted(self) -> bool:
        with self._lock:
            self._refill(self._clock())
            return self._tokens < 1

    def count(self, code: str) -> None:
        with self._lock:
            self._refill(self._clock())
            self._tokens = max(0.0, self._tokens - 1)
            self._counts[code] += 1

    def take_summary(self) -> tuple[float, dict[str, int]] | None:
        """The counts since the last summary (and when that was), reset; ``None`` if none."""
        with self._lock:
            if not self._counts:
                return None
            summary = (self._since, dict(sorted(self._counts.items())))
            self._counts.clear()
            self._since = self._clock()
            return summary


#: What refuses a request (each logged or counted by :meth:`ReleaseService.refused`).
REFUSALS = (
    errors.ReleaseRefused, errors.SignatureInvalid, errors.SigningUnavailable,
    errors.LedgerError,
)


@dataclass(slots=True)
class Attempt:
    """How far a request got: enough to decide whether its refusal is logged (the grant's
    own company signed it) or only counted."""

    grant_id: int
    names: tuple[str, ...] = ()
    grant: Grant | None = None
    signer: str | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    """A release request that passed every check and that the book admitted, not yet
    logged: the answer and the owner's signature over its receipt at ``moment``."""

    grant: Grant
    answer: Answer
    admitted: Admitted
    receipt_signature: bytes
    moment: int


class ReleaseService:
    """Answers release requests for one owner. Not thread-safe except where noted: it runs
    on the daemon's event loop."""

    def __init__(
        self,
        *,
        derived: DerivedSource,
        owner: str,
        signatures: SignerProcess,
        noise_secret: bytes,
        domain: eip712.Domain,
        index: GrantIndex,
        log: audit.AuditLog,
        book: ReleaseBook,
        revoked_locally: Container[int],
        denied_locally: Container[int],
        tally: RefusalTally,
        skew_seconds: int,
        max_lag_seconds: float,
        max_head_age_seconds: float | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._derived = derived
        self._answers = AnswerCache(noise_secret=noise_secret)
        self.owner = owner
        self._signatures = signatures
        self.domain = domain
        self.index = index
        self.log = log
        self.book = book
        self.revoked_locally = revoked_locally
        self.denied_locally = denied_locally
        self.tally = tally
        self.skew_seconds = skew_seconds
        self.max_lag_seconds = max_lag_seconds
        self.max_head_age_seconds = max_head_age_seconds
        self.clock = clock
        self._catalog_hash = scopes.catalog_hash()

    def __repr__(self) -> str:
        return f"ReleaseService(owner={self.owner})"

    def answer(self, names: tuple[str, ...]) -> Answer:
        """What a release of ``names`` shows now (memoised while the values are unchanged)."""
        return self._answers.answer(names, self._derived.derived(names))

    def check_ledger(
        self, grant: Grant | None, ask: ReleaseAsk, *, now: float, household: bool = False
    ) -> None:
        """The checks after the signature, shared by releases, matches and household
        contributions (``household``, the only path group grants pass): the index is fresh
        (503), then :func:`vault.policy.check_grant` on the grant (403 …)."""
        try:
            self.index.check_fresh(
                now=now, max_age_seconds=self.max_lag_seconds,
                max_head_age_seconds=self.max_head_age_seconds,
            )
        except errors.IndexStale:
            raise errors.IndexStale(_STALE) from None
        decision = check_grant(
            grant, ask, owner=self.owner, now=now, revoked_locally=self.revoked_locally,
            denied_locally=self.denied_locally, catalog_hash=self._catalog_hash,
            max_confirmation_age=self.max_lag_seconds, household=household,
            signer_on_ledger=grant is None
            or grant.company == ask.signer
            or bool(self.index.requests_for_company(ask.signer)),
        )
        if isinstance(decision, Deny):
            raise errors.ReleaseRefused(decision.code, decision.detail)

    async def release(self, body: ReleaseRequest) -> bytes:
        """The 200 body for ``body``; raises :class:`ReleaseRefused` / :class:`SignatureInvalid`
        / :class:`IndexStale` (each refusal is logged with its reason)."""
        now = self.clock()
        self.check_flood()
        attempt = Attempt(body.grant_id)
        try:
            done = await self.checked(body, attempt, now=now)
        except REFUSALS as refusal:
            self.refused(attempt, now, refusal)
            raise
        detail: dict[str, Any] = {"nonce": body.nonce.lower(), "issued_at": body.issued_at}
        if done.admitted.charged:
            detail["revealed"] = done.admitted.charged
        await self.log.append_awaitable(
            audit.NewEntry(
                at=round(now, 3), kind=audit.RELEASE, outcome=audit.RELEASED,
                grant_id=body.grant_id, company=done.grant.company, scopes=attempt.names,
                content_hash=done.answer.content_hash_hex, detail=detail,
            )
        )
        # The addresses are checksummed hex and the preferences already JSON, so the body is
        # assembled rather than encoded again.
        return _RELEASED % (
            body.grant_id, self.owner.encode(), done.grant.company.encode(),
            done.answer.canonical, done.answer.content_hash_hex.encode(), done.moment,
            done.receipt_signature.hex().encode(),
        )

    async def checked(
        self,
        body: ReleaseRequest,
        attempt: Attempt,
        *,
        now: float,
        household: bool = False,
        also: Callable[[Grant], None] | None = None,
    ) -> Checked:
        """Every check of a release request, in order, and the book's admission: the answer
        with its signed receipt, not yet logged. ``attempt`` records how far the request got
        (for the caller's refusal log); ``household``: a member's part of a household answer
        (a group grant, :meth:`check_ledger`); ``also``: one more check of the grant before
        the book counts the release."""
        moment = int(now)
        try:
            bitmap = scopes.bitmap(body.scopes)
        except errors.UnknownScope:
            raise errors.ReleaseRefused(
                Code.MALFORMED, "a requested scope is not in the catalog"
            ) from None
        attempt.names = tuple(scopes.names_of(bitmap))
        self.check_skew(body.issued_at, now=now)
        grant = attempt.grant = self.index.grant(body.grant_id)
        # The answer and its receipt are prepared before the signature is known to be good,
        # so that one trip to the signature thread does both; nothing leaves unless every
        # check below passes.
        answer: Answer | None = None
        receipt_digest: bytes | None = None
        if grant is not None and bitmap & grant.scopes == bitmap:
            answer = self.answer(attempt.names)
            receipt_digest = self.domain.receipt_digest(
                body.grant_id, grant.company, answer.content_hash, moment
            )
        ask, verified = await self.signed_for_grant(
            attempt, self.domain.release_digest(body.grant_id, bitmap, body.nonce, body.issued_at),
            body.signature, bitmap=bitmap, issued_at=body.issued_at,
            receipt_digest=receipt_digest, now=now, household=household,
        )
        assert grant is not None and answer is not None
        assert verified.receipt_signature is not None
        if also is not None:
            also(grant)
        admitted = self.book.admit(grant, ask, nonce=body.nonce, now=now, revealed=answer.revealed)
        if isinstance(admitted, Deny):
            raise errors.ReleaseRefused(admitted.code, admitted.detail)
        return Checked(grant, answer, admitted, verified.receipt_signature, moment)

    async def signed_for_grant(
        self,
        attempt: Attempt,
        request_digest: bytes,
        signature: str,
        *,
        bitmap: int,
        issued_at: int,
        receipt_digest: bytes | None,
        now: float,
        household: bool,
    ) -> tuple[ReleaseAsk, Verified]:
        """Who signed ``request_digest`` (recovered in the signing process, which signs the
        owner's receipt over ``receipt_digest`` in the same job when the signer is the
        company of ``attempt.grant``), then :meth:`check_ledger` of that grant for that
        signer: the request as checked and what the signing process returned."""
        grant = attempt.grant
        verified = await self._signatures.recover_and_sign(
            request_digest, signature,
            company=grant.company if grant is not None else None,
            receipt_digest=receipt_digest,
        )
        attempt.signer = verified.signer
        ask = ReleaseAsk(attempt.grant_id, verified.signer, bitmap, issued_at)
        self.check_ledger(grant, ask, now=now, household=household)
        return ask, verified

    def check_flood(self) -> None:
        """429 ``rate_limited`` while unauthenticated requests flood the vault (the tally)."""
        if self.tally.exhausted():
            raise errors.ReleaseRefused(
                Code.RATE_LIMITED, "too many unauthenticated requests; try again in a second"
            )

    def check_skew(self, issued_at: int, *, now: float) -> None:
        """401 ``stale_request`` for an ``issued_at`` outside the clock skew window."""
        stale = check_issued_at(issued_at, now=now, skew_seconds=self.skew_seconds)
        if stale is not None:
            raise errors.ReleaseRefused(stale.code, stale.detail)

    def refused(self, attempt: Attempt, now: float, refusal: errors.VaultError) -> None:
        """Record a refusal: in the access log when the grant's own company signed the
        request to this owner, else only in the flood tally (an unsigned or foreign request
        must not be able to write to the owner's log)."""
        grant, signer = attempt.grant, attempt.signer
        if (grant is not None and signer is not None and signer == grant.company
                and grant.owner == self.owner):
            self.log.append(audit.NewEntry(
                at=round(now, 3), kind=audit.RELEASE, outcome=audit.REFUSED,
                grant_id=attempt.grant_id, company=signer, scopes=attempt.names,
                reason=code_of(refusal),
            ))
        else:
            self.tally.count(code_of(refusal))
