"""The hashes that cross program boundaries, defined once: keccak-256, and keccak-256 of
the RFC 8785 canonical JSON of a value (a receipt's content hash, the terms hash, the
catalog hash). The daemon, the SDK and the CLI must agree on these to the byte."""

from __future__ import annotations

from typing import Any

import rfc8785
from sha3 import keccak_256  # safe-pysha3: a C keccak, ~6x cheaper a call than pycryptodome's


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 (not NIST SHA3-256)."""
    digest: bytes = keccak_256(data).digest()
    return digest


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of ``value``."""
    return rfc8785.dumps(value)


def json_hash(value: Any) -> bytes:
    """keccak-256 of the RFC 8785 canonical JSON of ``value``."""
    return keccak256(canonical_json(value))
