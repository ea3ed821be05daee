"""The owner's view of privacy: what each company received, the ε it spent of its budget
and what remains (THREATS row 38), read from the access log — the same log the daemon's
release book is rebuilt from, so the view and the limit agree with or without a daemon."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict

from vault import privacy, scopes
from vault.owner.state import OwnerState
from vault.wire import CompanyPrivacyPublic, PrivacyPublic, ScopePrivacyPublic


class PrivacyBudget:
    def __init__(self, state: OwnerState) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"PrivacyBudget(owner={self._state.owner})"

    def report(self) -> PrivacyPublic:
        log = self._state.audit
        budget = self._state.settings.privacy_budget
        charged = privacy.charges_by_company(log.disclosures())
        releases: defaultdict[str, int] = defaultdict(int)
        received: defaultdict[str, set[str]] = defaultdict(set)
        epochs: defaultdict[str, set[int]] = defaultdict(set)
        shown: dict[str, str] = {}  # lower-case address → as the log spells it
        for company, epoch, names, count in log.release_summary(
            period_seconds=privacy.EPOCH_SECONDS
        ):
            key = company.lower()
            shown.setdefault(key, company)
            releases[key] += count
            received[key].update(names)
            epochs[key].add(epoch)
        companies = []
        for key in sorted(shown):
            costs = charged.get(key, {})
            spent = round(sum(costs.values()), 4)
            companies.append(CompanyPrivacyPublic(
                company=shown[key],
                releases=releases[key],
                scopes=[s.name for s in scopes.CATALOG if s.name in received[key]],
                epochs=sorted(epochs[key]),
                entries_revealed=len(costs),
                epsilon_spent=spent,
                epsilon_remaining=round(max(0.0, budget - spent), 4) if budget else None,
            ))
        figures = (privacy.scope_privacy(s.name) for s in scopes.CATALOG)
        return PrivacyPublic(
            budget_epsilon=budget,
            scopes=[ScopePrivacyPublic.model_validate(asdict(f)) for f in figures if f],
            companies=companies,
        )
