from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from vault import audit, backup, crypto, errors, store
from vault.identity import Event, EventKind, Fact
from vault.keyfile import KEYFILE_NAME

PASS = "correct horse battery staple"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[store.Vault]:
    with store.Vault.create(tmp_path / "vault", PASS, kdf=crypto.KDF_MINIMUM) as v:
        v.import_records([
            *(Event(EventKind.VIEW, 1_700_000_000 + i, "youtube",
                    {"title": f"Video {i}", "platform": "youtube"}) for i in range(300)),
            Fact("city", "Lyon"),
        ])
        yield v


@pytest.fixture
def backup_file(vault: store.Vault, tmp_path: Path) -> Path:
    path = tmp_path / "vault.backup"
    info = backup.export_backup(vault, path, PASS)
    assert info.size == path.stat().st_size
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return path


def test_export_then_restore_gives_the_same_vault(
    vault: store.Vault, backup_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    backup.restore_backup(backup_file, target, PASS)
    with store.Vault.open(target, PASS) as restored:
        assert restored.owner_address == vault.owner_address
        assert restored.facts() == {"city": "Lyon"}
        assert restored.stats().events == 300
        assert restored.check() == []
    assert sorted(p.name for p in target.iterdir()) == sorted([
        KEYFILE_NAME, store.DB_NAME, store.LOCK_NAME, audit.FILENAME, store.BACKUPS_NAME])
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in target.iterdir())


def test_backup_holds_no_plaintext(backup_file: Path) -> None:
    raw = backup_file.read_bytes()
    assert b"Lyon" not in raw and b"Video" not in raw and b"SQLite" not in raw


def test_export_refuses_overwrite_and_symlink(vault: store.Vault, tmp_path: Path) -> None:
    """THREATS row 25: export never follows a symlink or overwrites a file."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for path in (victim, link):
        with pytest.raises(errors.UnsafePath):
            backup.export_backup(vault, path, PASS)
    assert victim.read_text() == "keep me"


def test_export_needs_the_vault_passphrase(vault: store.Vault, tmp_path: Path) -> None:
    """THREATS row 1."""
    with pytest.raises(errors.WrongPassphrase):
        backup.export_backup(vault, tmp_path / "b", "wrong")
    assert not (tmp_path / "b").exists()


def test_restore_with_wrong_passphrase_writes_nothing(backup_file: Path, tmp_path: Path) -> None:
    """THREATS row 1."""
    with pytest.raises(errors.WrongPassphrase):
        backup.restore_backup(backup_file, tmp_path / "restored", "wrong")
    assert not (tmp_path / "restored").exists()


def test_restore_refuses_an_existing_vault_and_symlinks(
    vault: store.Vault, backup_file: Path, tmp_path: Path
) -> None:
    """THREATS row 25: symlinked backup or target folder, existing vault → refused."""
    with pytest.raises(errors.VaultExists):
        backup.restore_backup(backup_file, vault.home, PASS)
    link = tmp_path / "link.backup"
    link.symlink_to(backup_file)
    with pytest.raises(errors.UnsafePath):
        backup.restore_backup(link, tmp_path / "a", PASS)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "home-link").symlink_to(real)
    with pytest.raises(errors.UnsafePath):
        backup.restore_backup(backup_file, tmp_path / "home-link", PASS)
    assert list(real.iterdir()) == []


def _forge(tmp_path: Path, entries: list[tuple[str, bytes]]) -> Path:
    """A correctly encrypted backup whose entries we choose (as an attacker who knows the
    passphrase, e.g. one who hands the owner a crafted file, could)."""
    params = crypto.KDF_MINIMUM
    salt = crypto.new_salt()
    key = crypto.derive_kek(PASS, salt=salt, params=params)
    fields: dict[str, object] = {
        "format": backup.FORMAT, "format_version": backup.FORMAT_VERSION,
        "chunk_bytes": backup.CHUNK_BYTES, "created_at": 0,
        "kdf": {"algorithm": "argon2id", **params.to_json(), "salt": salt.hex()}}
    fields["key_check"] = crypto.aead_seal(key, b"", aad=backup._check_aad(fields)).hex()
    header = json.dumps(fields, sort_keys=True).encode()
    path = tmp_path / "forged.backup"
    with path.open("wb") as out:
        out.write(backup.MAGIC + struct.pack(">I", len(header)) + header)
        writer = backup._ChunkWriter(out, key, backup._header_hash(header))
        for name, data in entries:
            backup._write_entry(writer, name, data)
        writer.finish()
    return path


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "sub/vault.db", "vault.db.evil"])
def test_restore_refuses_path_traversal_in_entries(tmp_path: Path, name: str) -> None:
    """THREATS row 25: an entry naming any other path is refused; nothing outside written."""
    forged = _forge(tmp_path, [(name, b"x")])
    with pytest.raises(errors.UnsafePath):
        backup.restore_backup(forged, tmp_path / "target", PASS)
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "target" / KEYFILE_NAME).exists()


def test_restore_refuses_duplicate_or_missing_entries(tmp_path: Path) -> None:
    with pytest.raises(errors.UnsafePath):
        backup.restore_backup(_forge(tmp_path, [(KEYFILE_NAME, b"{}")] * 2),
                              tmp_path / "t", PASS)
    (tmp_path / "forged.backup").unlink()
    with pytest.raises(errors.MalformedBackup):
        backup.restore_backup(_forge(tmp_path, [(KEYFILE_NAME, b"{}")]), tmp_path / "t", PASS)
    assert not (tmp_path / "t" / KEYFILE_NAME).exists()


def test_restore_refuses_every_truncation(backup_file: Path, tmp_path: Path) -> None:
    """THREATS row 2: a truncated backup is refused and nothing is restored."""
    raw = backup_file.read_bytes()
    for i, cut in enumerate([0, 5, 12, 200, len(raw) // 3, len(raw) - 17, len(raw) - 1]):
        damaged = tmp_path / f"cut{i}"
        damaged.write_bytes(raw[:cut])
        target = tmp_path / f"t{i}"
        with pytest.raises((errors.MalformedBackup, errors.KdfParametersRejected)):
            backup.restore_backup(damaged, target, PASS)
        assert not (target / KEYFILE_NAME).exists()


def test_restore_refuses_bit_flips_and_appended_data(backup_file: Path, tmp_path: Path) -> None:
    """THREATS row 3: a flipped bit anywhere in a backup → refused, nothing restored."""
    raw = backup_file.read_bytes()
    positions = [3, 20, 60, 250, len(raw) // 2, len(raw) - 5]
    for i, pos in enumerate(positions):
        damaged = bytearray(raw)
        damaged[pos] ^= 0x04
        path = tmp_path / f"flip{i}"
        path.write_bytes(bytes(damaged))
        with pytest.raises((errors.MalformedBackup, errors.WrongPassphrase,
                            errors.KdfParametersRejected)):
            backup.restore_backup(path, tmp_path / f"t{i}", PASS)
        assert not (tmp_path / f"t{i}" / KEYFILE_NAME).exists()
    appended = tmp_path / "appended"
    appended.write_bytes(raw + raw[-100:])
    with pytest.raises(errors.MalformedBackup):
        backup.restore_backup(appended, tmp_path / "ta", PASS)


def test_restore_refuses_downgraded_kdf_header(backup_file: Path, tmp_path: Path) -> None:
    """THREATS row 4: the backup header's KDF parameters are checked and authenticated."""
    raw = backup_file.read_bytes()
    edited = raw.replace(b'"iterations": 2', b'"iterations": 1', 1)
    assert edited != raw
    path = tmp_path / "edited"
    path.write_bytes(edited)
    with pytest.raises(errors.KdfParametersRejected):
        backup.restore_backup(path, tmp_path / "t", PASS)


