"""The runtime file and the identity proof, in process (THREATS row 34; row 9 for reprs).

The end-to-end behaviour — real `vault serve`, the CLI, a squatter — is in
``tests/cli/test_discovery.py``; this file pins the pieces it rests on.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import pytest

from vault import errors
from vault.daemon import runtime
from vault.store import take_lock

from .conftest import Served

OWNER = "0x" + "ab" * 20


def published(*, pid: int | None = None, token: runtime.Token | None = None
              ) -> runtime.RuntimeFile:
    return runtime.RuntimeFile(
        host="127.0.0.1", port=9000, pid=os.getpid() if pid is None else pid, owner=OWNER,
        started_at=int(time.time()), token=token or runtime.new_token(),
    )


def test_the_runtime_file_is_private_round_trips_and_never_shows_its_token(
    tmp_path: Path,
) -> None:
    """THREATS rows 34 and 9."""
    written = published()
    runtime.publish(tmp_path, written)
    path = tmp_path / runtime.RUNTIME_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    read = runtime.read(tmp_path)
    assert read is not None and read.url == "http://127.0.0.1:9000"
    assert read.token.matches(written.token.reveal())
    assert written.token.reveal() not in repr(read) and "redacted" in repr(read)


@pytest.mark.parametrize("damage", [
    b"", b"{", b"[]", b'{"format": "vault-daemon"}',
    b'{"format": "vault-daemon", "format_version": 1, "host": "127.0.0.1", "port": 0, '
    b'"pid": 1, "owner": "0x' + b"ab" * 20 + b'", "started_at": 1, "token": "' + b"t" * 43 + b'"}',
])
def test_a_damaged_runtime_file_is_refused_without_quoting_it(
    tmp_path: Path, damage: bytes
) -> None:
    """THREATS row 34 (and 9: the message never quotes the file, which holds the token)."""
    path = tmp_path / runtime.RUNTIME_FILE
    path.write_bytes(damage)
    path.chmod(0o600)
    with pytest.raises(errors.CorruptFile) as caught:
        runtime.read(tmp_path)
    assert "t" * 43 not in str(caught.value)


def test_a_symlinked_or_shared_runtime_file_is_refused(tmp_path: Path) -> None:
    """THREATS row 34: a token in a file others could write or read proves nothing."""
    runtime.publish(tmp_path, published())
    path = tmp_path / runtime.RUNTIME_FILE
    path.chmod(0o640)
    with pytest.raises(errors.CorruptFile, match="not a private file"):
        runtime.read(tmp_path)
    path.rename(tmp_path / "elsewhere.json")
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(errors.CorruptFile):
        runtime.read(tmp_path)


def test_stale_means_the_pid_is_gone_or_nobody_holds_the_vault(tmp_path: Path) -> None:
    """THREATS row 34: after kill -9 the pid is gone; a reused pid is caught by the free lock."""
    lock = take_lock(tmp_path)
    try:
        assert not runtime.is_stale(tmp_path, published())  # alive and holding the lock
        assert runtime.is_stale(tmp_path, published(pid=2**22 + 12345))  # no such pid
    finally:
        os.close(lock)
    assert runtime.is_stale(tmp_path, published())  # alive, but the vault is free


def test_withdraw_and_discard_never_remove_another_starts_file(tmp_path: Path) -> None:
    """THREATS row 34: a stopping (or stale) daemon does not remove its successor's file."""
    old, new = published(pid=2**22 + 1), published()
    runtime.publish(tmp_path, new)
    runtime.withdraw(tmp_path, old)
    runtime.discard(tmp_path, stale=old)
    assert runtime.read(tmp_path) is not None
    runtime.withdraw(tmp_path, new)
    assert runtime.read(tmp_path) is None


def test_the_proof_binds_the_token_the_nonce_and_the_owner() -> None:
    """THREATS row 34: an answer for another nonce, owner or token does not verify."""
    token, nonce = runtime.new_token(), os.urandom(runtime.NONCE_BYTES)
    proof = runtime.proof(token, nonce, OWNER)
    assert runtime.proof_matches(token, nonce, OWNER.upper().replace("0X", "0x"), proof)
    assert not runtime.proof_matches(token, os.urandom(32), OWNER, proof)
    assert not runtime.proof_matches(token, nonce, "0x" + "cd" * 20, proof)
    assert not runtime.proof_matches(runtime.new_token(), nonce, OWNER, proof)
    with pytest.raises(ValueError):
        runtime.proof(token, b"short", OWNER)


def test_the_identity_route_answers_the_proof_without_the_token(daemon: Served) -> None:
    """THREATS row 34: unauthenticated, it proves the daemon and reveals nothing else."""
    nonce = os.urandom(runtime.NONCE_BYTES)
    answer = httpx.post(daemon.base + "/v1/identity", json={"nonce": "0x" + nonce.hex()})
    assert answer.status_code == 200
    body = answer.json()
    assert body["owner"] == daemon.vault.owner_address
    token = runtime.Token(daemon.token)
    assert runtime.proof_matches(token, nonce, body["owner"], bytes.fromhex(body["proof"][2:]))
    assert daemon.token not in answer.text
    for bad in ({"nonce": "0x1234"}, {"nonce": "0x" + nonce.hex(), "more": 1}, {}):
        refused = httpx.post(daemon.base + "/v1/identity", json=bad)
        assert refused.status_code == 400 and refused.json()["error"] == "malformed"
