"""What the match scorer reads of the owner, and the owner's preview of a match.

One :class:`MatchDesk` serves the daemon's ``POST /v1/match`` (:mod:`vault.daemon.match`)
and ``vault match preview``, so the owner previews exactly the ranking a company would get:
the released (noised) profile, the history summary (:meth:`vault.store.Vault.history`, a
scan of the events, kept for :data:`HISTORY_TTL_SECONDS`), the never-shared scopes of the
terms and rules, the ``dislikes`` fact and the match budget of the terms. Raw records stay
in the vault: only :class:`vault.match.Person` — weights per reference — is built here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vault import audit, errors, match, privacy, scopes
from vault.owner.state import OwnerState
from vault.owner.terms import TermsAndRules
from vault.wire import Code, MatchPickPublic, MatchPreviewBody, MatchPreviewPublic

#: The profile, terms and facts are re-read after this long (a change of terms takes effect
#: within it); the history, a scan of every event, after the longer one. These only age the
#: recency weights: a change of the records (an import, a mood, a forget through the
#: daemon's owner routes) drops both at once (:meth:`MatchDesk.forget_readings`).
PERSON_TTL_SECONDS = 5.0
HISTORY_TTL_SECONDS = 600.0


class MatchVault(Protocol):
    """What the desk reads of an unlocked :class:`vault.store.Vault`."""

    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]: ...
    def history(self) -> match.History: ...
    def facts(self) -> dict[str, Any]: ...
    def secret(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class Reading:
    """The owner as the scorer sees them at one moment, what the profile part of an answer
    discloses (:func:`vault.privacy.revealed_entries`, charged like a release of it) and
    the terms' match budget."""

    person: match.Person
    revealed: dict[str, float]
    matches_per_epoch: int
    at: float


class MatchDesk:
    def __init__(self, vault: MatchVault, terms: TermsAndRules) -> None:
        self._vault = vault
        self._terms = terms
        self._secret: bytes | None = None
        self._reading: Reading | None = None
        self._history: tuple[float, match.History] | None = None

    def __repr__(self) -> str:
        return "MatchDesk()"

    @property
    def secret(self) -> bytes:
        """The vault's noise secret (the match noise is drawn from it too)."""
        if self._secret is None:
            self._secret = self._vault.secret("noise")
        return self._secret

    def forget_readings(self) -> None:
        """Read the records afresh at the next match: they changed."""
        self._reading = None
        self._history = None

    def reading(self, now: float) -> Reading:
        cached = self._reading
        if cached is not None and 0 <= now - cached.at <= PERSON_TTL_SECONDS:
            return cached
        if self._history is None or now - self._history[0] > HISTORY_TTL_SECONDS:
            self._history = (now, self._vault.history())
        terms = self._terms.terms()
        never = set(self._terms.never_shared())
        values = self._vault.derived(match.PROFILE_SCOPES)
        released: dict[str, dict[str, Any]] = {}
        revealed: dict[str, float] = {}
        for name in match.PROFILE_SCOPES:
            if name in never:
                continue
            scope = scopes.scope(name)
            released[name] = privacy.release_value(scope, values[name], secret=self.secret)
            revealed.update(privacy.revealed_entries(
                scope, values[name], released[name], secret=self.secret))
        declared = self._vault.facts().get("dislikes")
        words = declared.split(",") if isinstance(declared, str) else declared
        dislikes = [w for w in words if isinstance(w, str)] if isinstance(words, list) else []
        person = match.person(released, self._history[1], never_shared=never,
                              dislikes=dislikes, now=now)
        self._reading = Reading(person, revealed, terms.matches_per_epoch, now)
        return self._reading


def matches_this_epoch(log: audit.AuditLog, *, now: float) -> Counter[str]:
    """Matches answered per company (lower-case address) in the epoch of ``now``, from the
    access log (a match is a release entry of a match scope)."""
    start = privacy.epoch_of(now) * privacy.EPOCH_SECONDS
    return Counter(
        entry.company.lower()
        for entry in log.of_kind(audit.RELEASE, since=start)
        if entry.outcome == audit.RELEASED and entry.company
        and set(entry.scopes) & set(match.SCOPES)
    )


class MatchPreview:
    """``vault match preview``: what a company would get for a list, and why."""

    def __init__(self, state: OwnerState, desk: MatchDesk) -> None:
        self._state = state
        self._desk = desk

    def __repr__(self) -> str:
        return f"MatchPreview(owner={self._state.owner})"

    def preview(self, body: MatchPreviewBody) -> MatchPreviewPublic:
        now = self._state.clock()
        candidates = match.read_candidates(
            [c.model_dump(exclude_unset=True) for c in body.candidates]
        )
        check_size(candidates, body.k)
        if not has_unique_ids(candidates):
            raise duplicate_ids()
        tier = match.tier_of(body.scopes)
        reading = self._desk.reading(now)
        ranking = match.rank(candidates, reading.person, k=body.k, tier=tier,
                             company=body.company, secret=self._desk.secret, now=now)
        titles = {c.id: c.title if isinstance(c.title, str) else None for c in candidates}
        used = matches_this_epoch(self._state.audit, now=now)[body.company.lower()]
        return MatchPreviewPublic(
            company=body.company, tier=tier, epoch=privacy.epoch_of(now),
            epsilon=match.epsilon(tier, body.k),
            matches_left=max(0, reading.matches_per_epoch - used),
            picks=[MatchPickPublic(id=p.id, title=titles[p.id], reason=match.reason(p))
                   for p in ranking.picks],
        )


def check_size(candidates: Sequence[match.Candidate], k: int) -> None:
    """400 ``list_size`` for a list or a ``k`` the protocol does not accept."""
    if not (match.MIN_CANDIDATES <= len(candidates) <= match.MAX_CANDIDATES
            and 1 <= k <= match.MAX_K):
        raise errors.ReleaseRefused(
            Code.LIST_SIZE,
            f"a match ranks {match.MIN_CANDIDATES}-{match.MAX_CANDIDATES} candidates and "
            f"returns 1-{match.MAX_K} of them",
        )


def has_unique_ids(candidates: Sequence[match.Candidate]) -> bool:
    return len({c.id for c in candidates}) == len(candidates)


def duplicate_ids() -> errors.ReleaseRefused:
    """400 ``duplicate_id``, for a list where two candidates share an id
    (:func:`has_unique_ids`)."""
    return errors.ReleaseRefused(Code.DUPLICATE_ID, "two candidates share an id")
