"""Deploy the shipped ConsentLedger artifact to any JSON-RPC chain.

    DEPLOYER_PRIVATE_KEY=0x… .venv/bin/python scripts/deploy.py --rpc-url URL
    .venv/bin/python scripts/deploy.py --rpc-url URL --keystore key.json

(the keystore password is DEPLOYER_KEYSTORE_PASSWORD when set, else prompted)

Records ``{chain id: {address, block, deployer, …}}`` in a deployments file (default
``deployments.json``) and refuses to deploy again on a chain that already has a ledger with
code there, unless ``--force``. Prints the address; set it as VAULT_LEDGER.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount

from vault import chain as chains
from vault import errors, ledger


def load_deployer(keystore: Path | None) -> LocalAccount:
    if keystore is None:
        key = os.environ.get("DEPLOYER_PRIVATE_KEY")
        if not key:
            raise SystemExit("set DEPLOYER_PRIVATE_KEY or pass --keystore FILE")
        return ledger.local_account(key)
    password = os.environ.get("DEPLOYER_KEYSTORE_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {keystore}: ")
    try:
        key_bytes = Account.decrypt(json.loads(keystore.read_text("utf-8")), password)
    except (ValueError, OSError) as error:
        # Never echo the password or key; eth-account's message names neither.
        raise SystemExit(f"cannot open keystore {keystore}: {type(error).__name__}") from None
    return ledger.local_account(bytes(key_bytes))


def read_deployments(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    value = json.loads(path.read_text("utf-8"))
    if not isinstance(value, dict):
        raise SystemExit(f"{path} is not a JSON object")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rpc-url", required=True, help="the chain's JSON-RPC URL")
    parser.add_argument("--keystore", type=Path, help="an encrypted JSON keystore file")
    parser.add_argument("--chain-id", type=int, help="refuse unless the node is this chain")
    parser.add_argument(
        "--deployments",
        type=Path,
        default=Path("deployments.json"),
        help="where addresses are recorded",
    )
    parser.add_argument("--force", action="store_true", help="deploy even if one is recorded")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the receipt"
    )
    args = parser.parse_args(argv)

    deployer = load_deployer(args.keystore)
    with requests.Session() as session:
        w3 = chains.http_web3(args.rpc_url, timeout=30.0, session=session)
        try:
            chain_id = ledger.call_node(w3, lambda: int(w3.eth.chain_id))
            if args.chain_id is not None and chain_id != args.chain_id:
                raise errors.ChainMismatch(
                    f"{args.rpc_url} is chain {chain_id}, not {args.chain_id}"
                )
            deployments = read_deployments(args.deployments)
            recorded = deployments.get(str(chain_id))
            if recorded and not args.force:
                code = ledger.call_node(w3, lambda: bytes(w3.eth.get_code(recorded["address"])))
                if code:
                    print(
                        f"chain {chain_id} already has a ledger at {recorded['address']} "
                        f"(recorded in {args.deployments}); use --force to deploy another",
                        file=sys.stderr,
                    )
                    return 2
            address = ledger.deploy_ledger(w3, sender=deployer, receipt_timeout=args.timeout)
            domain = ledger.verify_ledger(w3, address, chain_id)
            block = ledger.call_node(w3, lambda: int(w3.eth.block_number))
        except errors.VaultError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    deployments[str(chain_id)] = {
        "address": domain.verifying_contract,
        "block": block,
        "deployer": str(deployer.address),
        "solc": ledger.load_artifact().solc_version,
        "deployed_at": int(time.time()),
    }
    temporary = args.deployments.with_suffix(".tmp")
    temporary.write_text(json.dumps(deployments, indent=2, sort_keys=True) + "\n", "utf-8")
    temporary.replace(args.deployments)
    print(domain.verifying_contract)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
