"""A company's side of the demo, as its own process, using only the SDK (vault.client).

    COMPANY_KEY=0x… python scripts/company.py --rpc URL --ledger ADDR request \\
        --owner 0x… --scopes preferences.music,profile.age_range --price 0.003 --days 30 \\
        --purpose "…" --state a.json
    COMPANY_KEY=0x… python scripts/company.py --rpc URL --ledger ADDR fetch --state a.json
    COMPANY_KEY=0x… python scripts/company.py --rpc URL --ledger ADDR withdraw

``request`` reads the owner's published terms and pays for a request; ``fetch`` waits for
the grant (relaying the owner's signed approval), fetches the granted scopes and verifies
the owner's receipt; ``withdraw`` takes back refunds. The key comes from the environment,
never the command line. Exit codes: 0 done, 3 the vault refused (the error code is
printed), 4 the receipt did not verify, 5 any other SDK error.

With ``--await-command`` first, the command and its arguments are read as one line from
standard input: the demo starts the process (and its second of imports) while the owner's
steps run, and hands it its command when the story reaches it. End of input: exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from decimal import Decimal
from pathlib import Path

from eth_account import Account
from web3 import HTTPProvider, Web3

from vault import errors
from vault.client import (
    AccessRequest,
    ClientError,
    Company,
    Grant,
    ReceiptInvalid,
    VaultRefused,
)
from vault.ledger import format_eth

DAY = 86_400


def _company(args: argparse.Namespace) -> Company:
    key = os.environ.get("COMPANY_KEY")
    if not key:
        raise SystemExit("set COMPANY_KEY to the company's private key")
    w3 = Web3(HTTPProvider(args.rpc, request_kwargs={"timeout": 10}))
    return Company(Account.from_key(key), w3, args.ledger, poll_interval=0.1)


def _say(args: argparse.Namespace, text: str) -> None:
    print(f"[{args.name}] {text}", flush=True)


def request(args: argparse.Namespace) -> int:
    with _company(args) as company:
        offered = company.terms(args.owner)
        _say(args, f"found {args.owner}'s vault at {offered.endpoint} (on the ledger)")
        _say(args, f"terms: at least {format_eth(offered.terms.min_price_per_day_wei)} a day, "
                   f"at most {offered.terms.max_duration_seconds // DAY} days; "
                   f"terms hash matches the published one: {offered.matches_published}")
        names = args.scopes.split(",")
        price = int(Decimal(args.price).scaleb(18))
        asked = company.request_access(args.owner, names, args.days * DAY, price, args.purpose,
                                       args.max_releases)
        _say(args, f"request #{asked.id}: {', '.join(asked.scopes)} for {args.days} days, "
                   f"{format_eth(price)} paid into escrow")
        Path(args.state).write_text(asked.model_dump_json(indent=2))
    return 0


def fetch(args: argparse.Namespace) -> int:
    state = json.loads(Path(args.state).read_text())
    with _company(args) as company:
        if "grant" in state:
            grant = Grant.model_validate(state["grant"])
        else:
            asked = AccessRequest.model_validate(state)
            _say(args, f"waiting for the owner to approve request #{asked.id} …")
            grant = company.wait_for_grant(asked, timeout=args.timeout)
            how = (f"relayed the owner's signed approval (tx {grant.relay_tx_hash[:10]}…, "
                   "we paid the gas)" if grant.relay_tx_hash else "the owner approved on chain")
            _say(args, f"grant #{grant.id} active: {how}")
            Path(args.state).write_text(json.dumps(
                {**state, "grant": grant.model_dump(mode="json")}, indent=2))
        release = company.fetch(grant)
        _say(args, "received, receipt verified (signed by the owner over the content hash "
                   f"{release.receipt.content_hash[:18]}…):")
        for scope, value in release.preferences.items():
            print(f"    {scope}: {json.dumps(value, ensure_ascii=False)}", flush=True)
    return 0


def withdraw(args: argparse.Namespace) -> int:
    with _company(args) as company:
        owed = company.owed()
        if owed == 0:
            _say(args, "nothing to withdraw")
            return 0
        _say(args, f"withdrew a refund of {format_eth(company.withdraw())}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--await-command"]:
        command = sys.stdin.readline()
        if not command.strip():
            return 0
        argv = argv[1:] + shlex.split(command)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--name", default="company")
    commands = parser.add_subparsers(dest="command", required=True)
    asking = commands.add_parser("request")
    asking.add_argument("--owner", required=True)
    asking.add_argument("--scopes", required=True)
    asking.add_argument("--price", required=True, help="ETH")
    asking.add_argument("--days", type=int, required=True)
    asking.add_argument("--purpose", required=True)
    asking.add_argument("--max-releases", type=int, default=0)
    asking.add_argument("--state", required=True)
    fetching = commands.add_parser("fetch")
    fetching.add_argument("--state", required=True)
    fetching.add_argument("--timeout", type=float, default=30.0)
    commands.add_parser("withdraw")
    args = parser.parse_args(argv)
    action = {"request": request, "fetch": fetch, "withdraw": withdraw}[args.command]
    try:
        return action(args)
    except VaultRefused as refused:
        _say(args, f"refused: {refused.status} {refused.error_code} — {refused.detail}")
        return 3
    except ReceiptInvalid as invalid:
        _say(args, f"REJECTED the answer: {invalid}")
        return 4
    except (ClientError, errors.VaultError) as error:
        _say(args, f"error: {error}")
        return 5


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
