from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from vault import crypto, errors

VECTORS = Path(__file__).parent / "vectors"


def _vectors(name: str) -> list[dict[str, str]]:
    data: list[dict[str, str]] = json.loads((VECTORS / name).read_text())["vectors"]
    return data


@pytest.mark.parametrize("vector", _vectors("seal.json"), ids=lambda v: f"{v['table']}-{v['row']}")
def test_seal_matches_known_answer_vectors(vector: dict[str, str]) -> None:
    key = crypto.DataKey(crypto.SecretKey(bytes.fromhex(vector["key"])), int(vector["key_version"]))
    where: dict[str, Any] = {"table": vector["table"], "row": vector["row"],
                             "column": vector["column"]}
    plaintext = bytes.fromhex(vector["plaintext"])
    token = key._seal_with_nonce(bytes.fromhex(vector["nonce"]), plaintext, **where)
    assert token.hex() == vector["token"]
    assert crypto.associated_data(token[:5], **where).hex() == vector["associated_data"]
    assert key.open(token, **where) == plaintext


def test_dedupe_mac_matches_vector_and_an_independent_hkdf() -> None:
    (vector,) = _vectors("dedupe.json")
    raw = bytes.fromhex(vector["key"])
    message = bytes.fromhex(vector["message"])
    key = crypto.DataKey(crypto.SecretKey(raw), 1)
    assert key.mac(message).hex() == vector["mac"]
    # HKDF-SHA256 by hand (RFC 5869, empty salt, one block).
    prk = hmac.digest(b"\0" * 32, raw, "sha256")
    mac_key = hmac.digest(prk, b"vault dedupe v1\x01", "sha256")
    assert hmac.digest(mac_key, message, hashlib.sha256).hex() == vector["mac"]


def test_kek_matches_vector() -> None:
    (vector,) = _vectors("kdf.json")
    params = crypto.KdfParams(int(vector["memory_kib"]), int(vector["iterations"]),
                              int(vector["lanes"]))
    kek = crypto.derive_kek(vector["passphrase"], salt=bytes.fromhex(vector["salt"]),
                            params=params)
    assert kek.reveal().hex() == vector["kek"]


def _key(version: int = 1) -> crypto.DataKey:
    return crypto.DataKey(crypto.SecretKey.generate(), version)


def test_seal_round_trips_with_fresh_nonces() -> None:
    """THREATS row 8: random 96-bit nonces, so sealing twice never repeats one."""
    key = _key()
    tokens = {key.seal(b"same", table="t", row=1, column="c") for _ in range(200)}
    assert len(tokens) == 200
    assert len({t[5:17] for t in tokens}) == 200
    for token in tokens:
        assert key.open(token, table="t", row=1, column="c") == b"same"


@pytest.mark.parametrize(
    "where",
    [
        {"table": "facts", "row": 1, "column": "payload"},
        {"table": "events", "row": 2, "column": "payload"},
        {"table": "events", "row": 1, "column": "value"},
        {"table": "events", "row": "1 ", "column": "payload"},
    ],
)
def test_open_rejects_value_moved_to_another_row_column_or_table(where: dict[str, object]) -> None:
    """THREATS row 5: associated data binds table, row and column."""
    key = _key()
    token = key.seal(b"secret", table="events", row=1, column="payload")
    with pytest.raises(errors.InvalidToken):
        key.open(token, **where)  # type: ignore[arg-type]


def test_open_rejects_other_key_version_and_other_key() -> None:
    """THREATS row 5: the key version is bound too; a token names exactly one key."""
    raw = crypto.SecretKey.generate()
    token = crypto.DataKey(raw, 1).seal(b"x", table="t", row=1, column="c")
    relabelled = token[:1] + (2).to_bytes(4, "big") + token[5:]
    with pytest.raises(errors.InvalidToken):
        crypto.DataKey(raw, 2).open(relabelled, table="t", row=1, column="c")
    with pytest.raises(errors.InvalidToken):
        _key(1).open(token, table="t", row=1, column="c")


