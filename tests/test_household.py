"""The pure household rules (issue 18, docs/match.md "Household"): which path a group grant
may take, the ranking by the minimum, and what each member's receipt covers."""

from __future__ import annotations

import secrets

import pytest

from vault import household, match, scopes
from vault.canonical import json_hash
from vault.grant import Grant, Member, Status
from vault.policy import Allow, Deny, ReleaseAsk, check_grant

OWNER = "0x00000000000000000000000000000000000000Cc"
OTHER = "0x00000000000000000000000000000000000000Bb"
COMPANY = "0x00000000000000000000000000000000000000Aa"
NOW = 1_800_000_000
CATALOG = scopes.catalog_hash()
MUSIC = scopes.bitmap(["preferences.music"])
HOUSEHOLD = (Member(OWNER, True, 5), Member(OTHER, True, 5))


def _grant(members: tuple[Member, ...]) -> Grant:
    """A grant as this owner's index holds it, active and confirmed."""
    return Grant(id=7, owner=OWNER, company=COMPANY, scopes=MUSIC, price=10, duration=86_400,
                 max_releases=0, status=Status.ACTIVE, starts_at=NOW - 100,
                 catalog_hash=CATALOG, members=members, confirmed_at=NOW - 5)


@pytest.mark.parametrize(("members", "household_path", "expected"), [
    (HOUSEHOLD, False, "not_granted"),  # a member never answers alone
    (HOUSEHOLD, True, "allow"),         # the coordinated path
    ((), True, "not_granted"),          # that path takes group grants only
    ((), False, "allow"),
])
def test_a_group_grant_passes_only_on_the_household_path(
    members: tuple[Member, ...], household_path: bool, expected: str
) -> None:
    decision = check_grant(
        _grant(members), ReleaseAsk(7, COMPANY, MUSIC, NOW), owner=OWNER, now=NOW,
        revoked_locally=frozenset(), denied_locally=frozenset(), catalog_hash=CATALOG,
        max_confirmation_age=30, household=household_path,
    )
    assert (decision.code if isinstance(decision, Deny) else "allow") == expected
    assert isinstance(decision, Allow) == (expected == "allow")


def _ranking(first: dict[str, float], second: dict[str, float], *, k: int = 2,
             tier: str = match.CONTENT, secret: bytes = b"s" * 32) -> tuple[str, ...]:
    return household.household_ranking(
        [first, second], ids=list(first), k=k, tier=tier, secret=secret, seed=b"\x01" * 32,
    )


def test_the_household_ranks_by_the_lower_score() -> None:
    # "loved" is one member's favourite and the other's dislike; "both" is liked by both.
    first = {"loved": 9.0, "both": 3.0, "neither": 0.0}
    second = {"loved": 0.0, "both": 2.5, "neither": 0.0}
    assert _ranking(first, second)[0] == "both"
    # The rule is symmetric in the members, and a sum would have picked "loved".
    assert _ranking(second, first)[0] == "both"
    assert max(first, key=lambda i: first[i] + second[i]) == "loved"


def test_the_household_picks_are_keyed_by_the_coordinators_secret() -> None:
    scores = {f"c-{i}": 1.0 for i in range(30)}
    secret = secrets.token_bytes(32)
    once = _ranking(scores, dict(scores), k=10, tier=match.HISTORY, secret=secret)
    assert once == _ranking(scores, dict(scores), k=10, tier=match.HISTORY, secret=secret)
    assert len(set(once)) == 10
    # Equal scores: the noise decides, so another vault's secret draws another ranking.
    others = {_ranking(scores, dict(scores), k=10, tier=match.HISTORY,
                       secret=secrets.token_bytes(32)) for _ in range(5)}
    assert len(others | {once}) > 1


def test_a_members_receipt_statement_names_the_list_the_coordinator_and_its_scores() -> None:
    scores = {"a": 0.25, "b": 1.5}
    digest = "0x" + household.scores_hash(scores).hex()
    statement = household.match_statement("0xAB" + "00" * 31, coordinator=OWNER, k=3,
                                          scores_digest=digest.upper().replace("0X", "0x"))
    assert statement == {"candidates_hash": "0xab" + "00" * 31, "coordinator": OWNER, "k": 3,
                         "scores_hash": digest}
    assert household.scores_hash({"b": 1.5, "a": 0.25}) == json_hash(scores)
