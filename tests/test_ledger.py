"""vault.ledger: EIP-712 types cross-checked (eth-account, the contract, ethers), canonical
signatures only, the typed client, named reverts, verify_ledger, and a stateful model of the
contract's money."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import coincurve
import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from vault import chain as chains
from vault import errors, ledger
from vault.chain import EmbeddedChain
from vault.eth.secp256k1 import SECP256K1_N
from vault.ledger import APPROVAL, RECEIPT, RELEASE, Domain, Status

REPO = Path(__file__).resolve().parent.parent
CROSSCHECK_JS = Path(__file__).with_name("eip712_crosscheck.js")
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
uint64s = st.integers(min_value=0, max_value=2**64 - 1)
uint256s = st.integers(min_value=0, max_value=2**256 - 1)
bytes32s = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def eth_account_digest(domain: Domain, struct: ledger.StructType, message: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=ledger.typed_data(domain, struct, message))
    return bytes(_hash_eip191_message(signable))


# --------------------------------------------------------------------------- type definitions


def test_type_strings_are_the_agreed_ones() -> None:
    assert APPROVAL.encode_type == "Approval(uint256 requestId,uint256 deadline)"
    assert (
        RELEASE.encode_type
        == "Release(uint256 grantId,uint64 scopes,bytes32 nonce,uint64 issuedAt)"
    )
    assert RECEIPT.encode_type == (
        "Receipt(uint256 grantId,address company,bytes32 contentHash,uint64 issuedAt)"
    )
    assert keccak(text="Approval(uint256 requestId,uint256 deadline)") == ledger.APPROVAL_TYPEHASH


@settings(max_examples=40, deadline=None)
@given(chain_id=st.integers(1, 2**64), request_id=uint256s, deadline=uint256s)
def test_approval_digest_matches_eth_account(chain_id: int, request_id: int, deadline: int) -> None:
    domain = Domain(chain_id, LEDGER)
    expected = eth_account_digest(domain, APPROVAL, {"requestId": request_id, "deadline": deadline})
    assert domain.approval_digest(request_id, deadline) == expected


@settings(max_examples=40, deadline=None)
@given(grant_id=uint256s, scopes=uint64s, nonce=bytes32s, issued_at=uint64s)
def test_release_digest_matches_eth_account(
    grant_id: int, scopes: int, nonce: bytes, issued_at: int
) -> None:
    domain = Domain(31337, LEDGER)
    message = {"grantId": grant_id, "scopes": scopes, "nonce": nonce, "issuedAt": issued_at}
    assert domain.release_digest(grant_id, scopes, nonce, issued_at) == eth_account_digest(
        domain, RELEASE, message
    )


@settings(max_examples=40, deadline=None)
@given(grant_id=uint256s, company=addresses, content_hash=bytes32s, issued_at=uint64s)
def test_receipt_digest_matches_eth_account(
    grant_id: int, company: str, content_hash: bytes, issued_at: int
) -> None:
    domain = Domain(1, LEDGER)
    message = {
        "grantId": grant_id,
        "company": company,
        "contentHash": content_hash,
        "issuedAt": issued_at,
    }
    assert domain.receipt_digest(grant_id, company, content_hash, issued_at) == (
        eth_account_digest(domain, RECEIPT, message)
    )


def test_digest_refuses_out_of_range_values() -> None:
    domain = Domain(1, LEDGER)
    with pytest.raises(ValueError):
        domain.release_digest(1, 2**64, b"\x00" * 32, 0)
    with pytest.raises(ValueError):
        domain.release_digest(1, 1, b"\x00" * 31, 0)
    with pytest.raises(ValueError):
        domain.approval_digest(-1, 0)
    with pytest.raises(TypeError):
        domain.approval_digest(True, 0)


def test_domain_normalises_the_address() -> None:
    assert Domain(1, LEDGER.lower()) == Domain(1, LEDGER)
    assert Domain(1, LEDGER.lower()).separator == Domain(1, LEDGER).separator


# --------------------------------------------------------------------------- signatures


def _malleate(signature: bytes) -> bytes:
    """The high-s twin: (r, n - s, flipped v) verifies for the same key under plain ECDSA."""
    s = int.from_bytes(signature[32:64], "big")
    return (
        signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    )


def test_sign_and_recover_round_trip() -> None:
    key = os.urandom(32)
    digest = os.urandom(32)
    signature = ledger.sign_digest(key, digest)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert ledger.recover_signer(digest, signature) == ledger.address_of(key)
    assert ledger.recover_signer(digest, "0x" + signature.hex()) == ledger.address_of(key)
    assert ledger.address_of(key) == Account.from_key(key).address
    # eth-account agrees with coincurve on the signer.
    assert Account._recover_hash(digest, signature=signature) == ledger.address_of(key)


def test_high_s_twin_is_rejected_although_eth_account_accepts_it() -> None:
    """THREATS row 11: a malleated (high-s) signature is refused."""
    key, digest = b"\x05" * 32, os.urandom(32)
    twin = _malleate(ledger.sign_digest(key, digest))
    assert Account._recover_hash(digest, signature=twin) == ledger.address_of(key)
    with pytest.raises(errors.SignatureInvalid):
        ledger.recover_signer(digest, twin)


@pytest.mark.parametrize("v", [0, 1, 26, 29, 35, 255])
def test_wrong_v_is_rejected(v: int) -> None:
    """THREATS row 11: only v = 27/28 is accepted (0/1 are refused: one encoding only)."""
    key, digest = b"\x05" * 32, b"\x11" * 32
    signature = ledger.sign_digest(key, digest)
    assert ledger.recover_signer(digest, signature) == ledger.address_of(key)
    with pytest.raises(errors.SignatureInvalid):
        ledger.recover_signer(digest, signature[:64] + bytes([v]))


def _high_r_point_signature() -> bytes:
    """``r‖s`` for which recovery ids 2 and 3 (v = 29, 30) name a real curve point: the
    point's x is ``r + n``, which is below the field prime for a small ``r``."""
    p = 2**256 - 2**32 - 977
    r = next(k for k in range(1, 100) if pow((SECP256K1_N + k) ** 3 + 7, (p - 1) // 2, p) == 1)
    return r.to_bytes(32, "big") + (1).to_bytes(32, "big")


@pytest.mark.parametrize("v", [29, 30])
def test_v_29_and_30_are_refused_even_where_they_recover_a_key(v: int) -> None:
    """THREATS row 11: the v check is what refuses recovery ids 2 and 3 — libsecp256k1 does
    recover a public key from them here, so nothing after the check would."""
    digest = b"\x11" * 32
    rs = _high_r_point_signature()
    recovered = coincurve.PublicKey.from_signature_and_message(
        rs + bytes([v - 27]), digest, hasher=None
    )
    assert len(recovered.format(compressed=False)) == 65
    with pytest.raises(errors.SignatureInvalid):
        ledger.recover_signer(digest, rs + bytes([v]))


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_wrong_length_is_rejected(length: int) -> None:
    """THREATS row 11: a signature is exactly 65 bytes."""
    signature = (ledger.sign_digest(b"\x05" * 32, b"\x11" * 32) * 2)[:length]
    with pytest.raises(errors.SignatureInvalid):
        ledger.recover_signer(b"\x11" * 32, signature)


@pytest.mark.parametrize(
    "signature",
    [
        b"\x00" * 64 + b"\x1b",  # r = s = 0
        (SECP256K1_N).to_bytes(32, "big") + b"\x01" * 32 + b"\x1b",  # r = n
        "0xzz" + "00" * 64,  # not hex
    ],
)
def test_out_of_range_or_garbage_is_rejected(signature: bytes | str) -> None:
    with pytest.raises(errors.SignatureInvalid):
        ledger.recover_signer(b"\x11" * 32, signature)


def test_signature_for_another_domain_or_type_does_not_verify() -> None:
    """THREATS row 12: chain id, ledger address and type are all bound into the digest."""
    key = b"\x07" * 32
    company = ledger.address_of(key)
    domain = Domain(31337, LEDGER)
    nonce = b"\x01" * 32
    signature = ledger.sign_release(key, domain, 7, 3, nonce, 1_700_000_000)
    assert ledger.verify_signer(
        domain.release_digest(7, 3, nonce, 1_700_000_000), signature, company
    )
    for other in (
        Domain(1, LEDGER).release_digest(7, 3, nonce, 1_700_000_000),
        Domain(31337, "0x" + "11" * 20).release_digest(7, 3, nonce, 1_700_000_000),
        domain.receipt_digest(7, company, nonce, 1_700_000_000),
        domain.release_digest(7, 7, nonce, 1_700_000_000),
    ):
        with pytest.raises(errors.SignatureInvalid):
            ledger.verify_signer(other, signature, company)


def test_format_eth() -> None:
    assert ledger.format_eth(0) == "0 ETH"
    assert ledger.format_eth(1) == "0.000000000000000001 ETH"
    assert ledger.format_eth(1_500_000_000_000_000) == "0.0015 ETH"
    assert ledger.format_eth(2 * 10**18) == "2 ETH"
    with pytest.raises(TypeError):
        ledger.format_eth(1.5)  # type: ignore[arg-type]


def test_code_matches_allows_only_immutable_placeholders() -> None:
    expected = b"\x60\x80" + b"\x00" * 32 + b"\x56\x00\x01"
    filled = b"\x60\x80" + b"\xab" * 32 + b"\x56\x00\x01"
    assert ledger.code_matches(filled, expected)
    assert not ledger.code_matches(filled[:-1] + b"\x02", expected)
    assert not ledger.code_matches(filled[:-1], expected)
    short_run = b"\x60" + b"\x00" * 8 + b"\x56"
    assert not ledger.code_matches(b"\x60" + b"\x01" * 8 + b"\x56", short_run)


# --------------------------------------------------------------------------- against the contract


def test_contract_views_equal_python_definitions(embedded_chain: EmbeddedChain) -> None:
    """EAS-style cross-check: the contract's type hash and domain equal Python's."""
    client = embedded_chain.client()
    assert client.approval_typehash() == ledger.APPROVAL_TYPEHASH
    assert client.domain_separator() == client.domain.separator
    assert client.eip712_domain() == (
        "ConsentLedger",
        "1",
        embedded_chain.chain_id,
        embedded_chain.ledger_address,
    )


def _request(chain: EmbeddedChain, *, owner: int = 1, company: int = 2, price: int = 10**15) -> int:
    return chain.client(chain.accounts[company]).request_access(
        chain.accounts[owner],
        0b1011,
        3_600,
        price=price,
        max_releases=5,
        catalog_hash=b"\x42" * 32,
        purpose="playlist suggestions",
    )


def test_python_signed_approval_is_accepted_by_approve_by_sig(
    embedded_chain: EmbeddedChain,
) -> None:
    chain = embedded_chain
    request_id = _request(chain)
    company = chain.client(chain.accounts[2])
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    signature = ledger.sign_approval(chain.dev_keys[1], company.domain, request_id, deadline)
    outcome = company.approve_by_sig(request_id, deadline, signature)
    approved = outcome.event("AccessApproved")
    state = company.get_request(request_id)
    assert state.status is Status.ACTIVE
    assert state.starts_at == approved.args["startsAt"]
    assert company.is_active(request_id) and company.covers(request_id, 0b0011)
    assert not company.covers(request_id, 0b0100)


def test_approval_signed_for_another_chain_reverts_with_its_name(
    embedded_chain: EmbeddedChain,
) -> None:
    """THREATS row 12: an approval for another chain id is refused on chain."""
    chain = embedded_chain
    request_id = _request(chain)
    company = chain.client(chain.accounts[2])
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    wrong = Domain(chain.chain_id + 1, chain.ledger_address)
    signature = ledger.sign_approval(chain.dev_keys[1], wrong, request_id, deadline)
    with pytest.raises(errors.ContractReverted) as caught:
        company.approve_by_sig(request_id, deadline, signature)
    assert caught.value.name == "InvalidApprovalSignature"
    assert caught.value.args_by_name == {"id": request_id, "owner": chain.accounts[1]}


def test_expired_approval_deadline_reverts(embedded_chain: EmbeddedChain) -> None:
    """THREATS row 13: an expired approval deadline reverts with ApprovalDeadlinePassed."""
    chain = embedded_chain
    request_id = _request(chain)
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) - 1
    signature = ledger.sign_approval(chain.dev_keys[1], chain.client().domain, request_id, deadline)
    with pytest.raises(errors.ContractReverted) as caught:
        chain.client(chain.accounts[3]).approve_by_sig(request_id, deadline, signature)
    assert caught.value.name == "ApprovalDeadlinePassed"
    assert caught.value.args_by_name["deadline"] == deadline


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"price": 0}, "ZeroPrice"),
        ({"duration": 0}, "ZeroDuration"),
        ({"scopes": 0}, "EmptyScopes"),
        ({"owner": "0x" + "00" * 20}, "InvalidOwner"),
        ({"owner": None}, "SelfRequest"),
    ],
)
def test_bad_requests_revert_with_named_errors(
    embedded_chain: EmbeddedChain, kwargs: dict[str, Any], name: str
) -> None:
    """THREATS row 17: underpaid/zero-price, zero duration, empty scopes → named reverts."""
    chain = embedded_chain
    company = chain.accounts[2]
    args: dict[str, Any] = {"owner": chain.accounts[1], "scopes": 1, "duration": 60, "price": 1}
    args.update(kwargs)
    if args["owner"] is None:
        args["owner"] = company
    with pytest.raises(errors.ContractReverted) as caught:
        chain.client(company).request_access(
            args["owner"], args["scopes"], args["duration"], price=args["price"]
        )
    assert caught.value.name == name
    assert str(caught.value).startswith(f"the ledger refused: {name}(")


