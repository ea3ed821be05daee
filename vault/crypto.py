"""The vault's cryptography, and the only module that imports ``cryptography.hazmat``.

Key hierarchy (docs/encryption.md has the reviewer's version)::

    passphrase ──Argon2id(salt, KdfParams)──▶ KEK
    KEK ──AES-256-GCM wrap, AAD = keyfile header + key version──▶ data key (random, 256 bit)
    data key ──AES-256-GCM seal, AAD = token header + table + row + column──▶ sealed values
    data key ──HKDF-SHA256("vault dedupe v1")──▶ dedupe MAC key (HMAC-SHA256)
    integrity secret ──HKDF-SHA256(purpose)──▶ manifest / events / access-log MAC keys

A sealed value is a versioned token::

    0x01 ‖ key_version (uint32, big endian) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)
    0x02 ‖ … the same …  (its associated data also ends with the row's u64 version)

Format 2 is for rows that are rewritten in place: binding the row's version makes an older
ciphertext of the same row fail to open as the current one (the store keeps the current
versions under a keyed digest). A caller says which format it expects by passing
``row_version`` or not; a token of the other format fails to open.

Every failure to open anything (wrong key, edited byte, value moved, unknown version)
raises the one :class:`vault.errors.InvalidToken`.
"""

from __future__ import annotations

import functools
import hmac
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault import errors

TOKEN_VERSION = 1
#: Tokens whose associated data binds a row version.
VERSIONED_TOKEN = 2
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 16
_HEADER = struct.Struct(">BI")
_ROW_VERSION = struct.Struct(">Q")
#: Bytes a token adds to its plaintext.
TOKEN_OVERHEAD = _HEADER.size + NONCE_BYTES + TAG_BYTES
_DEDUPE_INFO = b"vault dedupe v1"


class SecretKey:
    """32 secret bytes that never show themselves in a repr, str or log line."""

    __slots__ = ("_material",)

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise ValueError(f"a key is {KEY_BYTES} bytes")
        self._material = bytes(material)

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(os.urandom(KEY_BYTES))

    def reveal(self) -> bytes:
        """The raw bytes, for wrapping and storage only."""
        return self._material

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._material, other._material)

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self) -> Any:
        raise TypeError("secret keys are not picklable")


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters, stored in the keyfile / backup header and authenticated."""

    memory_kib: int
    iterations: int
    lanes: int

    def check(self) -> KdfParams:
        """Refuse parameters outside [MINIMUM, MAXIMUM] before any KDF work is done."""
        for name in ("memory_kib", "iterations", "lanes"):
            value = getattr(self, name)
            low, high = getattr(KDF_MINIMUM, name), getattr(KDF_MAXIMUM, name)
            if type(value) is not int or not low <= value <= high:
                raise errors.KdfParametersRejected(
                    f"KDF parameter {name}={value!r} is outside the accepted range {low}..{high}"
                )
        if self.memory_kib < 8 * self.lanes:
            raise errors.KdfParametersRejected("KDF memory must be at least 8 KiB per lane")
        return self

    def to_json(self) -> dict[str, int]:
        return {"memory_kib": self.memory_kib, "iterations": self.iterations, "lanes": self.lanes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KdfParams:
        try:
            return cls(int_field(data, "memory_kib"), int_field(data, "iterations"),
                       int_field(data, "lanes")).check()
        except (KeyError, TypeError) as exc:
            raise errors.KdfParametersRejected("KDF parameters are missing or malformed") from exc


def int_field(data: Mapping[str, Any], name: str) -> int:
    value = data[name]
    if type(value) is not int:
        raise TypeError(name)
    return value


#: DESIGN.md's default: 64 MiB, 3 passes, 4 lanes.
KDF_DEFAULT = KdfParams(memory_kib=64 * 1024, iterations=3, lanes=4)
#: OWASP's lowest recommended Argon2id setting (19 MiB, t=2, p=1); tests use exactly this.
KDF_MINIMUM = KdfParams(memory_kib=19 * 1024, iterations=2, lanes=1)
#: Above this an edited keyfile could make unlock take minutes or exhaust memory.
KDF_MAXIMUM = KdfParams(memory_kib=1024 * 1024, iterations=16, lanes=16)


def derive_kek(passphrase: str, *, salt: bytes, params: KdfParams) -> SecretKey:
    """Passphrase → key-encryption key. Checks the parameters first, so a hostile keyfile
    cannot make us burn memory or time."""
    params.check()
    if len(salt) != SALT_BYTES:
        raise errors.KdfParametersRejected("the KDF salt has the wrong length")
    kdf = Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return SecretKey(kdf.derive(passphrase.encode("utf-8")))


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def aead_seal(key: SecretKey, plaintext: bytes, *, aad: bytes) -> bytes:
    """nonce ‖ ciphertext ‖ tag under AES-256-GCM with a fresh random nonce."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key.reveal()).encrypt(nonce, plaintext, aad)


