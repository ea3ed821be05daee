"""One-file encrypted backups: ``vault export`` writes one, ``vault restore`` reads one.

Layout::

    "VAULTBK1" ‖ u32 header length ‖ header (JSON) ‖ chunk*
    chunk = u32 length ‖ nonce ‖ AES-256-GCM ciphertext ‖ tag

The header names the format, the Argon2id parameters and salt of the backup key (derived
from the passphrase, so a backup restores on a machine with nothing else), the chunk size
and a key-check token (an empty plaintext sealed under the backup key). Every chunk's
associated data is ``SHA-256(magic ‖ header) ‖ u64 chunk index ‖ u8 is-last``: an edited
header, a reordered, dropped or appended chunk, or a truncated file fails authentication.

The plaintext is a sequence of entries ``u16 name length ‖ name ‖ u64 size ‖ bytes``:
exactly ``keyfile.json``, ``vault.db`` (a consistent ``VACUUM INTO`` snapshot whose values
are still sealed by the data key) and, from format 2 on, ``audit.sqlite`` (the access log,
also a snapshot). Any other name — ``../x``, an absolute path, a duplicate — is refused.

The access log is the vault's replay and limit state: the daemon rebuilds its release book
(answered nonces, per-grant and per-company counts, noisy epochs) from the log's release
entries, so a restored vault refuses every nonce it had answered and keeps every count
(THREATS row 35). A format-1 backup carries no log: it still restores, with a ``restore``
entry in a fresh log whose ``replay_floor`` makes the daemon refuse every request issued
before the restore (replay protection starts afresh, and nothing signed earlier can be
replayed into the gap); the CLI warns about it.

Restore decrypts into a staging folder inside the target, opens the staged vault with the
passphrase, opens every sealed value in it and verifies the log's keyed chain; only then it
moves the database, the log and, last, the keyfile into place (the vault exists once its
keyfile does). A crash before that last rename leaves no vault, and restore can simply be
run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vault import audit, crypto, errors
from vault._files import (
    crash_point,
    create_private_file,
    ensure_private_dir,
    fsync_dir,
    is_regular_file,
)
from vault.keyfile import KEYFILE_NAME
from vault.store import (
    DB_NAME,
    QUARANTINED,
    Vault,
    remember_backup,
    remove_database,
    take_lock,
)

MAGIC = b"VAULTBK1"
FORMAT = "vault-backup"
FORMAT_VERSION = 2
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
#: The entries each readable format version holds, in the order they are written.
ENTRIES = {1: (KEYFILE_NAME, DB_NAME), 2: (KEYFILE_NAME, DB_NAME, audit.FILENAME)}
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">H")
_SIZE = struct.Struct(">Q")
_STAGING = ".restore"
_SNAPSHOT = ".backup-snapshot.db"
_LOG_SNAPSHOT = ".backup-snapshot.audit"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    created_at: int


@dataclass(frozen=True)
class RestoreInfo:
    created_at: int
    #: False for a format-1 backup: replay protection starts afresh at ``replay_floor``.
    carried_log: bool
    replay_floor: int | None


def _chunk_aad(header_hash: bytes, index: int, last: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, int(last))


def _header_hash(header: bytes) -> bytes:
    return hashlib.sha256(MAGIC + header).digest()


def _check_output(path: Path) -> None:
    if path.is_symlink():
        raise errors.UnsafePath(f"{path} is a symlink")
    if path.exists():
        raise errors.UnsafePath(f"{path} already exists; vault never overwrites a backup")
    if not path.parent.is_dir():
        raise errors.UnsafePath(f"{path.parent} is not a folder")


def export_backup(
    vault: Vault, path: Path, passphrase: str, *, clock: Callable[[], float] = time.time
) -> BackupInfo:
    """Write one encrypted backup of ``vault`` to ``path`` (new file, 0600, atomic)."""
    _check_output(path)
    vault.verify_passphrase(passphrase)
    params = vault.kdf_params
    salt = crypto.new_salt()
    key = crypto.derive_kek(passphrase, salt=salt, params=params)
    created_at = int(clock())
    fields = {"format": FORMAT, "format_version": FORMAT_VERSION, "chunk_bytes": CHUNK_BYTES,
              "created_at": created_at,
              "kdf": {"algorithm": "argon2id", **params.to_json(), "salt": salt.hex()}}
    fields["key_check"] = crypto.aead_seal(key, b"", aad=_check_aad(fields)).hex()
    header = json.dumps(fields, sort_keys=True).encode()

    snapshots = {DB_NAME: vault.home / _SNAPSHOT, audit.FILENAME: vault.home / _LOG_SNAPSHOT}
    for snapshot in snapshots.values():
        snapshot.unlink(missing_ok=True)
        os.close(create_private_file(snapshot))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        vault.snapshot(snapshots[DB_NAME])
        # A vault never served has no log yet: carry an empty keyed one.
        audit.AuditLog.in_home(vault.home, key=vault.access_log_key()).close()
        audit.snapshot_file(vault.home / audit.FILENAME, snapshots[audit.FILENAME])
        fd = create_private_file(tmp)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + _U32.pack(len(header)) + header)
            writer = _ChunkWriter(out, key, _header_hash(header))
            _write_entry(writer, KEYFILE_NAME, vault.keyfile_bytes)
            for name, snapshot in snapshots.items():
                with snapshot.open("rb") as copy:
                    size = os.fstat(copy.fileno()).st_size
                    writer.write(_ENTRY.pack(len(name)) + name.encode() + _SIZE.pack(size))
                    while block := copy.read(CHUNK_BYTES):
                        writer.write(block)
            writer.finish()
            out.flush()
            os.fsync(out.fileno())
        crash_point("export-written")
        os.link(tmp, path)  # fails rather than overwrite anything that appeared meanwhile
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
        for snapshot in snapshots.values():
            snapshot.unlink(missing_ok=True)
    remember_backup(vault.home, path, created_at=created_at)
    return BackupInfo(path=path, size=path.stat().st_size, created_at=created_at)


def _check_aad(fields: dict[str, object]) -> bytes:
    return json.dumps({k: v for k, v in fields.items() if k != "key_check"},
                      sort_keys=True).encode()


def _write_entry(writer: _ChunkWriter, name: str, data: bytes) -> None:
    writer.write(_ENTRY.pack(len(name)) + name.encode() + _SIZE.pack(len(data)) + data)


class _ChunkWriter:
    """Buffers plaintext and seals it in CHUNK_BYTES chunks; the last one is flagged."""

    def __init__(self, out: BinaryIO, key: crypto.SecretKey, header_hash: bytes) -> None:
        self._out, self._key, self._hash = out, key, header_hash
        self._buffer = bytearray()
        self._index = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]

    def finish(self) -> None:
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _emit(self, plaintext: bytes, *, last: bool) -> None:
        sealed = crypto.aead_seal(self._key, plaintext,
                                  aad=_chunk_aad(self._hash, self._index, last))
        self._out.write(_U32.pack(len(sealed)) + sealed)
        self._index += 1


# -- restore -----------------------------------------------------------------------------


def restore_backup(
    path: Path, home: Path, passphrase: str, *, clock: Callable[[], float] = time.time
) -> RestoreInfo:
    """Verify the whole backup, then install it as the vault in ``home`` (which must not
    hold a vault). WrongPassphrase, MalformedBackup, KdfParametersRejected, UnsafePath,
    VaultExists."""
    if path.is_symlink() or not is_regular_file(path):
        raise errors.UnsafePath(f"{path} is not a regular file (symlinks are refused)")
    if home.is_symlink():
        raise errors.UnsafePath(f"{home} is a symlink")
    if (home / KEYFILE_NAME).exists() or (home / KEYFILE_NAME).is_symlink():
        raise errors.VaultExists(
            f"{home} already holds a vault",
            hint="restore into an empty --home, or move the current vault away first",
        )
    with path.open("rb") as backup:
        # Nothing is written before the header and the passphrase check out.
        key, header_hash, header = _open_header(backup, passphrase)
        ensure_private_dir(home)
        lock_fd = take_lock(home)
        staging = home / _STAGING
        try:
            if staging.is_symlink():
                staging.unlink()
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(mode=0o700)
            entries = ENTRIES[header["format_version"]]
            _EntryReader(_chunks(backup, key, header_hash), staging, entries).run()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            os.close(lock_fd)
            raise
    carried_log = audit.FILENAME in entries
    floor = None if carried_log else int(clock())
    try:
        crash_point("restore-unpacked")
        _verify_staged(staging, passphrase, restore_entry=audit.NewEntry(
            at=round(clock(), 3), kind=audit.RESTORE, outcome=audit.OK,
            detail={"backup_created_at": header["created_at"],
                    **({} if floor is None else {"replay_floor": floor})},
        ))
        remove_database(home)
        for name in (DB_NAME, audit.FILENAME):
            for suffix in ("-wal", "-shm"):  # never let a stale side file meet a new file
                (home / (name + suffix)).unlink(missing_ok=True)
            os.replace(staging / name, home / name)
        fsync_dir(home)
        crash_point("restore-database")
        os.replace(staging / KEYFILE_NAME, home / KEYFILE_NAME)
        fsync_dir(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock_fd)
    remember_backup(home, path, created_at=header["created_at"])
    return RestoreInfo(created_at=header["created_at"], carried_log=carried_log,
                       replay_floor=floor)


def _verify_staged(staging: Path, passphrase: str, *, restore_entry: audit.NewEntry) -> None:
    """Open the staged vault, check every record and the log's chain, then note the restore
    in the log (a fresh one for a backup that carried none)."""
    try:
        with Vault.open(staging, passphrase) as staged:
            # Quarantined events are losses the vault already knew of when it was backed up.
            damaged = [d for d in staged.check() if d.problem != QUARANTINED]
            if not damaged:
                log = audit.AuditLog.in_home(staging, key=staged.access_log_key())
                try:
                    log.append_sync(restore_entry)
                finally:
                    log.close()
    except errors.WrongPassphrase:
        raise
    except errors.VaultError as exc:
        raise errors.MalformedBackup(f"the backup's vault does not open: {exc}") from None
    if damaged:
        raise errors.MalformedBackup(
            f"the backup holds {len(damaged)} damaged record(s), first: {damaged[0]}"
        )
    (staging / "vault.lock").unlink(missing_ok=True)


def _open_header(
    backup: BinaryIO, passphrase: str
) -> tuple[crypto.SecretKey, bytes, dict[str, Any]]:
    """Read and check the header, derive the backup key: (key, header hash, header)."""
    if backup.read(len(MAGIC)) != MAGIC:
        raise errors.MalformedBackup("not a vault backup (bad magic)")
    header = _read_exact(backup, _read_u32(backup, MAX_HEADER_BYTES, "header"), "header")
    try:
        fields = json.loads(header)
        if fields["format"] != FORMAT or fields["format_version"] not in ENTRIES:
            raise ValueError("format")
        if type(fields["created_at"]) is not int:
            raise ValueError("created_at")
        if fields["chunk_bytes"] != CHUNK_BYTES:
            raise ValueError("chunk size")
        kdf = fields["kdf"]
        salt = bytes.fromhex(kdf["salt"])
        key_check = bytes.fromhex(fields["key_check"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.MalformedBackup("the backup header is damaged") from exc
    params = crypto.KdfParams.from_json(kdf)
    key = crypto.derive_kek(passphrase, salt=salt, params=params)
    try:
        crypto.aead_open(key, key_check, aad=_check_aad(fields))
    except errors.InvalidToken:
        raise errors.WrongPassphrase(
            "wrong passphrase for this backup (or its header was altered)"
        ) from None
    return key, _header_hash(header), fields


def _chunks(backup: BinaryIO, key: crypto.SecretKey, header_hash: bytes) -> Iterator[bytes]:
    index = 0
    limit = CHUNK_BYTES + crypto.NONCE_BYTES + crypto.TAG_BYTES
    while True:
        sealed = _read_exact(backup, _read_u32(backup, limit, "chunk"), "chunk")
        for last in (False, True):
            try:
                plaintext = crypto.aead_open(key, sealed,
                                             aad=_chunk_aad(header_hash, index, last))
                break
            except errors.InvalidToken:
                continue
        else:
            raise errors.MalformedBackup(
                f"backup chunk {index} fails authentication (damaged or truncated)"
            )
        yield plaintext
        if last:
            if backup.read(1):
                raise errors.MalformedBackup("the backup has data after its final chunk")
            return
        index += 1


class _EntryReader:
    """Parses the entry stream into ``staging``; refuses unknown or repeated names."""

    def __init__(self, chunks: Iterator[bytes], staging: Path, entries: tuple[str, ...]
                 ) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._staging = staging
        self._entries = entries

    def _fill(self, n: int) -> bool:
        while len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buffer += chunk
        return True

    def _take(self, n: int) -> bytes:
        if not self._fill(n):
            raise errors.MalformedBackup("the backup ends inside an entry")
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def run(self) -> None:
        seen: set[str] = set()
        while self._fill(1):
            (name_len,) = _ENTRY.unpack(self._take(_ENTRY.size))
            name = self._take(name_len).decode("utf-8", errors="replace")
            if name not in self._entries or name in seen:
                raise errors.UnsafePath(f"the backup names an unexpected file {name!r}")
            seen.add(name)
            (size,) = _SIZE.unpack(self._take(_SIZE.size))
            fd = create_private_file(self._staging / name)
            with os.fdopen(fd, "wb") as out:
                while size:
                    if not self._fill(1):
                        raise errors.MalformedBackup("the backup ends inside an entry")
                    part = self._take(min(size, len(self._buffer)))
                    out.write(part)
                    size -= len(part)
                out.flush()
                os.fsync(out.fileno())
        if seen != set(self._entries):
            raise errors.MalformedBackup("the backup lacks part of the vault")


def _read_u32(stream: BinaryIO, limit: int, what: str) -> int:
    (value,) = _U32.unpack(_read_exact(stream, _U32.size, what))
    if value > limit:
        raise errors.MalformedBackup(f"the backup's {what} length is out of range")
    return int(value)


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise errors.MalformedBackup(f"the backup is truncated (inside a {what})")
    return data
