"""The pure release and auto-approval policy."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from vault import errors, privacy, scopes
from vault.grant import Grant, Status
from vault.policy import (
    Allow,
    Counters,
    Deny,
    Limits,
    ReleaseAsk,
    Rule,
    RuleSet,
    auto_approval,
    check_grant,
    check_issued_at,
    check_limits,
    price_per_day,
)

OWNER = "0x00000000000000000000000000000000000000Cc"
COMPANY = "0x00000000000000000000000000000000000000Aa"
OTHER = "0x00000000000000000000000000000000000000Bb"
NOW = 1_800_000_000
CATALOG = scopes.catalog_hash()
MUSIC = scopes.bitmap(["preferences.music"])
MUSIC_AGE = scopes.bitmap(["preferences.music", "profile.age_range"])


def G(**fields: Any) -> Grant:
    """A grant as the index holds it, active and confirmed, with ``fields`` changed."""
    base: dict[str, Any] = {
        "id": 7, "owner": OWNER, "company": COMPANY, "scopes": MUSIC_AGE, "price": 10**16,
        "duration": 30 * 86_400, "max_releases": 3, "starts_at": NOW - 100,
        "status": Status.ACTIVE, "catalog_hash": CATALOG, "confirmed_at": NOW - 5,
    }
    base.update(fields)
    return Grant(**base)


def ask(**kw: object) -> ReleaseAsk:
    base = {"grant_id": 7, "signer": COMPANY.lower(), "scopes": MUSIC, "issued_at": NOW}
    base.update(kw)
    return ReleaseAsk(**base)  # type: ignore[arg-type]


def decide(grant: Grant | None, a: ReleaseAsk | None = None, *, used: int = 0, today: int = 0,
           revoked: frozenset[int] = frozenset(), denied: frozenset[int] = frozenset(),
           budget: int = 0, spent: float = 0.0, privacy_budget: float = 0.0
           ) -> Allow | Deny:
    a = a or ask()
    first = check_grant(grant, a, owner=OWNER, now=NOW, revoked_locally=revoked,
                        denied_locally=denied, catalog_hash=CATALOG, max_confirmation_age=30)
    if isinstance(first, Deny) or grant is None:
        return first
    return check_limits(
        grant, a, counters=Counters(used, today, spent),
        limits=Limits(company_releases_per_day=budget, privacy_budget=privacy_budget),
    )


def code(decision: Allow | Deny) -> str:
    return decision.code if isinstance(decision, Deny) else "allow"


def test_active_grant_with_covered_scopes_is_allowed() -> None:
    assert isinstance(decide(G()), Allow)


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        (None, "not_granted"),
        (G(owner=OTHER), "not_granted"),
        (G(owner=COMPANY), "not_granted"),
        (G(company=OTHER), "wrong_company"),
        (G(status=Status.REVOKED), "revoked"),
        (G(starts_at=NOW - 30 * 86_400), "expired"),
        (G(status=Status.PENDING, starts_at=0), "not_granted"),
        (G(status=Status.DENIED, starts_at=0), "not_granted"),
        (G(scopes=scopes.bitmap(["profile.age_range"])), "scope_not_granted"),
        (G(catalog_hash=bytes(32)), "catalog_mismatch"),
        (G(confirmed_at=None), "ledger_unavailable"),
        (G(confirmed_at=NOW - 31), "ledger_unavailable"),
    ],
)
def test_each_ledger_check_denies_with_its_code(grant: Grant | None, expected: str) -> None:
    """THREATS rows 14, 16, 20."""
    assert code(decide(grant)) == expected


def test_signature_from_an_address_unknown_to_the_ledger_is_a_bad_signature() -> None:
    """THREATS row 12: another chain's or ledger's signature recovers to a random address."""
    a = ask(signer=OTHER)
    decision = check_grant(G(), a, owner=OWNER, now=NOW, revoked_locally=(),
                           denied_locally=(), catalog_hash=CATALOG, max_confirmation_age=30,
                           signer_on_ledger=False)
    assert code(decision) == "bad_signature"


def test_wrong_company_is_checked_before_revocation_is_revealed() -> None:
    assert code(decide(G(company=OTHER, status=Status.REVOKED))) == "wrong_company"


def test_local_revocation_denies_before_the_chain_knows() -> None:
    """THREATS row 15."""
    assert code(decide(G(), revoked=frozenset({7}))) == "revoked"


def test_a_grant_of_another_owner_is_not_granted_whoever_signs() -> None:
    """THREATS row 31: the company's own second address approved a request to itself; the
    signature is the grant's company's, yet this vault's owner never agreed."""
    assert code(decide(G(owner=OTHER))) == "not_granted"
    assert code(decide(G(owner=OTHER.lower()))) == "not_granted"
    assert code(decide(G(owner=OWNER.lower()))) == "allow"


