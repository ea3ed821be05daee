from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from vault import crypto, errors, store
from vault.keyfile import KEYFILE_NAME, Keyfile

PASS = "correct horse battery staple"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "vault"
    store.Vault.create(home, PASS, kdf=crypto.KDF_MINIMUM).close()
    return home


def _edit(home: Path, **kdf: object) -> None:
    path = home / KEYFILE_NAME
    data = json.loads(path.read_text())
    data["kdf"].update(kdf)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "edit",
    [
        {"memory_kib": 8},
        {"iterations": 1},
        {"lanes": 0},
        {"memory_kib": 1 << 40},
        {"iterations": 1 << 30},
        {"memory_kib": "65536"},
    ],
)
def test_kdf_parameters_out_of_range_are_refused_quickly(
    home: Path, edit: dict[str, object]
) -> None:
    """THREATS row 4: downgraded or absurd KDF parameters → refused before the KDF runs."""
    _edit(home, **edit)
    started = time.monotonic()
    with pytest.raises(errors.KdfParametersRejected):
        store.Vault.open(home, PASS)
    assert time.monotonic() - started < 5  # no multi-GiB KDF was attempted


def test_kdf_parameters_edited_within_range_fail_authentication(home: Path) -> None:
    """THREATS row 4: the parameters are authenticated (AAD of every wrapped key)."""
    _edit(home, iterations=crypto.KDF_MINIMUM.iterations + 1)
    with pytest.raises(errors.WrongPassphrase):
        store.Vault.open(home, PASS)


def test_salt_edit_fails_authentication(home: Path) -> None:
    """THREATS row 3 (keyfile)."""
    _edit(home, salt="AAAAAAAAAAAAAAAAAAAAAA==")
    with pytest.raises(errors.WrongPassphrase):
        store.Vault.open(home, PASS)


def test_every_truncation_and_bit_flip_of_the_keyfile_is_refused(home: Path) -> None:
    """THREATS rows 2 and 3: a damaged keyfile never unlocks and never crashes oddly."""
    raw = (home / KEYFILE_NAME).read_bytes()
    for cut in range(0, len(raw) - 2, 7):
        with pytest.raises((errors.CorruptFile, errors.WrongPassphrase,
                            errors.KdfParametersRejected)):
            Keyfile.from_bytes(raw[:cut]).unlock(PASS)
    wrapped_at = raw.index(b'"1": "') + 8
    for i in range(wrapped_at, wrapped_at + 40):
        damaged = bytearray(raw)
        damaged[i] ^= 0x01
        with pytest.raises((errors.CorruptFile, errors.WrongPassphrase,
                            errors.KdfParametersRejected)):
            Keyfile.from_bytes(bytes(damaged)).unlock(PASS)


def test_keyfile_round_trips(home: Path) -> None:
    keyfile = Keyfile.read(home)
    assert Keyfile.from_bytes(keyfile.to_bytes()) == keyfile
    ring, _ = keyfile.unlock(PASS)
    assert ring.versions() == [1]
    assert "redacted" in repr(ring)