def test_restore_clears_a_stale_staging_folder(backup_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "t"
    (target / ".restore").mkdir(parents=True)
    (target / ".restore" / "junk").write_bytes(b"x")
    (target / store.DB_NAME).write_bytes(b"half-restored remnant")
    backup.restore_backup(backup_file, target, PASS)
    assert not (target / ".restore").exists()
    with store.Vault.open(target, PASS) as restored:
        assert restored.stats().events == 300
    assert os.stat(target).st_mode & 0o777 == 0o700


# --- backups of more than one chunk ------------------------------------------------------


@pytest.fixture
def big_backup(tmp_path: Path) -> Path:
    """A real backup of a vault holding about 3 MiB: several full chunks and a last one."""
    with store.Vault.create(tmp_path / "big", PASS, kdf=crypto.KDF_MINIMUM) as v:
        v.import_records([
            Event(EventKind.VIEW, 1_700_000_000 + i, "youtube",
                  {"title": os.urandom(600).hex(), "platform": "youtube"}) for i in range(2_500)
        ])
        path = tmp_path / "big.backup"
        backup.export_backup(v, path, PASS)
    return path


def _split(raw: bytes) -> tuple[bytes, list[bytes]]:
    """(magic ‖ header, [u32 length ‖ sealed chunk, …]) of a backup file."""
    offset = len(backup.MAGIC) + 4 + struct.unpack(">I", raw[8:12])[0]
    head, chunks = raw[:offset], []
    while offset < len(raw):
        end = offset + 4 + struct.unpack(">I", raw[offset:offset + 4])[0]
        chunks.append(raw[offset:end])
        offset = end
    return head, chunks


def test_a_backup_of_several_chunks_restores(big_backup: Path, tmp_path: Path) -> None:
    _, chunks = _split(big_backup.read_bytes())
    assert len(chunks) >= 3
    backup.restore_backup(big_backup, tmp_path / "restored", PASS)
    with store.Vault.open(tmp_path / "restored", PASS) as restored:
        assert restored.stats().events == 2_500
        assert restored.check() == []


def test_restore_refuses_reordered_dropped_or_repeated_chunks(
    big_backup: Path, tmp_path: Path
) -> None:
    """THREATS rows 2 and 3: every chunk is bound to its position (its index is in the
    associated data), so chunks swapped, dropped or repeated — each still a valid
    ciphertext under the backup key — are refused at the first misplaced chunk, and
    nothing is restored."""
    head, chunks = _split(big_backup.read_bytes())
    first, second, third = chunks[0], chunks[1], chunks[2]
    edits = {
        "swap 0 and 1": ([second, first, *chunks[2:]], 0),
        "swap 1 and 2": ([first, third, second, *chunks[3:]], 1),
        "drop 1": ([first, *chunks[2:]], 1),
        "repeat 0": ([first, first, *chunks[2:]], 1),
        "last moved up": ([first, chunks[-1]], 1),
    }
    for i, (name, (edited, bad_index)) in enumerate(edits.items()):
        path = tmp_path / f"edited{i}.backup"
        path.write_bytes(head + b"".join(edited))
        target = tmp_path / f"t{i}"
        with pytest.raises(errors.MalformedBackup,
                           match=f"chunk {bad_index} fails authentication"):
            backup.restore_backup(path, target, PASS)
        assert not (target / KEYFILE_NAME).exists(), name
        assert not (target / store.DB_NAME).exists(), name
