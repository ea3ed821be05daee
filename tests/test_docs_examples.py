"""The company guide's SDK examples (docs/company-guide.md), run in order as one program
against a real daemon (uvicorn, syncing on its own) on a real anvil chain. The owner's vault
approves the guide's request by one of the owner's rules, as it would while they are away."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from vault import chain as chains
from vault import crypto
from vault.config import Settings
from vault.daemon.app import create_app
from vault.importers import importer_for, sample_exports
from vault.policy import Rule, RuleSet
from vault.store import Vault

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "company-guide.md"
PASS = "correct horse battery staple"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text("utf-8"), flags=re.DOTALL)


def test_the_guide_has_examples_for_every_step() -> None:
    code = "\n".join(examples())
    for call in ("Company(", ".terms(", ".request_access(", ".wait_for_grant(", ".fetch(",
                 "ScopeNotGranted", "fetch_many(", ".cancel(", ".withdraw("):
        assert call in code, call


def test_the_company_guide_examples_run(anvil: Any, anvil_chain: chains.RpcChain,
                                        tmp_path: Path) -> None:
    home = tmp_path / "owner"
    vault = Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM)
    for kind, path in sample_exports():
        with path.open("rb") as stream:
            vault.import_records(list(importer_for(kind).parse(stream, filename=path.name)))
    anvil.w3.eth.send_transaction(
        {"from": anvil.addresses[0], "to": vault.owner_address, "value": 10**18}
    )
    port = chains.free_port()
    settings = Settings(home=home, chain="rpc", rpc_url=anvil.rpc_url, chain_id=anvil.chain_id,
                        ledger=anvil_chain.ledger_address, port=port,
                        sync_interval_seconds=0.1)
    app = create_app(settings, vault=vault, chain=anvil_chain)
    owner = app.state.daemon.owner
    owner.publish_terms(f"http://127.0.0.1:{port}")
    owner.set_rules(RuleSet(rules=[Rule(name="guide", scopes=["preferences.music",
                                                               "profile.age_range"])]))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    namespace: dict[str, Any] = {
        "RPC_URL": anvil.rpc_url,
        "LEDGER": anvil_chain.ledger_address,
        "COMPANY_KEY": "0x" + bytes(anvil.accounts[1].key).hex(),
        "OWNER": vault.owner_address,
        "__name__": "company_guide",
    }
    try:
        for number, block in enumerate(examples(), start=1):
            exec(compile(block, f"{GUIDE.name} example {number}", "exec"), namespace)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        vault.close()
    assert namespace["offer"].matches_published
    assert namespace["release"].grant_id == namespace["grant"].id
