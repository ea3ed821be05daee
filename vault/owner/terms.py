"""The owner's terms and auto-approval rules, kept in ``<home>/owner-terms.json`` (0600,
replaced atomically), and their publication on the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vault import _files, errors, scopes
from vault.canonical import json_hash
from vault.owner.state import PUBLISH, RULES, TERMS, OwnerState
from vault.policy import RuleSet
from vault.wire import PublishResult, Terms, TermsPublic

SETTINGS_FILE = "owner-terms.json"


def terms_hash(terms: Terms) -> str:
    """keccak256 of the RFC 8785 JSON of the terms, as companies recompute it."""
    return "0x" + json_hash(terms.model_dump()).hex()


def _saved(home: Path) -> dict[str, Any]:
    path = home / SETTINGS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as exc:
        raise errors.CorruptFile(f"{path} is unreadable ({type(exc).__name__})") from None
    return data if isinstance(data, dict) else {}


def saved_terms(home: Path) -> Terms:
    """The terms saved in ``home`` (every scope offered, the defaults, until the owner sets
    them); read from the file alone, so they show without the chain."""
    raw = _saved(home).get("terms")
    return Terms.model_validate(raw) if raw is not None else Terms(
        scopes_offered=[s.name for s in scopes.CATALOG]
    )


def saved_rules(home: Path) -> RuleSet:
    """The auto-approval rules saved in ``home`` (none until the owner sets them)."""
    raw = _saved(home).get("rules")
    return RuleSet.model_validate(raw) if raw is not None else RuleSet()


class TermsAndRules:
    def __init__(self, state: OwnerState) -> None:
        self._state = state
        self._path = state.vault.home / SETTINGS_FILE

    def __repr__(self) -> str:
        return f"TermsAndRules({self._path})"

    def _save(self, **changes: Any) -> None:
        data = {**_saved(self._state.vault.home), **changes}
        _files.write_atomically(self._path, json.dumps(data, indent=2, sort_keys=True).encode())

    def terms(self) -> Terms:
        return saved_terms(self._state.vault.home)

    def set_terms(self, terms: Terms) -> Terms:
        for name in [*terms.scopes_offered, *terms.scopes_never]:
            scopes.scope(name)
        with self._state.chain_lock:
            self._save(terms=terms.model_dump())
            self._state.record(TERMS, detail={"terms_hash": terms_hash(terms)})
        return terms

    def public_terms(self) -> TermsPublic:
        terms = self.terms()
        return TermsPublic(
            owner=self._state.owner, endpoint=_saved(self._state.vault.home).get("endpoint"),
            terms=terms, terms_hash=terms_hash(terms),
        )

    def publish_terms(self, endpoint: str) -> PublishResult:
        with self._state.chain_lock:
            digest = terms_hash(self.terms())
            outcome = self._state.ledger.publish_endpoint(endpoint, bytes.fromhex(digest[2:]))
            self._save(endpoint=endpoint)
            self._state.record(PUBLISH, detail={"endpoint": endpoint, "terms_hash": digest})
            return PublishResult(
                tx_hash="0x" + bytes(outcome.transaction_hash).hex(), terms_hash=digest
            )

    def rules(self) -> RuleSet:
        return saved_rules(self._state.vault.home)

    def set_rules(self, rules: RuleSet) -> RuleSet:
        with self._state.chain_lock:
            self._save(rules=rules.model_dump())
            self._state.record(RULES, detail={"rules": len(rules.rules),
                                              "never_share": list(rules.never_share)})
        return rules

    def never_shared(self) -> list[str]:
        """Every scope the terms or the rules never share."""
        return [*self.terms().scopes_never, *self.rules().never_share]
