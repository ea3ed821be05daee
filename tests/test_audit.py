"""The keyed hash-chained access log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from vault import audit, crypto
from vault.audit import RELEASE, RELEASED, AuditLog, NewEntry

KEY = crypto.SecretKey.generate()


def entry(i: int, *, outcome: str = RELEASED, company: str = "0xC0") -> NewEntry:
    return NewEntry(
        at=1000.0 + i, kind=RELEASE, outcome=outcome, grant_id=i % 3, company=company,
        scopes=("preferences.music",), content_hash="0x" + "ab" * 32,
        detail={"nonce": f"0x{i:064x}", "issued_at": 1000 + i},
    )


@pytest.fixture
def log(tmp_path: Path):
    log = AuditLog.in_home(tmp_path, key=KEY)
    yield log
    log.close()


def test_file_is_private(log: AuditLog) -> None:
    log.append_sync(entry(1))
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_entries_chain_and_verify(log: AuditLog) -> None:
    stored = [log.append_sync(entry(i)) for i in range(5)]
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert stored[1].prev_hash == stored[0].entry_hash
    assert [e.seq for e in log.entries(limit=3)] == [3, 4, 5]
    result = log.verify()
    assert result.ok and result.entries == 5 and result.first_bad_seq is None


def test_concurrent_appends_are_group_committed_in_one_chain(log: AuditLog) -> None:
    futures = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        for i in range(50):
            f = log.append(entry(base + i))
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = sorted(f.result().seq for f in futures)
    assert seqs == list(range(1, 201))
    assert log.verify().ok


def _tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "args", "bad_seq"),
    [
        ("UPDATE entries SET reason = 'edited' WHERE seq = 3", (), 3),
        ("UPDATE entries SET detail = '{\"nonce\":\"0x00\"}' WHERE seq = 2", (), 2),
        ("UPDATE entries SET scopes = '[\"mood.current\"]' WHERE seq = 4", (), 4),
        # A stored link edited alone: the entry hash is recomputed from the verifier's own
        # running hash, so only comparing the stored prev_hash notices this edit.
        ("UPDATE entries SET prev_hash = zeroblob(32) WHERE seq = 3", (), 3),
        ("DELETE FROM entries WHERE seq = 2", (), 3),
        ("DELETE FROM entries WHERE seq = 5", (), 5),
        ("INSERT INTO entries SELECT 6, at, kind, grant_id, company, scopes, outcome, reason, "
         "content_hash, detail, prev_hash, entry_hash FROM entries WHERE seq = 5", (), 6),
    ],
)
def test_verify_detects_edit_insert_and_delete(tmp_path: Path, sql: str, args: tuple[object, ...],
                                               bad_seq: int) -> None:
    log = AuditLog.in_home(tmp_path, key=KEY)
    for i in range(5):
        log.append_sync(entry(i))
    log.close()
    _tamper(tmp_path / "audit.sqlite", sql, *args)
    reopened = AuditLog.in_home(tmp_path, key=KEY)
    try:
        result = reopened.verify()
        assert not result.ok
        assert result.first_bad_seq == bad_seq
    finally:
        reopened.close()


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    log = AuditLog.in_home(tmp_path, key=KEY)
    log.append_sync(entry(1))
    log.close()
    log = AuditLog.in_home(tmp_path, key=KEY)
    assert log.append_sync(entry(2)).seq == 2
    assert log.verify().ok
    log.close()


def test_release_counts_per_grant_and_company(log: AuditLog) -> None:
    for i in range(6):
        log.append(entry(i, company="0xA" if i < 4 else "0xB"))
    log.append(entry(9, outcome="refused"))
    log.flush()
    per_grant, per_company = log.release_counts(since=1002.0)
    assert per_grant == {0: 2, 1: 2, 2: 2}
    assert per_company == {"0xA": 2, "0xB": 2}
    assert len(log.of_kind(RELEASE, since=1004.0)) == 3
    assert [e.seq for e in log.for_grant(1, kind=RELEASE)] == [2, 5]


def test_awaitable_appends_resolve_on_their_loop_once_durable(tmp_path: Path) -> None:
    log = AuditLog.in_home(tmp_path, key=KEY)

    async def append_many() -> list[int]:
        waiters = [log.append_awaitable(entry(i)) for i in range(100)]
        waiters[3].cancel()  # a caller that went away must not stop the others
        done = await asyncio.gather(*waiters, return_exceptions=True)
        return [e.seq for e in done if not isinstance(e, BaseException)]

    seqs = asyncio.run(append_many())
    log.close()
    assert seqs == [s for s in range(1, 101) if s != 4]
    reopened = AuditLog.in_home(tmp_path, key=KEY)
    try:  # everything was durable: a fresh process sees all 100, cancelled one included
        assert [e.seq for e in reopened.entries(limit=200)] == list(range(1, 101))
        assert reopened.verify().ok
    finally:
        reopened.close()


def _append(tmp_path: Path, n: int) -> None:
    log = AuditLog.in_home(tmp_path, key=KEY)
    for i in range(n):
        log.append_sync(entry(i))
    log.close()


def _verify(tmp_path: Path, key: crypto.SecretKey = KEY) -> audit.Verification:
    return audit.verify_file(tmp_path / audit.FILENAME, key=key)


def test_truncated_log_with_a_rebuilt_head_does_not_verify(tmp_path: Path) -> None:
    """THREATS row 36: without the key, deleting the tail and rewriting the head row to the
    last kept entry (what defeated the unkeyed chain) is found at the first missing entry."""
    _append(tmp_path, 6)
    db = sqlite3.connect(tmp_path / audit.FILENAME)
    (last_kept,) = db.execute("SELECT entry_hash FROM entries WHERE seq = 3").fetchone()
    db.execute("DELETE FROM entries WHERE seq > 3")
    db.execute("UPDATE head SET seq = 3, entry_hash = ?", (last_kept,))
    db.commit()
    db.close()
    assert _verify(tmp_path) == audit.Verification(False, 3, 4)
    # The same log re-chained by someone who does not know the key, with plain sha256.
    _rewrite_unkeyed(tmp_path)
    assert not _verify(tmp_path).ok


def test_the_chain_is_keyed(tmp_path: Path) -> None:
    """THREATS row 36: the same log under another key does not verify from its first entry."""
    _append(tmp_path, 3)
    assert _verify(tmp_path).ok
    assert _verify(tmp_path, crypto.SecretKey.generate()) == audit.Verification(False, 1, 1)


def _rewrite_unkeyed(tmp_path: Path) -> None:
    """Rewrite the log as a format-1 (plain sha256) chain, as anyone without the key can."""
    db = sqlite3.connect(tmp_path / audit.FILENAME)
    prev = audit.GENESIS
    rows = db.execute("SELECT seq, at, kind, grant_id, company, scopes, outcome, reason, "
                      "content_hash, detail FROM entries ORDER BY seq").fetchall()
    for seq, at, kind, grant_id, company, scopes, outcome, reason, content, detail in rows:
        body = audit.canonical(seq, NewEntry(
            at=at, kind=kind, outcome=outcome, grant_id=grant_id, company=company,
            scopes=tuple(json.loads(scopes)), reason=reason, content_hash=content,
            detail=json.loads(detail)))
        digest = hashlib.sha256(prev + body).digest()
        db.execute("UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE seq = ?",
                   (prev, digest, seq))
        prev = digest
    db.execute("UPDATE head SET seq = ?, entry_hash = ?", (len(rows), prev))
    db.execute("DELETE FROM meta")
    db.commit()
    db.close()


def test_an_unkeyed_log_is_migrated_once_and_then_verifies(tmp_path: Path) -> None:
    """A log from before the keyed chain (format 1) is re-chained under the key and keeps
    verifying; appends continue its chain."""
    _append(tmp_path, 4)
    _rewrite_unkeyed(tmp_path)
    assert _verify(tmp_path).first_bad_seq == 1  # unmarked: as good as rewritten
    audit.migrate_to_keyed(tmp_path / audit.FILENAME, key=KEY)
    assert _verify(tmp_path) == audit.Verification(True, 4, None)
    audit.migrate_to_keyed(tmp_path / audit.FILENAME, key=crypto.SecretKey.generate())
    assert _verify(tmp_path).ok  # already keyed: a second migration changes nothing
    _append(tmp_path, 1)
    assert _verify(tmp_path) == audit.Verification(True, 5, None)


def test_migration_keeps_a_break_in_the_old_chain_where_it_was(tmp_path: Path) -> None:
    _append(tmp_path, 5)
    _rewrite_unkeyed(tmp_path)
    db = sqlite3.connect(tmp_path / audit.FILENAME)
    db.execute("UPDATE entries SET reason = 'edited' WHERE seq = 3")
    db.commit()
    db.close()
    audit.migrate_to_keyed(tmp_path / audit.FILENAME, key=KEY)
    assert _verify(tmp_path).first_bad_seq == 3


def test_replay_floor_is_the_latest_restore(log: AuditLog) -> None:
    assert log.replay_floor() == 0.0
    for floor in (500, 900):
        log.append_sync(NewEntry(at=floor, kind=audit.RESTORE, outcome=audit.OK,
                                 detail={"replay_floor": floor}))
    log.append_sync(NewEntry(at=1000, kind=audit.RESTORE, outcome=audit.OK, detail={}))
    assert log.replay_floor() == 900.0


def test_an_integer_time_verifies_like_the_float_it_is_stored_as(log: AuditLog) -> None:
    log.append_sync(NewEntry(at=1_700_000_000, kind=RELEASE, outcome=RELEASED))
    assert log.verify().ok