def test_every_flipped_bit_and_truncation_fails_with_one_error() -> None:
    """THREATS rows 2 and 3: any flipped bit or truncation → InvalidToken, nothing else."""
    key = _key()
    token = key.seal(b"a personal value", table="t", row=1, column="c")
    for i in range(len(token) * 8):
        damaged = bytearray(token)
        damaged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(errors.InvalidToken):
            key.open(bytes(damaged), table="t", row=1, column="c")
    for n in range(len(token)):
        with pytest.raises(errors.InvalidToken):
            key.open(token[:n], table="t", row=1, column="c")


def test_keyring_opens_any_version_and_seals_with_current() -> None:
    old, new = _key(1), _key(2)
    ring = crypto.Keyring({1: old, 2: new}, 2)
    token = old.seal(b"v", table="t", row=1, column="c")
    assert ring.open(token, table="t", row=1, column="c") == b"v"
    assert crypto.token_key_version(ring.seal(b"v", table="t", row=1, column="c")) == 2
    with pytest.raises(errors.InvalidToken):
        crypto.Keyring({2: new}, 2).open(token, table="t", row=1, column="c")


def test_wrap_binds_associated_data() -> None:
    kek, key = crypto.SecretKey.generate(), crypto.SecretKey.generate()
    wrapped = crypto.wrap_key(kek, key, aad=b"params-a")
    assert crypto.unwrap_key(kek, wrapped, aad=b"params-a") == key
    with pytest.raises(errors.InvalidToken):
        crypto.unwrap_key(kek, wrapped, aad=b"params-b")


@pytest.mark.parametrize(
    "params",
    [
        crypto.KdfParams(crypto.KDF_MINIMUM.memory_kib - 1, 2, 1),
        crypto.KdfParams(19 * 1024, 1, 1),
        crypto.KdfParams(19 * 1024, 2, 0),
        crypto.KdfParams(crypto.KDF_MAXIMUM.memory_kib + 1, 3, 4),
        crypto.KdfParams(64 * 1024, 10_000, 4),
        crypto.KdfParams(64 * 1024, 3, 1000),
    ],
)
def test_kdf_refuses_parameters_out_of_range_before_running(params: crypto.KdfParams) -> None:
    """THREATS row 4: below the minimum or absurdly large → refused without KDF work."""
    with pytest.raises(errors.KdfParametersRejected):
        crypto.derive_kek("pw", salt=crypto.new_salt(), params=params)


def test_kdf_params_from_json_rejects_non_integers() -> None:
    """THREATS row 4."""
    with pytest.raises(errors.KdfParametersRejected):
        crypto.KdfParams.from_json({"memory_kib": "65536", "iterations": 3, "lanes": 4})
    with pytest.raises(errors.KdfParametersRejected):
        crypto.KdfParams.from_json({"memory_kib": 65536.0, "iterations": 3, "lanes": 4})


def test_secrets_never_show_in_repr_str_or_pickle() -> None:
    """THREATS row 9: secrets have redacting reprs."""
    raw = bytes(range(32))
    secret = crypto.SecretKey(raw)
    key = crypto.DataKey(secret, 3)
    ring = crypto.Keyring({3: key}, 3)
    for obj in (secret, key, ring):
        text = repr(obj) + str(obj) + f"{obj}"
        assert "redacted" in text
        assert raw.hex() not in text and repr(raw) not in text
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_a_row_version_is_bound_and_the_token_format_must_match() -> None:
    """THREATS rows 5 and 36: a format-2 token opens only as the row version it was sealed
    for; a format-1 token is not accepted where a row version is expected, nor the reverse."""
    key = crypto.DataKey(crypto.SecretKey.generate(), 1)
    where: dict[str, Any] = {"table": "facts", "row": "city", "column": "value"}
    v3 = key.seal(b"Lyon", **where, row_version=3)
    assert v3[0] == crypto.VERSIONED_TOKEN and crypto.token_key_version(v3) == 1
    assert key.open(v3, **where, row_version=3) == b"Lyon"
    unversioned = key.seal(b"Lyon", **where)
    for token, version in ((v3, 4), (v3, None), (unversioned, 3), (unversioned, 0)):
        with pytest.raises(errors.InvalidToken):
            key.open(token, **where, row_version=version)