def test_revert_is_named_also_when_mined_with_explicit_gas(embedded_chain: EmbeddedChain) -> None:
    """With a fixed gas limit the failing transaction is mined (status 0); the client still
    names the contract's error instead of returning a failed receipt."""
    chain = embedded_chain
    request_id = _request(chain)
    stranger = ledger.LedgerClient(
        chain.w3, chain.ledger_address, sender=chain.accounts[4], gas=300_000
    )
    with pytest.raises(errors.ContractReverted) as caught:
        stranger.deny(request_id)
    assert caught.value.name == "NotRequestOwner"
    assert caught.value.args_by_name == {"id": request_id, "caller": chain.accounts[4]}
    assert chain.client().get_request(request_id).status is Status.PENDING


def test_unknown_request_view_reverts_with_name(embedded_chain: EmbeddedChain) -> None:
    with pytest.raises(errors.ContractReverted) as caught:
        embedded_chain.client().get_request(99)
    assert caught.value.name == "UnknownRequest"
    assert caught.value.args_by_name == {"id": 99}


def test_status_arguments_decode_to_the_enum(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    request_id = _request(chain)
    owner = chain.client(chain.accounts[1])
    owner.deny(request_id)
    with pytest.raises(errors.ContractReverted) as caught:
        owner.approve(request_id)
    assert caught.value.name == "RequestNotPending"
    assert caught.value.args_by_name["status"] is Status.DENIED


def test_local_account_sender_signs_transactions(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    fresh = ledger.local_account(os.urandom(32))
    chain.w3.eth.send_transaction({"from": chain.accounts[0], "to": fresh.address, "value": 10**18})
    request_id = chain.client(fresh).request_access(chain.accounts[1], 1, 60, price=12345)
    assert chain.client().get_request(request_id).company == fresh.address


def test_full_lifecycle_moves_money_as_specified(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    price = 3_600 * 10**12
    request_id = _request(chain, price=price)
    owner = chain.client(chain.accounts[1])
    company = chain.client(chain.accounts[2])
    starts = owner.approve(request_id).event("AccessApproved").args["startsAt"]
    chain.time_travel(600)
    claimed = owner.claim(request_id)
    claimed_at = int(chain.w3.eth.get_block("latest")["timestamp"])
    assert claimed == price * (claimed_at - starts) // 3_600
    revoked = owner.revoke(request_id).event("AccessRevoked").args
    assert revoked["ownerEarned"] + revoked["companyRefund"] == price
    assert owner.owed(chain.accounts[1]) == revoked["ownerEarned"]
    assert company.owed(chain.accounts[2]) == revoked["companyRefund"]
    assert owner.escrow_held() == 0
    before = chain.w3.eth.get_balance(chain.accounts[2])
    assert company.withdraw() == revoked["companyRefund"]
    assert chain.w3.eth.get_balance(chain.accounts[2]) > before
    with pytest.raises(errors.ContractReverted, match="NothingOwed"):
        company.withdraw()


def test_claim_many_and_endpoint(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    ids = [_request(chain) for _ in range(2)]
    owner = chain.client(chain.accounts[1])
    for request_id in ids:
        owner.approve(request_id)
    chain.time_travel(100)
    assert owner.claim_many(ids) > 0
    with pytest.raises(errors.ContractReverted) as caught:
        owner.claim_many([])
    assert (caught.value.name, caught.value.args_by_name) == ("NothingToClaim", {"id": 0})
    outcome = owner.publish_endpoint("http://127.0.0.1:8787", b"\x09" * 32)
    published = outcome.event("EndpointPublished").args
    assert published == {
        "account": chain.accounts[1],
        "url": "http://127.0.0.1:8787",
        "termsHash": b"\x09" * 32,
    }


def test_describe_company_emits_its_name_and_refuses_bad_lengths_before_sending(
    embedded_chain: EmbeddedChain,
) -> None:
    chain = embedded_chain
    company = chain.client(chain.accounts[2])
    described = company.describe_company("Acme Audio", "https://acme.example").event(
        "CompanyDescribed").args
    assert described == {"company": chain.accounts[2], "name": "Acme Audio",
                         "url": "https://acme.example"}
    block = chain.w3.eth.block_number
    with pytest.raises(errors.ContractReverted) as caught:
        company.describe_company("", "")
    assert (caught.value.name, caught.value.args_by_name) == (
        "InvalidCompanyName", {"length": 0, "maximum": 64})
    with pytest.raises(errors.ContractReverted) as caught:
        company.describe_company("Acme", "https://" + "a" * 249)
    assert caught.value.name == "CompanyUrlTooLong"
    assert chain.w3.eth.block_number == block  # refused at the gas estimate: nothing mined


def test_group_request_lifecycle_through_the_client(embedded_chain: EmbeddedChain) -> None:
    """Issue 18: one id for two owners; each approves for themself (one by a Python-signed
    approval relayed by the company); a revoke settles both shares and refunds the rest."""
    chain = embedded_chain
    first, second = chain.accounts[1], chain.accounts[3]
    company = chain.client(chain.accounts[2])
    price = 3_600 * 10**12 + 1  # odd: the first owner's share carries the remainder
    request_id = company.request_group_access(
        [first, second], 0b1011, 3_600, price=price, max_releases=2,
        catalog_hash=b"\x42" * 32, purpose="a film for two",
    )
    assert request_id == company.request_count() == 1
    state = company.get_request(request_id)
    assert (state.owner, state.price, state.status) == (
        "0x0000000000000000000000000000000000000000", price, Status.PENDING,
    )
    members = company.group_members(request_id)
    assert [(m.owner, m.share, m.approved) for m in members] == [
        (first, price // 2 + 1, False), (second, price // 2, False),
    ]
    chain.client(first).approve(request_id)
    assert not company.is_active(request_id)
    deadline = int(chain.w3.eth.get_block("latest")["timestamp"]) + 600
    signature = ledger.sign_approval(chain.dev_keys[3], company.domain, request_id, deadline)
    outcome = company.approve_by_sig(request_id, deadline, signature)
    starts = outcome.event("GroupAccessApproved").args["startsAt"]
    assert company.is_active(request_id) and company.covers(request_id, 0b0011)
    chain.time_travel(900)
    claimed = chain.client(second).claim(request_id)
    assert claimed == company.group_members(request_id)[1].claimed > 0
    revoked = [e.args for e in chain.client(first).revoke(request_id).events
               if e.name == "GroupAccessRevoked"]
    elapsed = int(chain.w3.eth.get_block("latest")["timestamp"]) - starts
    assert [a["owner"] for a in revoked] == [first, second]
    assert [a["ownerEarned"] for a in revoked] == [
        (price // 2 + 1) * elapsed // 3_600, (price // 2) * elapsed // 3_600,
    ]
    refund = revoked[0]["companyRefund"]
    assert refund + sum(a["ownerEarned"] for a in revoked) == price
    assert company.owed(first) + company.owed(second) + company.owed(chain.accounts[2]) == price
    assert company.escrow_held() == 0 and company.claimable(request_id) == 0
    assert company.balance() == price
    assert company.group_members(_request(chain)) == []


def test_group_request_refusals_are_named(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    company = chain.client(chain.accounts[2])
    one, two = chain.accounts[1], chain.accounts[3]
    cases: list[tuple[list[str], str, dict[str, Any]]] = [
        ([one], "GroupTooSmall", {"count": 1, "minimum": 2}),
        (list(chain.accounts[3:10]), "GroupTooLarge", {"count": 7, "maximum": 6}),
        ([one, two, one], "DuplicateOwner", {"owner": one}),
        ([one, chain.accounts[2]], "SelfRequest", {"account": chain.accounts[2]}),
    ]
    for owners, name, arguments in cases:
        with pytest.raises(errors.ContractReverted) as caught:
            company.request_group_access(owners, 1, 60, price=1)
        assert (caught.value.name, caught.value.args_by_name) == (name, arguments)
    request_id = company.request_group_access([one, two], 1, 60, price=10)
    chain.client(one).approve(request_id)
    with pytest.raises(errors.ContractReverted) as caught:
        chain.client(one).approve(request_id)
    assert (caught.value.name, caught.value.args_by_name) == (
        "AlreadyApproved", {"id": request_id, "owner": one},
    )


# --------------------------------------------------------------------------- verify_ledger


def test_verify_ledger_accepts_the_shipped_contract(embedded_chain: EmbeddedChain) -> None:
    domain = ledger.verify_ledger(
        embedded_chain.w3, embedded_chain.ledger_address, embedded_chain.chain_id
    )
    assert domain == Domain(embedded_chain.chain_id, embedded_chain.ledger_address)


def test_verify_ledger_refuses_wrong_chain_id(embedded_chain: EmbeddedChain) -> None:
    with pytest.raises(errors.ChainMismatch, match="expected 1"):
        ledger.verify_ledger(embedded_chain.w3, embedded_chain.ledger_address, 1)


def test_verify_ledger_refuses_an_address_without_code(embedded_chain: EmbeddedChain) -> None:
    with pytest.raises(errors.LedgerNotDeployed, match="no contract"):
        ledger.verify_ledger(embedded_chain.w3, embedded_chain.accounts[5], embedded_chain.chain_id)


def test_verify_ledger_refuses_other_code(embedded_chain: EmbeddedChain) -> None:
    chain = embedded_chain
    # Init code that deploys the one-byte runtime 0x00 (STOP).
    receipt = chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction(
            {"from": chain.accounts[0], "data": "0x600160008160" + "0b8239f300"}
        )
    )
    other = receipt["contractAddress"]
    assert other and chain.w3.eth.get_code(other)
    with pytest.raises(errors.LedgerNotDeployed, match="not this version"):
        ledger.verify_ledger(chain.w3, other, chain.chain_id)


# --------------------------------------------------------------------------- ethers (Node)

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not (REPO / "node_modules" / "ethers").is_dir(),
    reason="needs Node.js and node_modules/ethers",
)


def _ethers(job: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        ["node", str(CROSSCHECK_JS)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _release_job(domain: Domain, message: dict[str, Any]) -> dict[str, Any]:
    document = ledger.typed_data(domain, RELEASE, message)
    return {
        "domain": document["domain"],
        "types": document["types"],
        "primaryType": document["primaryType"],
        "message": {k: str(v) if isinstance(v, int) else v for k, v in message.items()},
    }


@pytest.mark.node
@needs_node
def test_release_signed_with_ethers_verifies_in_python_and_back() -> None:
    domain = Domain(31337, LEDGER)
    nonce = os.urandom(32)
    message = {
        "grantId": 2**200 + 7,
        "scopes": 2**64 - 1,
        "nonce": "0x" + nonce.hex(),
        "issuedAt": 1_763_800_000,
    }
    key = os.urandom(32)
    job = _release_job(domain, message)
    digest = domain.release_digest(2**200 + 7, 2**64 - 1, nonce, 1_763_800_000)
    # Same digest in both languages.
    assert _ethers({**job, "op": "hash"})["digest"] == "0x" + digest.hex()
    # ethers signs → Python verifies.
    signed = _ethers({**job, "op": "sign", "privateKey": "0x" + key.hex()})
    assert signed["address"] == ledger.address_of(key)
    assert ledger.recover_signer(digest, signed["signature"]) == ledger.address_of(key)
    # Python signs → ethers verifies.
    signature = ledger.sign_release(key, domain, 2**200 + 7, 2**64 - 1, nonce, 1_763_800_000)
    verified = _ethers({**job, "op": "verify", "signature": "0x" + signature.hex()})
    assert verified == {"signer": ledger.address_of(key)}


@pytest.mark.node
@needs_node
def test_receipt_and_approval_digests_match_ethers() -> None:
    domain = Domain(8453, LEDGER)
    company = Account.from_key(b"\x03" * 32).address
    receipt = {"grantId": 9, "company": company, "contentHash": "0x" + "ab" * 32, "issuedAt": 5}
    document = ledger.typed_data(domain, RECEIPT, receipt)
    job = {
        "op": "hash",
        "domain": document["domain"],
        "types": document["types"],
        "primaryType": "Receipt",
        "message": {k: str(v) if isinstance(v, int) else v for k, v in receipt.items()},
    }
    assert _ethers(job)["digest"] == "0x" + domain.receipt_digest(9, company, b"\xab" * 32, 5).hex()
    approval = ledger.typed_data(domain, APPROVAL, {"requestId": 3, "deadline": 2**255})
    job = {
        "op": "hash",
        "domain": approval["domain"],
        "types": approval["types"],
        "primaryType": "Approval",
        "message": {"requestId": "3", "deadline": str(2**255)},
    }
    assert _ethers(job)["digest"] == "0x" + domain.approval_digest(3, 2**255).hex()


# --------------------------------------------------------------------------- stateful model


class LedgerModel(RuleBasedStateMachine):
    """Random ledger operations on py-evm; after every step the Python model of every
    request's status and claimed amount, every account's owed balance and the escrow equals
    the contract's, and the contract's balance is escrow + owed (THREATS row 22)."""

    request_ids = Bundle("request_ids")

    @initialize()
    def start(self) -> None:
        self.chain = EmbeddedChain()
        self.people = self.chain.accounts[1:5]
        self.requests: dict[int, dict[str, Any]] = {}
        self.owed = dict.fromkeys(self.people, 0)
        self.escrow = 0

    def _now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _earned(self, model: dict[str, Any], at: int) -> int:
        if model["status"] is Status.REVOKED:
            return int(model["claimed"])
        if model["status"] is not Status.ACTIVE:
            return 0
        elapsed = min(at - model["starts_at"], model["duration"])
        return int(model["price"] * elapsed // model["duration"])

    def _expect_revert(self, name: str, action: Any) -> None:
        try:
            action()
        except errors.ContractReverted as reverted:
            assert reverted.name == name, reverted
        else:
            raise AssertionError(f"expected {name}")

    @rule(
        target=request_ids,
        owner=st.integers(0, 3),
        company=st.integers(0, 3),
        price=st.integers(1, 10**18),
        duration=st.integers(1, 10_000),
    )
    def request(self, owner: int, company: int, price: int, duration: int) -> int:
        client = self.chain.client(self.people[company])
        if owner == company:
            self._expect_revert(
                "SelfRequest",
                lambda: client.request_access(self.people[owner], 1, duration, price=price),
            )
            return 0
        request_id = client.request_access(self.people[owner], 1, duration, price=price)
        self.requests[request_id] = {
            "owner": self.people[owner],
            "company": self.people[company],
            "price": price,
            "duration": duration,
            "status": Status.PENDING,
            "starts_at": 0,
            "claimed": 0,
        }
        self.escrow += price
        return request_id

    @rule(request_id=request_ids, by_owner=st.booleans())
    def approve(self, request_id: int, by_owner: bool) -> None:
        model = self.requests.get(request_id)
        if model is None:
            return
        sender = model["owner"] if by_owner else model["company"]
        client = self.chain.client(sender)
        if not by_owner:
            self._expect_revert("NotRequestOwner", lambda: client.approve(request_id))
        elif model["status"] is not Status.PENDING:
            self._expect_revert("RequestNotPending", lambda: client.approve(request_id))
        else:
            model["starts_at"] = client.approve(request_id).event("AccessApproved").args["startsAt"]
            model["status"] = Status.ACTIVE

    @rule(request_id=request_ids)
    def approve_by_signature(self, request_id: int) -> None:
        model = self.requests.get(request_id)
        if model is None:
            return
        key = self.chain.dev_keys[self.chain.accounts.index(model["owner"])]
        client = self.chain.client(model["company"])
        deadline = self._now() + 3_600
        signature = ledger.sign_approval(key, client.domain, request_id, deadline)
        if model["status"] is not Status.PENDING:
            self._expect_revert(
                "RequestNotPending", lambda: client.approve_by_sig(request_id, deadline, signature)
            )
            return
        outcome = client.approve_by_sig(request_id, deadline, signature)
        model["starts_at"] = outcome.event("AccessApproved").args["startsAt"]
        model["status"] = Status.ACTIVE

    @rule(request_id=request_ids, deny=st.booleans())
    def refuse(self, request_id: int, deny: bool) -> None:
        """The owner denies or the company cancels; both refund the full price if pending."""
        model = self.requests.get(request_id)
        if model is None:
            return
        client = self.chain.client(model["owner"] if deny else model["company"])
        action = (lambda: client.deny(request_id)) if deny else (lambda: client.cancel(request_id))
        if model["status"] is not Status.PENDING:
            self._expect_revert("RequestNotPending", action)
            return
        action()
        model["status"] = Status.DENIED if deny else Status.CANCELLED
        self.owed[model["company"]] += model["price"]
        self.escrow -= model["price"]

    @rule(request_id=request_ids)
    def revoke(self, request_id: int) -> None:
        model = self.requests.get(request_id)
        if model is None:
            return
        client = self.chain.client(model["owner"])
        if model["status"] is not Status.ACTIVE:
            self._expect_revert("GrantNotActive", lambda: client.revoke(request_id))
            return
        try:
            outcome = client.revoke(request_id)
        except errors.ContractReverted as reverted:
            assert reverted.name == "GrantExpired"
            assert self._now() + 1 >= model["starts_at"] + model["duration"]
            return
        at = int(self.chain.w3.eth.get_block(outcome.block_number)["timestamp"])
        earned = self._earned(model, at)
        args = outcome.event("AccessRevoked").args
        assert (args["ownerEarned"], args["companyRefund"]) == (earned, model["price"] - earned)
        self.owed[model["owner"]] += earned - model["claimed"]
        self.owed[model["company"]] += model["price"] - earned
        self.escrow -= model["price"] - model["claimed"]
        model["claimed"] = earned
        model["status"] = Status.REVOKED

    @rule(request_id=request_ids)
    def claim(self, request_id: int) -> None:
        model = self.requests.get(request_id)
        if model is None:
            return
        client = self.chain.client(model["owner"])
        try:
            amount = client.claim(request_id)
        except errors.ContractReverted as reverted:
            assert reverted.name == "NothingToClaim"
            assert self._earned(model, self._now()) == model["claimed"]
            return
        at = self._now()
        assert amount == self._earned(model, at) - model["claimed"]
        model["claimed"] += amount
        self.owed[model["owner"]] += amount
        self.escrow -= amount

    @rule(person=st.integers(0, 3))
    def withdraw(self, person: int) -> None:
        account = self.people[person]
        client = self.chain.client(account)
        if self.owed[account] == 0:
            self._expect_revert("NothingOwed", client.withdraw)
            return
        assert client.withdraw() == self.owed[account]
        self.owed[account] = 0

    @rule(request_id=consumes(request_ids))
    def forget(self, request_id: int) -> None:
        """Lets the bundle shrink so later rules pick among fewer, older requests."""

    @rule(seconds=st.integers(1, 6_000))
    def wait(self, seconds: int) -> None:
        self.chain.time_travel(seconds)

    @invariant()
    def contract_equals_model(self) -> None:
        if not hasattr(self, "chain"):
            return
        client = self.chain.client()
        assert client.request_count() == len(self.requests)
        for request_id, model in self.requests.items():
            state = client.get_request(request_id)
            assert state.status is model["status"]
            assert state.claimed == model["claimed"]
            assert state.starts_at == model["starts_at"]
        for account, amount in self.owed.items():
            assert client.owed(account) == amount
        assert client.escrow_held() == self.escrow
        assert client.balance() == self.escrow + sum(self.owed.values())


LedgerModel.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_ledger_matches_model = pytest.mark.slow(LedgerModel.TestCase)


def test_node_urls_are_redacted() -> None:
    """THREATS row 9: a hosted node's URL carries its API key in the path, the query or the
    user info; errors and logs show only the scheme, host and port."""
    assert ledger.redact_url("https://mainnet.infura.io/v3/0123abcd") == (
        "https://mainnet.infura.io/…"
    )
    assert ledger.redact_url("https://user:secret@node.example:8545/?key=k") == (
        "https://node.example:8545/…"
    )
    assert ledger.redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert ledger.redact_url("not a url") == "<node URL>"
    dead = chains.http_web3("http://127.0.0.1:9/v3/SECRETKEY", timeout=0.5)
    with pytest.raises(errors.LedgerUnavailable) as caught:
        ledger.call_node(dead, lambda: dead.eth.block_number)
    assert "SECRETKEY" not in str(caught.value) and "127.0.0.1:9" in str(caught.value)


def test_an_unfunded_sender_on_the_embedded_chain_gets_no_eth_for_gas(
    embedded_chain: EmbeddedChain,
) -> None:
    """eth-tester words it its own way ("cannot afford txn gas"); the owner reads the same
    one line as on a node, naming the account to fund."""
    poor = Account.create()
    with pytest.raises(errors.InsufficientFunds) as refused:
        embedded_chain.client(sender=poor).describe_company("Acme", "")
    assert str(refused.value).startswith(f"no ETH for gas: {poor.address} holds 0")
    assert refused.value.hint == f"send ETH to {poor.address}, then try again"
