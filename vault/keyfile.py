"""The keyfile: KDF parameters, salt and every data-key version wrapped by the KEK.

``keyfile.json`` (0600) is JSON so a reviewer can read it::

    {"format": "vault-keyfile", "format_version": 1,
     "kdf": {"algorithm": "argon2id", "memory_kib": 65536, "iterations": 3, "lanes": 4,
             "salt": "<base64>"},
     "keys": {"1": "<base64 nonce‖wrapped key‖tag>"}, "current": 1}

Each wrapped key's associated data is the canonical JSON of the format, the KDF block and
the key version, so an edited parameter or salt makes every unwrap fail. Parameters outside
the accepted range are refused before the KDF runs. The file is only ever replaced
atomically, so a crash leaves the old or the new one and one passphrase always works.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vault import crypto, errors
from vault._files import write_atomically

KEYFILE_NAME = "keyfile.json"
FORMAT = "vault-keyfile"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Keyfile:
    params: crypto.KdfParams
    salt: bytes
    wrapped: dict[int, bytes] = field(default_factory=dict)
    current: int = 1

    def _kdf_block(self) -> dict[str, Any]:
        return {"algorithm": "argon2id", **self.params.to_json(), "salt": _b64(self.salt)}

    def _aad(self, version: int) -> bytes:
        return json.dumps(
            {"format": FORMAT, "format_version": FORMAT_VERSION, "kdf": self._kdf_block(),
             "key_version": version},
            sort_keys=True, separators=(",", ":"),
        ).encode()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"format": FORMAT, "format_version": FORMAT_VERSION, "kdf": self._kdf_block(),
             "keys": {str(v): _b64(w) for v, w in sorted(self.wrapped.items())},
             "current": self.current},
            indent=2, sort_keys=True,
        ).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> Keyfile:
        """Parse and check the shape; KdfParametersRejected for out-of-range parameters,
        CorruptFile for anything else that is wrong."""
        try:
            data = json.loads(raw)
            if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
                raise ValueError("not a vault keyfile")
            kdf = data["kdf"]
            if kdf["algorithm"] != "argon2id":
                raise ValueError("unknown KDF")
            salt = _unb64(kdf["salt"])
            wrapped = {int(v): _unb64(w) for v, w in data["keys"].items()}
            current = data["current"]
            if type(current) is not int or current not in wrapped:
                raise ValueError("current key missing")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise errors.CorruptFile("the keyfile is damaged or not a vault keyfile") from exc
        params = crypto.KdfParams.from_json(kdf)
        return cls(params=params, salt=salt, wrapped=wrapped, current=current)

    @classmethod
    def read(cls, home: Path) -> Keyfile:
        path = home / KEYFILE_NAME
        if path.is_symlink():
            raise errors.UnsafePath(f"{path} is a symlink")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise errors.VaultNotFound(f"no vault in {home}") from None
        return cls.from_bytes(raw)

    def write(self, home: Path, *, checkpoint: str | None = None) -> None:
        write_atomically(home / KEYFILE_NAME, self.to_bytes(), checkpoint=checkpoint)

    # -- keys ------------------------------------------------------------------------

    def kek(self, passphrase: str) -> crypto.SecretKey:
        return crypto.derive_kek(passphrase, salt=self.salt, params=self.params)

    def unlock(self, passphrase: str) -> tuple[crypto.Keyring, crypto.SecretKey]:
        """One KDF, then unwrap every key version: (keyring, KEK). WrongPassphrase if any
        unwrap fails (a wrong passphrase and an edited keyfile look the same, on purpose)."""
        kek = self.kek(passphrase)
        try:
            keys = {
                v: crypto.DataKey(crypto.unwrap_key(kek, w, aad=self._aad(v)), v)
                for v, w in self.wrapped.items()
            }
        except errors.InvalidToken:
            raise errors.WrongPassphrase(
                "wrong passphrase (or the keyfile was altered)"
            ) from None
        return crypto.Keyring(keys, self.current), kek

    @classmethod
    def create(
        cls, passphrase: str, params: crypto.KdfParams
    ) -> tuple[Keyfile, crypto.Keyring, crypto.SecretKey]:
        """A keyfile holding one fresh data key (version 1): (keyfile, keyring, KEK)."""
        keyfile = cls(params=params.check(), salt=crypto.new_salt())
        data_key = crypto.SecretKey.generate()
        kek = keyfile.kek(passphrase)
        keyfile = keyfile._with_key(kek, 1, data_key, current=1)
        return keyfile, crypto.Keyring({1: crypto.DataKey(data_key, 1)}, 1), kek

    def _with_key(
        self, kek: crypto.SecretKey, version: int, key: crypto.SecretKey, *, current: int
    ) -> Keyfile:
        wrapped = dict(self.wrapped)
        wrapped[version] = crypto.wrap_key(kek, key, aad=self._aad(version))
        return replace(self, wrapped=wrapped, current=current)

    def rewrapped(
        self, keyring: crypto.Keyring, new_passphrase: str, *, params: crypto.KdfParams | None
    ) -> tuple[Keyfile, crypto.SecretKey]:
        """The same data keys under a KEK from ``new_passphrase`` and a fresh salt."""
        fresh = Keyfile(params=(params or self.params).check(), salt=crypto.new_salt(),
                        current=self.current)
        kek = fresh.kek(new_passphrase)
        for version in keyring.versions():
            fresh = fresh._with_key(kek, version, keyring.get(version).key, current=self.current)
        return fresh, kek

    def with_new_key(
        self, kek: crypto.SecretKey, keyring: crypto.Keyring
    ) -> tuple[Keyfile, crypto.Keyring]:
        """Add a fresh data key as the next version and make it current (rotation step 1)."""
        version = max(self.wrapped) + 1
        key = crypto.SecretKey.generate()
        updated = self._with_key(kek, version, key, current=version)
        keys = {v: keyring.get(v) for v in keyring.versions()}
        keys[version] = crypto.DataKey(key, version)
        return updated, crypto.Keyring(keys, version)

    def without_old_keys(self) -> Keyfile:
        """Keep only the current key (rotation's last step, once no row uses the others)."""
        return replace(self, wrapped={self.current: self.wrapped[self.current]})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)