def test_the_owners_no_wins_over_an_active_grant() -> None:
    """THREATS row 33: a relayed approval made the request active before the deny landed."""
    assert code(decide(G(), denied=frozenset({7}))) == "denied"
    assert code(decide(G(), denied=frozenset({8}))) == "allow"


def test_an_unconfirmed_or_stale_confirmation_fails_closed() -> None:
    """THREATS row 32: only a grant a contract read confirmed recently counts."""
    assert code(decide(G(confirmed_at=NOW - 30))) == "allow"
    assert code(decide(G(confirmed_at=None))) == "ledger_unavailable"
    assert code(decide(G(confirmed_at=NOW - 30.5))) == "ledger_unavailable"


def test_empty_scope_bitmap_is_not_granted() -> None:
    assert code(decide(G(), ask(scopes=0))) == "scope_not_granted"


def test_max_releases_and_company_budget() -> None:
    """THREATS row 28 (the counting itself is atomic in the daemon)."""
    assert code(decide(G(), used=2)) == "allow"
    assert code(decide(G(), used=3)) == "releases_exhausted"
    assert code(decide(G(max_releases=0), used=10**6)) == "allow"
    assert code(decide(G(max_releases=0), today=5, budget=5)) == "budget_exhausted"
    assert code(decide(G(max_releases=0), today=4, budget=5)) == "allow"


def test_the_privacy_budget_admits_noisy_scopes_while_their_worst_case_fits() -> None:
    """THREATS row 38: the decision uses what the company spent and the most the asked
    scopes could cost — never the owner's current data — and says so in its detail."""
    most = privacy.worst_case_epsilon(MUSIC)
    assert most == pytest.approx(5 * math.log(0.95 * 21 / 0.05), abs=1e-3)
    assert code(decide(G(), spent=0.0, privacy_budget=most)) == "allow"
    assert code(decide(G(), spent=10.0, privacy_budget=most + 10.0)) == "allow"
    refused = decide(G(), spent=10.5, privacy_budget=most + 10.0)
    assert isinstance(refused, Deny) and refused.code == "budget_exhausted"
    assert refused.detail == (
        f"this company has spent ε 10.5 of its privacy budget of ε {most + 10.0:g}, and an "
        f"answer for these noisy scopes may cost up to ε {most:.1f} more"
    )
    age_only = ask(scopes=scopes.bitmap(["profile.age_range"]))
    assert code(decide(G(), age_only, spent=10**6, privacy_budget=1.0)) == "allow"
    assert code(decide(G(), spent=10**6, privacy_budget=0.0)) == "allow"  # 0: no cap


def test_issued_at_skew_window_both_sides() -> None:
    """THREATS row 13."""
    assert check_issued_at(NOW - 300, now=NOW, skew_seconds=300) is None
    assert check_issued_at(NOW + 300, now=NOW, skew_seconds=300) is None
    late = check_issued_at(NOW - 301, now=NOW, skew_seconds=300)
    early = check_issued_at(NOW + 301, now=NOW, skew_seconds=300)
    assert late is not None and late.code == "stale_request"
    assert early is not None and early.code == "stale_request"


PENDING = G(status=Status.PENDING, starts_at=0, max_releases=10)
MUSIC_RULE = Rule(name="music", scopes=["preferences.music", "profile.age_range"],
                  min_price_per_day_wei=10**14, max_duration_seconds=60 * 86_400)


def test_auto_approval_matches_a_fitting_rule() -> None:
    verdict = auto_approval(PENDING, RuleSet(rules=[MUSIC_RULE]), catalog_hash=CATALOG)
    assert verdict.approve and verdict.rule == "music"


