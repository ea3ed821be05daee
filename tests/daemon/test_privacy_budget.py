"""Memoised noise and the privacy budget over real HTTP (THREATS row 38): every company in
every epoch receives the same noisy answer, so neither collusion nor time recovers more than
one answer; the budget charges each noisy entry once, refuses with 429 ``budget_exhausted``
and a clear detail, and the owner sees it (``GET /v1/owner/privacy``, ``vault privacy``)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

from typer.testing import CliRunner

from vault import privacy, scopes
from vault.cli import app as cli
from vault.daemon import runtime
from vault.store import Vault

from .conftest import MUSIC, PASS, Clock, Served, daemon_settings, fund, running
from .test_release import error_of

COMPANIES = range(10)  # every funded account of the embedded chain
WEEK = privacy.EPOCH_SECONDS


def majority(answers: list[dict[str, Any]]) -> list[str]:
    """Each position's most frequent genre across ``answers`` (ties: the first seen)."""
    columns = zip(*([e["genre"] for e in a["genres"]] for a in answers), strict=True)
    return [Counter(column).most_common(1)[0][0] for column in columns]


def test_every_company_in_every_epoch_gets_one_answer_and_a_vote_recovers_no_more(
    embedded_chain: Any, owner_vault: Vault, clock: Clock
) -> None:
    """10 companies x 20 weekly epochs receive the identical music answer; the majority
    vote over 10 companies x 12 epochs is that one answer, noise included; each company is
    charged once for its entries however often it asks."""
    fund(embedded_chain, owner_vault.owner_address)
    with running(daemon_settings(owner_vault), owner_vault, embedded_chain, clock) as served:
        grants = {c: served.grant(company=c, duration=150 * 86_400, names=MUSIC)
                  for c in COMPANIES}
        answers: list[list[dict[str, Any]]] = []
        hashes = set()
        for epoch in range(20):
            if epoch:
                clock.offset += WEEK
                served.sync()
            this_week = []
            for c, grant_id in grants.items():
                response = served.release(grant_id, MUSIC, company=c)
                assert response.status_code == 200, response.text
                this_week.append(response.json()["preferences"]["preferences.music"])
                hashes.add(response.json()["receipt"]["content_hash"])
            answers.append(this_week)
        assert len(hashes) == 1
        one = answers[0][0]
        assert all(answer == one for week in answers for answer in week)
        vote = majority([answer for week in answers[:12] for answer in week])
        assert vote == [e["genre"] for e in one["genres"]]
        truth = owner_vault.derived(MUSIC)["preferences.music"]
        charged = privacy.revealed_entries(scopes.scope(MUSIC[0]), truth, one,
                                           secret=owner_vault.secret("noise"))
        report = served.owner_get("/v1/owner/privacy").json()
    assert len(report["companies"]) == len(COMPANIES)
    for company in report["companies"]:
        assert company["releases"] == 20 and len(company["epochs"]) == 20
        assert company["scopes"] == MUSIC
        assert company["entries_revealed"] == len(charged)
        assert company["epsilon_spent"] == round(sum(charged.values()), 4)


def _publish(served: Served) -> runtime.RuntimeFile:
    """The runtime file `vault serve` would write, so the CLI finds and proves this daemon."""
    published = runtime.RuntimeFile(
        host="127.0.0.1", port=int(served.base.rsplit(":", 1)[1]), pid=os.getpid(),
        owner=served.vault.owner_address, started_at=int(time.time()),
        token=runtime.Token(served.token),
    )
    runtime.publish(served.vault.home, published)
    return published


def test_a_spent_budget_is_429_with_a_clear_detail_and_the_owner_sees_what_remains(
    embedded_chain: Any, owner_vault: Vault, clock: Clock
) -> None:
    """A budget of one music answer plus a little: the first answer is charged its entries,
    the same answer again costs nothing, and a third request is refused — what remains is
    less than a music answer could cost. Another company's budget is its own. The owner
    sees the same figures over the route and in `vault privacy` (--json and the table)."""
    fund(embedded_chain, owner_vault.owner_address)
    most = privacy.worst_case_epsilon(scopes.bitmap(MUSIC))
    budget = round(most + 1.0, 4)
    with running(daemon_settings(owner_vault, privacy_budget=budget), owner_vault,
                 embedded_chain, clock) as served:
        first, second = served.grant(company=1), served.grant(company=2)
        assert served.release(first, MUSIC, company=1).status_code == 200
        report = served.owner_get("/v1/owner/privacy").json()
        spent = report["companies"][0]["epsilon_spent"]
        assert spent > 1.0  # at least one entry: the next answer no longer fits
        refused = served.release(first, MUSIC, company=1)
        assert error_of(refused) == (429, "budget_exhausted")
        assert refused.json()["detail"] == (
            f"this company has spent ε {spent:.1f} of its privacy budget of ε {budget:g}, and "
            f"an answer for these noisy scopes may cost up to ε {most:.1f} more"
        )
        assert served.release(first, ["profile.age_range"], company=1).status_code == 200
        assert served.release(second, MUSIC, company=2).status_code == 200

        report = served.owner_get("/v1/owner/privacy").json()
        assert report["budget_epsilon"] == budget
        assert {s["scope"] for s in report["scopes"]} == {
            s.name for s in scopes.CATALOG if s.noisy
        }
        by_company = {c["company"]: c for c in report["companies"]}
        one = by_company[embedded_chain.accounts[1]]
        assert one["releases"] == 2 and one["scopes"] == ["profile.age_range", *MUSIC]
        assert one["epsilon_spent"] == spent
        assert one["epsilon_remaining"] == round(budget - spent, 4)
        assert by_company[embedded_chain.accounts[2]]["epsilon_spent"] == spent
        assert served.get("/v1/owner/privacy").status_code == 401

        _publish(served)
        runner = CliRunner(env={"VAULT_PASSPHRASE": PASS})
        home = str(owner_vault.home)
        shown = runner.invoke(cli, ["privacy", "--json", "--daemon", "--home", home])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == report
        table = CliRunner(env={"VAULT_PASSPHRASE": PASS, "COLUMNS": "80"}).invoke(
            cli, ["privacy", "--daemon", "--home", home])
        assert table.exit_code == 0, table.output
        assert f"ε {budget:g} per company" in table.stdout
        assert f"{spent:.1f}" in table.stdout and f"{budget - spent:.1f}" in table.stdout