def aead_open(key: SecretKey, sealed: bytes, *, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise errors.InvalidToken()
    try:
        return AESGCM(key.reveal()).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise errors.InvalidToken() from None


def wrap_key(kek: SecretKey, key: SecretKey, *, aad: bytes) -> bytes:
    return aead_seal(kek, key.reveal(), aad=aad)


def unwrap_key(kek: SecretKey, wrapped: bytes, *, aad: bytes) -> SecretKey:
    material = aead_open(kek, wrapped, aad=aad)
    if len(material) != KEY_BYTES:
        raise errors.InvalidToken()
    return SecretKey(material)


def _field(value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("associated data field too long")
    return struct.pack(">H", len(raw)) + raw


_name_field = functools.lru_cache(maxsize=256)(_field)  # tables and columns repeat


def associated_data(
    header: bytes, *, table: str, row: str | int, column: str, row_version: int | None = None
) -> bytes:
    """Token header ‖ len-prefixed table ‖ row ‖ column (‖ u64 row version): unambiguous,
    so no two locations (or versions of one row) share associated data."""
    aad = header + _name_field(table) + _field(str(row)) + _name_field(column)
    if row_version is None:
        return aad
    return aad + _ROW_VERSION.pack(row_version)


def derive_subkey(secret: SecretKey, *, purpose: bytes) -> SecretKey:
    """An independent key for one purpose (HKDF-SHA256 with ``purpose`` as its info)."""
    return SecretKey(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                          info=purpose).derive(secret.reveal()))


class DataKey:
    """One version of the data key: seals and opens values, and MACs dedupe keys."""

    __slots__ = ("_aead", "_headers", "_key", "_mac_key", "version")

    def __init__(self, key: SecretKey, version: int) -> None:
        if not 0 < version <= 0xFFFFFFFF:
            raise ValueError("key version must fit in 32 bits and be positive")
        self.version = version
        self._key = key
        self._aead = AESGCM(key.reveal())
        self._headers = {None: _HEADER.pack(TOKEN_VERSION, version),
                         VERSIONED_TOKEN: _HEADER.pack(VERSIONED_TOKEN, version)}
        self._mac_key = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_DEDUPE_INFO
        ).derive(key.reveal())

    @property
    def key(self) -> SecretKey:
        return self._key

    def _header(self, row_version: int | None) -> bytes:
        return self._headers[None if row_version is None else VERSIONED_TOKEN]

    def seal(
        self, plaintext: bytes, *, table: str, row: str | int, column: str,
        row_version: int | None = None,
    ) -> bytes:
        return self._seal_with_nonce(
            os.urandom(NONCE_BYTES), plaintext, table=table, row=row, column=column,
            row_version=row_version,
        )

    def _seal_with_nonce(
        self, nonce: bytes, plaintext: bytes, *, table: str, row: str | int, column: str,
        row_version: int | None = None,
    ) -> bytes:
        """Deterministic sealing for the known-answer vectors only; a fixed nonce must
        never be used twice under one key."""
        header = self._header(row_version)
        aad = associated_data(header, table=table, row=row, column=column,
                              row_version=row_version)
        return header + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(
        self, token: bytes, *, table: str, row: str | int, column: str,
        row_version: int | None = None,
    ) -> bytes:
        header = self._header(row_version)
        if len(token) < TOKEN_OVERHEAD or token[: _HEADER.size] != header:
            raise errors.InvalidToken()
        nonce = token[_HEADER.size : _HEADER.size + NONCE_BYTES]
        aad = associated_data(header, table=table, row=row, column=column,
                              row_version=row_version)
        try:
            return self._aead.decrypt(nonce, token[_HEADER.size + NONCE_BYTES :], aad)
        except InvalidTag:
            raise errors.InvalidToken() from None

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 under a key derived from this data key: the dedupe key of a record."""
        return hmac.digest(self._mac_key, data, "sha256")

    def __repr__(self) -> str:
        return f"DataKey(version={self.version}, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("data keys are not picklable")


def token_key_version(token: bytes) -> int:
    """The key version named in a token's header (InvalidToken if it has no valid header)."""
    if len(token) < TOKEN_OVERHEAD:
        raise errors.InvalidToken()
    version, key_version = _HEADER.unpack_from(token)
    if version not in (TOKEN_VERSION, VERSIONED_TOKEN):
        raise errors.InvalidToken()
    return int(key_version)


class Keyring:
    """Every data key version the keyfile holds; ``current`` seals, any of them opens."""

    __slots__ = ("_keys", "current")

    def __init__(self, keys: Mapping[int, DataKey], current: int) -> None:
        if current not in keys:
            raise ValueError("the current key version must be in the keyring")
        self._keys = dict(keys)
        self.current = self._keys[current]

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def get(self, version: int) -> DataKey:
        try:
            return self._keys[version]
        except KeyError:
            raise errors.InvalidToken() from None

    def open(
        self, token: bytes, *, table: str, row: str | int, column: str,
        row_version: int | None = None,
    ) -> bytes:
        key = self.get(token_key_version(token))
        return key.open(token, table=table, row=row, column=column, row_version=row_version)

    def seal(
        self, plaintext: bytes, *, table: str, row: str | int, column: str,
        row_version: int | None = None,
    ) -> bytes:
        return self.current.seal(plaintext, table=table, row=row, column=column,
                                 row_version=row_version)

    def __repr__(self) -> str:
        return f"Keyring(versions={self.versions()}, current={self.current.version}, <redacted>)"

    __str__ = __repr__