@pytest.mark.parametrize(
    ("request_", "rules", "reason"),
    [
        (replace(PENDING, scopes=scopes.bitmap(["mood.current"])), RuleSet(rules=[MUSIC_RULE]),
         "music: asks for a scope outside the rule"),
        (replace(PENDING, price=10**10), RuleSet(rules=[MUSIC_RULE]),
         "music: pays less per day than the rule's minimum"),
        (replace(PENDING, duration=90 * 86_400, price=10**18), RuleSet(rules=[MUSIC_RULE]),
         "music: lasts longer than the rule allows"),
        (PENDING, RuleSet(rules=[MUSIC_RULE.model_copy(update={"companies_deny": [COMPANY]})]),
         "music: the company is on the rule's deny list"),
        (PENDING, RuleSet(rules=[MUSIC_RULE.model_copy(update={"companies_allow": [OTHER]})]),
         "music: the company is not on the rule's allow list"),
        (PENDING, RuleSet(rules=[MUSIC_RULE.model_copy(update={"max_releases_at_most": 5})]),
         "music: allows more releases than the rule"),
        (replace(PENDING, max_releases=0),
         RuleSet(rules=[MUSIC_RULE.model_copy(update={"max_releases_at_most": 50})]),
         "music: allows more releases than the rule"),
        (PENDING, RuleSet(rules=[MUSIC_RULE], never_share=["profile.age_range"]),
         "a scope the owner never shares"),
        (replace(PENDING, catalog_hash=bytes(32)), RuleSet(rules=[MUSIC_RULE]),
         "another scope catalog"),
        # A scope bit outside the catalog: no rule could list it, so the catalog check is
        # shadowed by the rule's own scope check unless the reason is asserted.
        (replace(PENDING, scopes=MUSIC | 1 << 40), RuleSet(rules=[MUSIC_RULE]),
         "scopes are not in the catalog"),
        (replace(PENDING, scopes=0), RuleSet(rules=[MUSIC_RULE]),
         "scopes are not in the catalog"),
        (G(), RuleSet(rules=[MUSIC_RULE]), "not pending"),
        (PENDING, RuleSet(), "no auto-approval rules are set"),
    ],
)
def test_auto_approval_refuses_what_no_rule_covers(request_: Grant, rules: RuleSet,
                                                   reason: str) -> None:
    """Each case is refused by the check it is there for (named by the verdict's reason), not
    by some other check that happens to refuse it too."""
    verdict = auto_approval(request_, rules, catalog_hash=CATALOG)
    assert not verdict.approve and verdict.rule is None
    assert reason in verdict.reason, verdict.reason


def test_a_request_refused_by_every_rule_names_each_rules_reason() -> None:
    cheap = MUSIC_RULE.model_copy(update={"name": "cheap", "scopes": ["preferences.music"]})
    verdict = auto_approval(PENDING, RuleSet(rules=[MUSIC_RULE.model_copy(
        update={"companies_deny": [COMPANY]}), cheap]), catalog_hash=CATALOG)
    assert not verdict.approve
    assert verdict.reason == ("music: the company is on the rule's deny list; "
                              "cheap: asks for a scope outside the rule")


def test_allow_list_is_case_insensitive() -> None:
    rule = MUSIC_RULE.model_copy(update={"companies_allow": [COMPANY.lower()]})
    assert auto_approval(PENDING, RuleSet(rules=[rule]), catalog_hash=CATALOG).approve


def test_rules_reject_unknown_scope_names() -> None:
    with pytest.raises(errors.UnknownScope):
        Rule(name="x", scopes=["nope.nope"])
    with pytest.raises(errors.UnknownScope):
        RuleSet(never_share=["nope.nope"])


def test_price_per_day() -> None:
    assert price_per_day(30 * 10**15, 30 * 86_400) == 10**15
    assert price_per_day(1, 0) == 0


def test_a_rule_checks_the_total_price_and_the_shortest_duration() -> None:
    """A 60-second grant at a good daily rate costs the company almost nothing and it keeps
    the snapshot: the rule's total minimum and minimum duration refuse it."""
    minute = replace(PENDING, duration=60, price=10**14 * 60 // 86_400 + 1)
    assert price_per_day(minute.price, minute.duration) >= MUSIC_RULE.min_price_per_day_wei
    verdict = auto_approval(minute, RuleSet(rules=[MUSIC_RULE]), catalog_hash=CATALOG)
    assert not verdict.approve
    assert "shorter than the rule's minimum duration" in verdict.reason
    cheap = MUSIC_RULE.model_copy(update={"min_price_wei": PENDING.price + 1})
    verdict = auto_approval(PENDING, RuleSet(rules=[cheap]), catalog_hash=CATALOG)
    assert not verdict.approve and "less in total" in verdict.reason


def test_the_terms_never_shared_scopes_refuse_auto_approval() -> None:
    """The published terms' `scopes_never` bind the rules too, not only the rules' own list."""
    rules = RuleSet(rules=[MUSIC_RULE])
    assert auto_approval(PENDING, rules, catalog_hash=CATALOG).approve
    verdict = auto_approval(
        PENDING, rules, catalog_hash=CATALOG, terms_never=["profile.age_range"]
    )
    assert not verdict.approve and "never shares" in verdict.reason
