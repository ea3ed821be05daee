"""OwnerService without HTTP: consent statements, persistence of local decisions, receipts."""

from __future__ import annotations

from pathlib import Path

from vault import audit, crypto, scopes
from vault.chain import EmbeddedChain
from vault.config import Settings
from vault.owner import OwnerService, terms_hash
from vault.store import Vault
from vault.sync import LedgerIndex, LedgerSync, index_path
from vault.wire import Terms


def _service(home: Path, vault: Vault, chain: EmbeddedChain) -> tuple[OwnerService, LedgerSync]:
    index = LedgerIndex(index_path(home), chain_id=chain.chain_id,
                        ledger_address=chain.ledger_address, owner=vault.owner_address)
    log = audit.AuditLog.in_home(home, key=vault.access_log_key())
    service = OwnerService(vault, chain, index, log, settings=Settings(home=home))
    return service, LedgerSync(chain.w3, index)


def test_consent_receipt_and_local_revocation_survive_a_restart(
    tmp_path: Path, embedded_chain: EmbeddedChain
) -> None:
    """THREATS row 15 (a local revocation outlives the process that made it)."""
    home = tmp_path / "home"
    vault = Vault.create(home, "pw", kdf=crypto.KDF_MINIMUM)
    chain = embedded_chain
    chain.w3.eth.send_transaction({"from": chain.accounts[0], "to": vault.owner_address,
                                   "value": 10**18})
    company = chain.client(sender=chain.accounts[1])
    request_id = company.request_access(
        vault.owner_address, scopes.bitmap(["preferences.music"]), 86_400, price=10**15,
        max_releases=3, catalog_hash=scopes.catalog_hash(), purpose="radio \"mix\"",
    )
    service, sync = _service(home, vault, chain)
    sync.sync_once()
    public = service.request(request_id)
    assert public.status == "pending" and public.price_per_day_wei == 10**15
    assert "at most 3 releases" in public.consent_statement
    assert '"radio \\"mix\\""' in public.consent_statement
    service.approve(request_id, submit=True)
    sync.sync_once()
    receipts = service.state.audit.for_grant(request_id, kind=audit.CONSENT_RECEIPT)
    assert receipts[0].detail["purpose"] == 'radio "mix"'
    assert receipts[0].detail["scopes_in_words"] == [scopes.scope("preferences.music").description]
    revoked = service.revoke(request_id)
    assert revoked.owner_earned_wei is not None
    assert service.state.audit.for_grant(request_id, kind=audit.TERMINATION_RECEIPT)
    service.state.audit.close()
    service.state.index.close()

    again, _ = _service(home, vault, chain)
    assert request_id in again.state.revoked_locally
    assert again.approval(request_id).request_id == request_id
    assert again.verify_log().ok
    again.state.audit.close()
    again.state.index.close()
    vault.close()


def test_terms_hash_is_keccak_of_rfc8785_terms() -> None:
    terms = Terms(min_price_per_day_wei=1, scopes_offered=["preferences.music"])
    assert terms_hash(terms) == terms_hash(Terms.model_validate(terms.model_dump()))
    assert terms_hash(terms) != terms_hash(terms.model_copy(update={"note": "x"}))
