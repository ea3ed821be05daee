"""What the CLI tests share: an owner's vault on a chain, as the `vault` command sees it."""

from __future__ import annotations

from pathlib import Path

from vault import chain as chains
from vault import crypto
from vault.importers import importer_for, sample_exports
from vault.store import Vault


def sample_owner(home: Path, passphrase: str, anvil: chains.AnvilNode, ledger_address: str
                 ) -> tuple[str, dict[str, str]]:
    """A vault at ``home`` holding Ada's sample exports, its owner funded with 1 ETH on
    ``anvil``: the owner's address, and the environment that points `vault` at it (the
    ledger at ``ledger_address``, a free port for its daemon)."""
    with Vault.create(home, passphrase, kdf=crypto.KDF_MINIMUM) as vault:
        for kind, path in sample_exports():
            with path.open("rb") as stream:
                vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
        address = vault.owner_address
    anvil.w3.eth.send_transaction({"from": anvil.addresses[0], "to": address, "value": 10**18})
    return address, {
        "VAULT_HOME": str(home), "VAULT_PASSPHRASE": passphrase, "VAULT_CHAIN": "rpc",
        "VAULT_RPC_URL": anvil.rpc_url, "VAULT_CHAIN_ID": str(anvil.chain_id),
        "VAULT_LEDGER": ledger_address, "VAULT_PORT": str(chains.free_port()),
    }
