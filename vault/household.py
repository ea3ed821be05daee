"""Pure: one answer for a household from every member's vault (issue 18; docs/match.md
"Household").

A company holding a group grant calls any member's daemon, the *coordinator*. It forwards
the company's signed request, as sent, to every other member's daemon
(:data:`CONTRIBUTION_PATH`, a :class:`ContributionRequest` signed by the coordinator's owner
key: EIP-712 ``Contribution``), each of which checks it against its own index and book and
answers with its *contribution*, noised by itself and receipted by its own owner key:

* a release: the member's own released preferences (:class:`MemberRelease`), receipted
  exactly as a release of them to the company alone would be. The household release is
  every member's, side by side: a merged value could be receipted by no member and checked
  by no company.
* a match: the member's score for every candidate, plus its own keyed Gumbel noise
  (:func:`member_scores`; they reach the coordinator only), and a receipt over
  :func:`match_statement` (the list, ``k``, the coordinator and the hash of those scores),
  which the company can check without seeing the scores.

The coordinator ranks a match for both (:func:`household_ranking`): a candidate's household
score is the *minimum* of the members' scores, so an item one member dislikes (scores low)
cannot win on the other's enthusiasm; the top ``k`` are picked by the one-shot Gumbel
mechanism over that minimum, with the coordinator's own noise. The minimum is monotone and
moves by at most 1 when one member's history gains a reference, so the picks are, for each
member's data, as private as that member's own match of ``k`` (``ε = k / 0.5`` under
match.history), charged by each member to the company's budget in its own vault.

No I/O, no clock reads, no web3: the company SDK imports this module to check answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vault import match
from vault.canonical import json_hash, keccak256
from vault.wire import HEX65, JSON_SAFE_MAX, MatchPublic, ReceiptPublic

__all__ = [
    "CONTRIBUTION_PATH",
    "ContributionRequest",
    "HouseholdMatchPublic",
    "HouseholdReleasePublic",
    "MatchContribution",
    "MemberMatch",
    "MemberRelease",
    "household_ranking",
    "match_statement",
    "member_scores",
    "scores_hash",
]

#: The member route a coordinator forwards a company's request to.
CONTRIBUTION_PATH = "/v1/household/contribution"
_MEMBER_NOISE = b"vault/household/member"
_PICK_NOISE = b"vault/household/pick"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContributionRequest(_In):
    """A coordinator's forward: the company's request body exactly as the company sent it
    (``kind`` says which protocol's), signed by the coordinator's owner key over the
    request's EIP-712 digest, the member it is addressed to and ``issued_at``."""

    kind: Literal["release", "match"]
    request: dict[str, Any]
    issued_at: int = Field(ge=0, le=JSON_SAFE_MAX)
    signature: str = Field(pattern=HEX65)


class MemberRelease(_Out):
    """One member's part of a household release: its released preferences and its receipt
    over their keccak-256 (the receipt a release to the company alone would carry)."""

    owner: str
    preferences: dict[str, dict[str, Any]]
    receipt: ReceiptPublic


class HouseholdReleasePublic(_Out):
    """``POST /v1/release`` under a group grant: every member's release, in the grant's
    member order, gathered by ``coordinator``."""

    grant_id: int
    company: str
    coordinator: str
    members: list[MemberRelease]


class MatchContribution(_Out):
    """A member's answer to a coordinator for a match: its noisy score per candidate id,
    their hash and its receipt over :func:`match_statement`."""

    owner: str
    scores: dict[str, float]
    scores_hash: str
    receipt: ReceiptPublic


class MemberMatch(_Out):
    """What the company sees of a member's match contribution: the hash of its scores and
    its receipt over :func:`match_statement`."""

    owner: str
    scores_hash: str
    receipt: ReceiptPublic


class HouseholdMatchPublic(MatchPublic):
    """``POST /v1/match`` under a group grant: the household ranking, the coordinator's
    receipt over it (``owner`` is the coordinator; the receipt covers
    ``{"candidates_hash", "ranking"}`` as for one owner), and every member's receipt over its
    contribution, in the grant's member order."""

    members: list[MemberMatch]


def scores_hash(scores: Mapping[str, float]) -> bytes:
    """keccak-256 of the RFC 8785 JSON of a member's scores."""
    return json_hash(dict(scores))


def match_statement(
    candidates_hash: str, *, coordinator: str, k: int, scores_digest: str
) -> dict[str, Any]:
    """What a member's match receipt covers (its ``contentHash`` is this value's RFC 8785
    keccak-256): the list, ``k``, the coordinator it answered and the hash of its scores."""
    return {
        "candidates_hash": candidates_hash.lower(),
        "coordinator": coordinator,
        "k": k,
        "scores_hash": scores_digest.lower(),
    }


def member_scores(
    candidates: Sequence[match.Candidate],
    who: match.Person,
    *,
    tier: str,
    company: str,
    secret: bytes,
    now: float,
    listed: bytes | None = None,
) -> tuple[dict[str, float], bytes]:
    """A member's contribution to a household match: every candidate's score under ``tier``
    plus the member's own Gumbel noise at the tier's scale, keyed by its secret over the
    list's noise seed (so the same list from the same company in one epoch gets the same
    scores); and that seed, which names the match in the member's privacy budget."""
    seed = match.noise_seed(candidates, tier=tier, company=company, now=now, listed=listed)
    noise = keccak256(_MEMBER_NOISE + seed)
    scale = match.noise_scale(tier)
    scored = match.scores(candidates, who, tier=tier)
    draws = match.gumbels(secret, noise, [s.id for s in scored])
    return {s.id: s.total + scale * draw for s, draw in zip(scored, draws, strict=True)}, seed


def household_ranking(
    contributions: Sequence[Mapping[str, float]],
    *,
    ids: Sequence[str],
    k: int,
    tier: str,
    secret: bytes,
    seed: bytes,
) -> tuple[str, ...]:
    """The household's top ``k`` of ``ids``: each candidate's minimum over the members'
    contributions, plus the coordinator's Gumbel noise at the tier's scale (keyed by its
    ``secret`` over the list's ``seed``), the ``k`` largest first."""
    noise = keccak256(_PICK_NOISE + seed)
    scale = match.noise_scale(tier)
    combined = sorted(
        (-(min(scores[i] for scores in contributions) + scale * draw), i)
        for i, draw in zip(ids, match.gumbels(secret, noise, ids), strict=True)
    )
    return tuple(i for _, i in combined[:k])
