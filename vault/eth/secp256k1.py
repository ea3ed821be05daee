"""secp256k1 over 32-byte digests, as Ethereum uses it, with coincurve.

Strict recovery — 65 bytes ``r‖s‖v`` with ``v`` in {27, 28}, ``0 < r < n`` and
``0 < s ≤ n/2`` (the high-s twin is refused, THREATS row 11) — and signing with a prepared
key. Addresses here are the raw 20 bytes; :mod:`vault.eth.eip712` builds the checksummed,
EIP-712 API on top. This module imports nothing heavier than coincurve and keccak, so the
daemon's signing process (:mod:`vault.daemon.signer`) starts in milliseconds.
"""

from __future__ import annotations

from typing import Final

import coincurve

from vault import errors
from vault.canonical import keccak256

#: secp256k1 group order; signatures with s above half of it are the malleated twin.
SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = SECP256K1_N // 2

INVALID: Final = "the signature is malformed, malleated or does not verify"


def _address_of(public: coincurve.PublicKey) -> bytes:
    return keccak256(public.format(compressed=False)[1:])[12:]


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key signed ``digest``; :class:`vault.errors.SignatureInvalid`
    otherwise, with one message whatever the cause."""
    if len(digest) != 32:
        raise ValueError("a digest is 32 bytes")
    if len(signature) != 65:
        raise errors.SignatureInvalid(INVALID)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= _HALF_N:
        raise errors.SignatureInvalid(INVALID)
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except Exception:  # coincurve raises a bare Exception when no key recovers
        raise errors.SignatureInvalid(INVALID) from None
    return _address_of(public)


class DigestSigner:
    """Signs 32-byte digests with one key, keeping libsecp256k1's prepared key: building it
    derives the public key, which costs more than the signature itself. The daemon's signing
    process holds one for the owner and signs a receipt per release."""

    __slots__ = ("_key", "address")

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("a private key is 32 bytes")
        self._key = coincurve.PrivateKey(private_key)
        self.address: bytes = _address_of(self._key.public_key)

    def __repr__(self) -> str:
        return f"DigestSigner(address=0x{self.address.hex()})"

    def sign(self, digest: bytes) -> bytes:
        """65 bytes ``r‖s‖v`` with low s and ``v`` in {27, 28}."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        # libsecp256k1 always produces low-s signatures, so no normalisation is needed here.
        raw = self._key.sign_recoverable(digest, hasher=None)
        return raw[:64] + bytes([raw[64] + 27])
