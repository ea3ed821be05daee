"""EIP-712 for the consent ledger: the domain, the ``Approval``, ``Release``, ``Match`` and
``Receipt`` types, their digests, and signatures over them.

The digest functions hash structs by hand (32-byte words + keccak) because the daemon checks
a signature on every release; ``tests/test_ledger.py`` cross-checks them against
eth-account, ethers and the contract's own views. Signatures go through
:mod:`vault.eth.secp256k1` (coincurve directly): only canonical ones are accepted — 65
bytes ``r‖s‖v``, ``v`` in {27, 28} (0/1 are refused so one signature has exactly one
encoding), ``0 < r < n`` and ``0 < s <= n/2`` (eth-account alone accepts the malleated
high-s twin). Every failure is the same :class:`~vault.errors.SignatureInvalid` (THREATS
rows 11, 12). No web3 here: the daemon's hot path and the signing process import this alone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from eth_utils.address import to_checksum_address

from vault import errors
from vault.canonical import keccak256
from vault.eth.secp256k1 import INVALID, DigestSigner, recover_address

# --------------------------------------------------------------------------- EIP-712 types

DOMAIN_NAME: Final = "ConsentLedger"
DOMAIN_VERSION: Final = "1"


_WORD_BITS: Final = {"uint256": 256, "uint64": 64}


@dataclass(frozen=True)
class StructType:
    """One EIP-712 struct type: its name and ordered ``(field name, solidity type)`` pairs.

    Everything else (the type string, the type hash, eth-account's and ethers' ``types``
    mapping) is derived from this single definition.
    """

    name: str
    fields: tuple[tuple[str, str], ...]

    @property
    def encode_type(self) -> str:
        """The EIP-712 ``encodeType`` string: ``Approval(uint256 requestId,uint256 deadline)``."""
        return f"{self.name}({','.join(f'{kind} {field}' for field, kind in self.fields)})"

    @functools.cached_property
    def type_hash(self) -> bytes:
        return keccak256(self.encode_type.encode())

    def types(self) -> dict[str, list[dict[str, str]]]:
        """The ``types`` mapping of eth-account / ethers for this struct (without the domain)."""
        return {self.name: [{"name": field, "type": kind} for field, kind in self.fields]}


EIP712_DOMAIN: Final = StructType(
    "EIP712Domain",
    (
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
    ),
)
#: The owner's consent to a pending request; submitted on chain through ``approveBySig``.
APPROVAL: Final = StructType("Approval", (("requestId", "uint256"), ("deadline", "uint256")))
#: A company's request for a release of derived preferences; verified off chain by the daemon.
RELEASE: Final = StructType(
    "Release",
    (("grantId", "uint256"), ("scopes", "uint64"), ("nonce", "bytes32"), ("issuedAt", "uint64")),
)
#: A company's request to rank its own candidates for the person (DESIGN.md "Match
#: protocol"); verified off chain by the daemon.
MATCH: Final = StructType(
    "Match",
    (
        ("grantId", "uint256"),
        ("scopes", "uint64"),
        ("candidatesHash", "bytes32"),
        ("k", "uint8"),
        ("nonce", "bytes32"),
        ("issuedAt", "uint64"),
    ),
)
#: The owner's receipt for what was released; verified off chain by the company SDK.
RECEIPT: Final = StructType(
    "Receipt",
    (
        ("grantId", "uint256"),
        ("company", "address"),
        ("contentHash", "bytes32"),
        ("issuedAt", "uint64"),
    ),
)

#: A household coordinator's forward of a company's request to another member's vault
#: (issue 18, docs/match.md "Household"): signed by the coordinating member's owner key over
#: the company's request digest, the member it is sent to and a fresh time.
CONTRIBUTION: Final = StructType(
    "Contribution",
    (
        ("grantId", "uint256"),
        ("requestDigest", "bytes32"),
        ("member", "address"),
        ("issuedAt", "uint64"),
    ),
)

APPROVAL_TYPEHASH: Final = APPROVAL.type_hash
RELEASE_TYPEHASH: Final = RELEASE.type_hash
MATCH_TYPEHASH: Final = MATCH.type_hash
RECEIPT_TYPEHASH: Final = RECEIPT.type_hash
CONTRIBUTION_TYPEHASH: Final = CONTRIBUTION.type_hash
_DOMAIN_TYPEHASH: Final = EIP712_DOMAIN.type_hash
_NAME_HASH: Final = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH: Final = keccak256(DOMAIN_VERSION.encode())


def _uint(value: int, bits: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} does not fit uint{bits}")
    return value.to_bytes(32, "big")


def address_bytes(address: str | bytes) -> bytes:
    """The 20 bytes of an address given as ``0x`` hex (any case) or raw bytes."""
    if isinstance(address, bytes):
        raw = address
    else:
        if not (isinstance(address, str) and address[:2] in ("0x", "0X")):
            raise ValueError("an address is 0x followed by 40 hex digits")
        raw = bytes.fromhex(address[2:])
    if len(raw) != 20:
        raise ValueError("an address is 20 bytes")
    return raw


def _from_hex(text: str) -> bytes:
    """Bytes from hex with or without a ``0x`` prefix (ValueError if not hex)."""
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def as_bytes32(value: bytes | str) -> bytes:
    raw = _from_hex(value) if isinstance(value, str) else value
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise ValueError("expected 32 bytes")
    return raw


@dataclass(frozen=True)
class Domain:
    """The ledger's EIP-712 domain: name "ConsentLedger", version "1", chain id, ledger address."""

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        # Normalise once so equality, hashing and the separator never depend on hex case.
        object.__setattr__(
            self, "verifying_contract", to_checksum_address(address_bytes(self.verifying_contract))
        )
        _uint(self.chain_id, 256)

    @functools.cached_property
    def separator(self) -> bytes:
        """``keccak(typeHash ‖ keccak(name) ‖ keccak(version) ‖ chainId ‖ contract)``."""
        return keccak256(
            _DOMAIN_TYPEHASH
            + _NAME_HASH
            + _VERSION_HASH
            + _uint(self.chain_id, 256)
            + b"\x00" * 12
            + address_bytes(self.verifying_contract)
        )

    def as_dict(self) -> dict[str, Any]:
        """The domain as eth-account and ethers take it."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def _digest(self, struct_hash: bytes) -> bytes:
        return keccak256(b"\x19\x01" + self.separator + struct_hash)

    def approval_digest(self, request_id: int, deadline: int) -> bytes:
        """The EIP-712 digest of ``Approval(requestId, deadline)``."""
        return self._digest(
            keccak256(APPROVAL_TYPEHASH + _uint(request_id, 256) + _uint(deadline, 256))
        )

    def release_digest(
        self, grant_id: int, scopes: int, nonce: bytes | str, issued_at: int
    ) -> bytes:
        """The EIP-712 digest of ``Release(grantId, scopes, nonce, issuedAt)``."""
        return self._digest(
            keccak256(
                RELEASE_TYPEHASH
                + _uint(grant_id, 256)
                + _uint(scopes, 64)
                + as_bytes32(nonce)
                + _uint(issued_at, 64)
            )
        )

    def match_digest(
        self,
        grant_id: int,
        scopes: int,
        candidates_hash: bytes | str,
        k: int,
        nonce: bytes | str,
        issued_at: int,
    ) -> bytes:
        """The EIP-712 digest of ``Match(grantId, scopes, candidatesHash, k, nonce,
        issuedAt)``."""
        return self._digest(
            keccak256(
                MATCH_TYPEHASH
                + _uint(grant_id, 256)
                + _uint(scopes, 64)
                + as_bytes32(candidates_hash)
                + _uint(k, 8)
                + as_bytes32(nonce)
                + _uint(issued_at, 64)
            )
        )

    def receipt_digest(
        self, grant_id: int, company: str | bytes, content_hash: bytes | str, issued_at: int
    ) -> bytes:
        """The EIP-712 digest of ``Receipt(grantId, company, contentHash, issuedAt)``."""
        return self._digest(
            keccak256(
                RECEIPT_TYPEHASH
                + _uint(grant_id, 256)
                + b"\x00" * 12
                + address_bytes(company)
                + as_bytes32(content_hash)
                + _uint(issued_at, 64)
            )
        )

    def contribution_digest(
        self, grant_id: int, request_digest: bytes, member: str | bytes, issued_at: int
    ) -> bytes:
        """The EIP-712 digest of ``Contribution(grantId, requestDigest, member, issuedAt)``."""
        return self._digest(
            keccak256(
                CONTRIBUTION_TYPEHASH
                + _uint(grant_id, 256)
                + as_bytes32(request_digest)
                + b"\x00" * 12
                + address_bytes(member)
                + _uint(issued_at, 64)
            )
        )


def typed_data(domain: Domain, struct: StructType, message: Mapping[str, Any]) -> dict[str, Any]:
    """The full EIP-712 JSON document (``eth_signTypedData_v4`` / ethers shape) of a message."""
    return {
        "types": {**EIP712_DOMAIN.types(), **struct.types()},
        "primaryType": struct.name,
        "domain": domain.as_dict(),
        "message": dict(message),
    }


# --------------------------------------------------------------------------- signatures

PrivateKey = bytes | str


def private_key_bytes(private_key: PrivateKey) -> bytes:
    raw = _from_hex(private_key) if isinstance(private_key, str) else private_key
    if len(raw) != 32:
        raise ValueError("a private key is 32 bytes")
    return raw


def sign_digest(private_key: PrivateKey, digest: bytes) -> bytes:
    """Sign a 32-byte digest: 65 bytes ``r‖s‖v`` with low s and ``v`` in {27, 28}."""
    return DigestSigner(private_key_bytes(private_key)).sign(digest)


@functools.lru_cache(maxsize=65_536)
def checksum(address: bytes) -> str:
    """The EIP-55 form of a 20-byte address."""
    # Addresses are public and few (the companies a vault deals with); caching the EIP-55
    # form takes a keccak and a string walk off every signature recovery.
    return str(to_checksum_address(address))


def recover_signer(digest: bytes, signature: bytes | str) -> str:
    """The checksum address that signed ``digest``; :class:`SignatureInvalid` otherwise.

    Refuses wrong lengths, ``v`` other than 27/28, ``r`` or ``s`` out of range and high-s
    (THREATS row 11), with one message whatever the cause.
    """
    try:
        raw = _from_hex(signature) if isinstance(signature, str) else bytes(signature)
    except ValueError:
        raise errors.SignatureInvalid(INVALID) from None
    return checksum(recover_address(digest, raw))


def verify_signer(digest: bytes, signature: bytes | str, expected: str) -> str:
    """Recover the signer and require it to be ``expected``; returns the checksum address."""
    signer = recover_signer(digest, signature)
    if signer != to_checksum_address(address_bytes(expected)):
        raise errors.SignatureInvalid(INVALID)
    return signer


def address_of(private_key: PrivateKey) -> str:
    """The checksum address of a private key."""
    return checksum(DigestSigner(private_key_bytes(private_key)).address)


def sign_approval(private_key: PrivateKey, domain: Domain, request_id: int, deadline: int) -> bytes:
    """The owner's ``Approval`` signature, ready for :meth:`LedgerClient.approve_by_sig`."""
    return sign_digest(private_key, domain.approval_digest(request_id, deadline))


def sign_release(
    private_key: PrivateKey,
    domain: Domain,
    grant_id: int,
    scopes: int,
    nonce: bytes | str,
    issued_at: int,
) -> bytes:
    """A company's ``Release`` signature."""
    return sign_digest(private_key, domain.release_digest(grant_id, scopes, nonce, issued_at))


def sign_match(
    private_key: PrivateKey,
    domain: Domain,
    grant_id: int,
    scopes: int,
    candidates_hash: bytes | str,
    k: int,
    nonce: bytes | str,
    issued_at: int,
) -> bytes:
    """A company's ``Match`` signature."""
    return sign_digest(
        private_key,
        domain.match_digest(grant_id, scopes, candidates_hash, k, nonce, issued_at),
    )


def sign_receipt(
    private_key: PrivateKey,
    domain: Domain,
    grant_id: int,
    company: str | bytes,
    content_hash: bytes | str,
    issued_at: int,
) -> bytes:
    """The owner's ``Receipt`` signature."""
    return sign_digest(
        private_key, domain.receipt_digest(grant_id, company, content_hash, issued_at)
    )
