"""The committed ledger artifact (vault/artifacts/ConsentLedger.json) matches the contract source.

Python deploys and calls the ledger from this file, so a stale copy would run an old contract.
``scripts/export_artifact.js`` regenerates it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "vault" / "artifacts" / "ConsentLedger.json"

# The agreed surface (brief/LEDGER_ABI.md): every name Python code relies on.
FUNCTIONS = {
    "requestAccess", "approve", "approveBySig", "deny", "cancel", "revoke", "claim", "claimMany",
    "withdraw", "publishEndpoint", "getRequest", "requestCount", "isActive", "covers", "earned",
    "claimable", "owed", "escrowHeld", "domainSeparator", "APPROVAL_TYPEHASH", "eip712Domain",
    "requestGroupAccess", "groupMembers", "describeCompany",
}  # fmt: skip
EVENTS = {
    "AccessRequested", "AccessApproved", "AccessDenied", "RequestCancelled", "AccessRevoked",
    "EarningsClaimed", "Withdrawn", "EndpointPublished", "GroupAccessRequested",
    "GroupMemberApproved", "GroupAccessApproved", "GroupAccessDenied", "GroupAccessRevoked",
    "CompanyDescribed",
}  # fmt: skip
ERRORS = {
    "ZeroPrice", "PriceTooLarge", "ZeroDuration", "EmptyScopes", "InvalidOwner", "SelfRequest",
    "UnknownRequest", "NotRequestOwner", "NotRequestCompany", "RequestNotPending",
    "GrantNotActive", "GrantExpired", "ApprovalDeadlinePassed", "InvalidApprovalSignature",
    "NothingToClaim", "NothingOwed", "TransferFailed", "AlreadyApproved", "DuplicateOwner",
    "GroupTooLarge", "GroupTooSmall", "InvalidGroupApprovalSignature", "InvalidCompanyName",
    "CompanyUrlTooLong",
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _names(abi: list[dict[str, Any]], kind: str) -> set[str]:
    return {str(item["name"]) for item in abi if item["type"] == kind}


def test_committed_artifact_carries_the_agreed_surface() -> None:
    artifact = _load(COMMITTED)
    assert set(artifact) == {"contractName", "abi", "bytecode", "deployedBytecode", "solcVersion"}
    assert artifact["contractName"] == "ConsentLedger"
    assert artifact["solcVersion"].startswith("0.8.28+")
    assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2
    assert _names(artifact["abi"], "function") >= FUNCTIONS
    assert _names(artifact["abi"], "event") >= EVENTS
    assert _names(artifact["abi"], "error") >= ERRORS


@pytest.mark.node
@pytest.mark.slow
def test_committed_artifact_matches_a_fresh_compile(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None or not (ROOT / "node_modules" / "hardhat").is_dir():
        pytest.fail("needs Node.js and node_modules (make install)")
    env = {
        **os.environ,
        "VAULT_HARDHAT_BUILD_DIR": str(tmp_path),
        "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true",
    }
    subprocess.run(
        [npx, "--no-install", "hardhat", "compile", "--quiet"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = _load(tmp_path / "artifacts" / "contracts" / "ConsentLedger.sol" / "ConsentLedger.json")
    committed = _load(COMMITTED)
    hint = "vault/artifacts/ConsentLedger.json is stale: run node scripts/export_artifact.js"
    assert committed["abi"] == fresh["abi"], hint
    assert committed["bytecode"] == fresh["bytecode"], hint
    assert committed["deployedBytecode"] == fresh["deployedBytecode"], hint
    (build_info,) = (tmp_path / "artifacts" / "build-info").glob("*.json")
    assert committed["solcVersion"] == _load(build_info)["solcLongVersion"], hint
