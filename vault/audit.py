"""The hash-chained access log: every release, refusal and owner action, in order.

Each entry's hash is ``HMAC-SHA256(log key, prev_hash ‖ canonical entry)`` where the
canonical entry is the sorted-key compact JSON of every stored field except the hash itself,
so :meth:`AuditLog.verify` detects an edited, inserted, reordered or deleted entry (the last
entry's sequence number and hash are also kept in a ``head`` row under their own HMAC,
which catches a deleted tail even when the head is rewritten to the last entry kept).
The log key is derived from the vault's integrity secret, which only the data key
opens (:meth:`vault.store.Vault.access_log_key`): someone with the files but not the
passphrase cannot rebuild a consistent chain after truncating or editing the log (THREATS
row 36). The owner-signed receipts prove releases to others.

Chain formats, recorded in the ``meta`` table: format 1 (no ``meta`` row, the first logs)
chained with plain ``sha256(prev_hash ‖ canonical entry)``; format 2 is the keyed chain.
:func:`migrate_to_keyed` re-chains a format-1 log under the key once, when the vault that
owns it is upgraded; from then on a log without the format-2 mark does not verify, so
rewriting it as an unkeyed log is no way around the key.

Writes go through one writer thread that commits whatever has queued up in a single SQLite
transaction with ``synchronous=FULL`` (group commit): :meth:`AuditLog.append` returns a
future that resolves once the entry is durable, so a release's response can wait for its
entry without each release paying for its own fsync. :meth:`AuditLog.append_awaitable` is the
same for code on an asyncio loop: the writer settles all of one commit's futures with a
single wake-up of that loop rather than one per entry.

The log lives in its own file, ``<home>/audit.sqlite`` (mode 0600). It never holds a raw
personal value: scope names, reason codes, hashes and public ledger fields only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault import crypto, errors

GENESIS = bytes(32)
FILENAME = "audit.sqlite"
#: The keyed chain (see the module docstring); format 1 is the unkeyed sha256 chain.
CHAIN_FORMAT = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    grant_id INTEGER,
    company TEXT,
    scopes TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    content_hash TEXT,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    entry_hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE INDEX IF NOT EXISTS entries_grant ON entries (grant_id, kind);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    entry_hash BLOB NOT NULL,
    mac BLOB
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_FORMAT = "SELECT value FROM meta WHERE name = 'chain_format'"
_SET_FORMAT = "INSERT OR REPLACE INTO meta (name, value) VALUES ('chain_format', ?)"
_SELECT = (
    "SELECT seq, at, kind, grant_id, company, scopes, outcome, reason, content_hash, detail, "
    "prev_hash, entry_hash FROM entries"
)
_INSERT = (
    "INSERT INTO entries (seq, at, kind, grant_id, company, scopes, outcome, reason, "
    "content_hash, detail, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SET_HEAD = (
    "INSERT INTO head (id, seq, entry_hash, mac) VALUES (1, ?, ?, ?) ON CONFLICT (id) "
    "DO UPDATE SET seq = excluded.seq, entry_hash = excluded.entry_hash, mac = excluded.mac"
)

#: Entry kinds. Releases (granted or refused) are ``release``; the rest are owner actions,
#: automatic decisions and receipts.
RELEASE = "release"
CONSENT_RECEIPT = "consent_receipt"
TERMINATION_RECEIPT = "termination_receipt"
#: Refusals of requests that proved no sender, counted by reason between two entries.
REFUSAL_SUMMARY = "refusal_summary"
#: The vault was restored from a backup; ``detail["replay_floor"]`` (unix seconds), when
#: present, is the time before which no request is answered: the backup did not carry the
#: log, so the nonces answered before it are unknown (THREATS row 35).
RESTORE = "restore"
#: The owner deleted records (`vault forget`); ``detail`` holds what kind and how many
#: (per source, fact names), never a value or a file's path.
FORGET = "forget"
#: The owner imported an export (`vault import`, the dashboard's upload); ``detail`` holds
#: the sources and counts, never a value or a file's path.
IMPORT = "import"
RELEASED = "released"
REFUSED = "refused"
OK = "ok"


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What a caller appends; the log adds ``seq`` and the hashes. ``at`` is unix seconds."""

    at: float
    kind: str
    outcome: str
    grant_id: int | None = None
    company: str | None = None
    scopes: tuple[str, ...] = ()
    reason: str | None = None
    content_hash: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: float
    kind: str
    outcome: str
    grant_id: int | None
    company: str | None
    scopes: tuple[str, ...]
    reason: str | None
    content_hash: str | None
    detail: dict[str, Any]
    prev_hash: bytes
    entry_hash: bytes


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None


def canonical(
    seq: int,
    entry: NewEntry | Entry,
    *,
    scopes_json: str | None = None,
    detail_json: str | None = None,
) -> bytes:
    """The bytes an entry's hash covers (everything stored except the hashes)."""
    return json.dumps(
        {
            "seq": seq,
            "at": float(entry.at),  # stored as REAL: an int would not read back the same
            "kind": entry.kind,
            "outcome": entry.outcome,
            "grant_id": entry.grant_id,
            "company": entry.company,
            "scopes": json.loads(scopes_json) if scopes_json is not None else list(entry.scopes),
            "reason": entry.reason,
            "content_hash": entry.content_hash,
            "detail": json.loads(detail_json) if detail_json is not None else entry.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def chain_hash(key: crypto.SecretKey, prev_hash: bytes, canonical_bytes: bytes) -> bytes:
    return hmac.digest(key.reveal(), prev_hash + canonical_bytes, "sha256")


def head_mac(key: crypto.SecretKey, seq: int, entry_hash: bytes) -> bytes:
    return hmac.digest(key.reveal(), b"head" + seq.to_bytes(8, "big") + entry_hash, "sha256")


def _unkeyed_chain_hash(prev_hash: bytes, canonical_bytes: bytes) -> bytes:
    """Chain format 1, read only by :func:`migrate_to_keyed`."""
    return hashlib.sha256(prev_hash + canonical_bytes).digest()


def _create_private(path: Path) -> None:
    """Create ``path`` (and SQLite's side files) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    if "mac" not in {row[1] for row in conn.execute("PRAGMA table_info(head)")}:
        conn.execute("ALTER TABLE head ADD COLUMN mac BLOB")  # a format-1 log
    return conn


def _row_to_entry(row: tuple[Any, ...]) -> Entry:
    seq, at, kind, grant_id, company, scopes, outcome, reason, content_hash, detail, prev, h = row
    return Entry(
        seq=seq,
        at=at,
        kind=kind,
        outcome=outcome,
        grant_id=grant_id,
        company=company,
        scopes=tuple(json.loads(scopes)),
        reason=reason,
        content_hash=content_hash,
        detail=json.loads(detail),
        prev_hash=bytes(prev),
        entry_hash=bytes(h),
    )


_STOP = object()

Waiter = Future[Entry] | asyncio.Future[Entry]


def _settle_on_loop(outcomes: list[tuple[asyncio.Future[Entry], Entry | BaseException]]) -> None:
    for future, outcome in outcomes:
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _settle(work: list[tuple[NewEntry, Waiter]], outcomes: list[Entry | BaseException]) -> None:
    """Resolve each waiter; asyncio futures are resolved on their own loop, one call per loop."""
    per_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for (_, waiter), outcome in zip(work, outcomes, strict=True):
        if isinstance(waiter, asyncio.Future):
            per_loop.setdefault(waiter.get_loop(), []).append((waiter, outcome))
        elif isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
    for loop, outcomes_there in per_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_settle_on_loop, outcomes_there)


class AuditLog:
    """The access log of one vault. Thread-safe; one writer thread does every write."""

    def __init__(self, path: Path, *, key: crypto.SecretKey) -> None:
        self.path = path
        self._key = key
        _create_private(path)
        self._write = _connect(path)
        if self._write.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None:
            # A new (empty) log is keyed from its first entry; a non-empty one without the
            # mark stays unmarked, so that it does not verify.
            self._write.execute(_SET_FORMAT, (str(CHAIN_FORMAT),))
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        self._read = _connect(path)
        self._read_lock = threading.Lock()
        row = self._write.execute("SELECT seq, entry_hash FROM head WHERE id = 1").fetchone()
        self._seq: int = row[0] if row else 0
        self._head: bytes = bytes(row[1]) if row else GENESIS
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._writer, name="audit-writer", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AuditLog(path={str(self.path)!r}, <keyed>)"

    @classmethod
    def in_home(cls, home: Path, *, key: crypto.SecretKey) -> AuditLog:
        return cls(home / FILENAME, key=key)

    # --- writing ---------------------------------------------------------------------------

    def append(self, entry: NewEntry) -> Future[Entry]:
        """Queue ``entry``; the future resolves with the stored entry once it is durable."""
        future: Future[Entry] = Future()
        self._enqueue(entry, future)
        return future

    def append_awaitable(self, entry: NewEntry) -> asyncio.Future[Entry]:
        """Queue ``entry`` from a coroutine; await the result to know it is durable."""
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._enqueue(entry, future)
        return future

    def _enqueue(self, entry: NewEntry, waiter: Waiter) -> None:
        if self._closed:
            raise errors.VaultStateError("the access log is closed")
        self._queue.put((entry, waiter))

    def append_sync(self, entry: NewEntry) -> Entry:
        """Append and wait until the entry is durable."""
        return self.append(entry).result()

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # everything that queued up while the last commit ran
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            work = [i for i in batch if isinstance(i, tuple)]
            if work:
                self._commit(work)
            for waiter in batch:
                if isinstance(waiter, threading.Event):
                    waiter.set()
            if any(i is _STOP for i in batch):
                return

    def _commit(self, work: list[tuple[NewEntry, Waiter]]) -> None:
        seq, head = self._seq, self._head
        rows = []
        stored = []
        for entry, _ in work:
            seq += 1
            scopes_json = json.dumps(list(entry.scopes), separators=(",", ":"))
            detail_json = json.dumps(
                entry.detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            entry_hash = chain_hash(self._key, head, canonical(seq, entry))
            rows.append(
                (
                    seq, entry.at, entry.kind, entry.grant_id, entry.company, scopes_json,
                    entry.outcome, entry.reason, entry.content_hash, detail_json, head, entry_hash,
                )
            )
            stored.append(
                Entry(
                    seq, entry.at, entry.kind, entry.outcome, entry.grant_id, entry.company,
                    tuple(entry.scopes), entry.reason, entry.content_hash, dict(entry.detail),
                    head, entry_hash,
                )
            )
            head = entry_hash
        try:
            self._write.execute("BEGIN IMMEDIATE")
            self._write.executemany(_INSERT, rows)
            self._write.execute(_SET_HEAD, (seq, head, head_mac(self._key, seq, head)))
            self._write.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._write.in_transaction:
                self._write.execute("ROLLBACK")
            failure = errors.CorruptFile(f"the access log could not be written: {exc}")
            _settle(work, [failure] * len(work))
            return
        self._seq, self._head = seq, head
        _settle(work, list(stored))

    def flush(self) -> None:
        """Wait until everything appended so far is durable."""
        done = threading.Event()
        self._queue.put(done)
        done.wait()

    def close(self) -> None:
        """Write what is queued, stop the writer and close the files."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._write.close()
        with self._read_lock:
            self._read.close()

    # --- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            yield self._read

    def entries(self, *, limit: int = 100, kind: str | None = None) -> list[Entry]:
        """The newest ``limit`` entries (optionally of one kind), oldest first."""
        with self._reader() as conn:
            if kind is None:
                rows = conn.execute(_SELECT + " ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(
                    _SELECT + " WHERE kind = ? ORDER BY seq DESC LIMIT ?", (kind, limit)
                ).fetchall()
        return [_row_to_entry(r) for r in reversed(rows)]

    def for_grant(self, grant_id: int, *, kind: str) -> list[Entry]:
        """Every entry of ``kind`` about one grant, oldest first."""
        with self._reader() as conn:
            rows = conn.execute(
                _SELECT + " WHERE grant_id = ? AND kind = ? ORDER BY seq", (grant_id, kind)
            ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def of_kind(self, kind: str, *, since: float = 0.0) -> list[Entry]:
        """Every entry of ``kind`` at or after ``since``, oldest first."""
        with self._reader() as conn:
            rows = conn.execute(
                _SELECT + " WHERE kind = ? AND at >= ? ORDER BY seq", (kind, since)
            ).fetchall()
        return [_row_to_entry(r) for r in rows]

    def release_counts(self, *, since: float = 0.0) -> tuple[dict[int, int], dict[str, int]]:
        """Releases made, per grant (all time) and per company (at or after ``since``)."""
        with self._reader() as conn:
            per_grant = dict(
                conn.execute(
                    "SELECT grant_id, COUNT(*) FROM entries WHERE kind = ? AND outcome = ? "
                    "GROUP BY grant_id",
                    (RELEASE, RELEASED),
                ).fetchall()
            )
            per_company = dict(
                conn.execute(
                    "SELECT company, COUNT(*) FROM entries WHERE kind = ? AND outcome = ? "
                    "AND at >= ? GROUP BY company",
                    (RELEASE, RELEASED, since),
                ).fetchall()
            )
        return per_grant, per_company

    def disclosures(
        self,
    ) -> list[tuple[str, dict[str, float] | None, int | None, tuple[str, ...]]]:
        """What releases of noisy scopes disclosed, once per distinct (company, disclosure):
        the company, the noisy entries it received for the first time (``revealed``:
        keyed digest → ε) or, for a release logged before noise was memoised, that
        release's noise epoch (``noisy_epoch``), and the scopes."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT DISTINCT company, json_extract(detail, '$.revealed'), "
                "json_extract(detail, '$.noisy_epoch'), scopes FROM entries "
                "WHERE kind = ? AND outcome = ? AND company IS NOT NULL AND "
                "(json_extract(detail, '$.revealed') IS NOT NULL "
                "OR json_extract(detail, '$.noisy_epoch') IS NOT NULL)",
                (RELEASE, RELEASED),
            ).fetchall()
        return [
            (str(company), json.loads(revealed) if revealed is not None else None,
             int(epoch) if epoch is not None else None, tuple(json.loads(scopes)))
            for company, revealed, epoch, scopes in rows
        ]

    def release_summary(
        self, *, period_seconds: int
    ) -> list[tuple[str, int, tuple[str, ...], int]]:
        """Releases made, grouped: (company, period number ``at // period_seconds``,
        scopes, how many)."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT company, CAST(at / ? AS INTEGER), scopes, COUNT(*) FROM entries "
                "WHERE kind = ? AND outcome = ? AND company IS NOT NULL GROUP BY 1, 2, 3",
                (period_seconds, RELEASE, RELEASED),
            ).fetchall()
        return [(str(company), int(period), tuple(json.loads(scopes)), int(count))
                for company, period, scopes, count in rows]

    def replay_floor(self) -> float:
        """The latest restore's floor for ``issued_at`` (0 when no restore set one)."""
        with self._reader() as conn:
            row = conn.execute(
                "SELECT MAX(json_extract(detail, '$.replay_floor')) FROM entries WHERE kind = ?",
                (RESTORE,),
            ).fetchone()
        return float(row[0] or 0.0)

    def verify(self) -> Verification:
        """Recompute the keyed chain; report the first entry that does not fit."""
        with self._reader() as conn:
            return _verify(conn, self._key)


def _verify(conn: sqlite3.Connection, key: crypto.SecretKey) -> Verification:
    format_row = conn.execute(_FORMAT).fetchone()
    count = 0
    prev = GENESIS
    for row in conn.execute(_SELECT + " ORDER BY seq"):
        count += 1
        entry = _row_to_entry(row)
        if format_row is None or format_row[0] != str(CHAIN_FORMAT):
            return Verification(False, count, entry.seq)  # not keyed: rewritten without the key
        expected = chain_hash(
            key, prev, canonical(entry.seq, entry, scopes_json=row[5], detail_json=row[9])
        )
        if (
            entry.seq != count
            or not hmac.compare_digest(entry.prev_hash, prev)
            or not hmac.compare_digest(entry.entry_hash, expected)
        ):
            return Verification(False, count, entry.seq)
        prev = entry.entry_hash
    head = conn.execute("SELECT seq, entry_hash, mac FROM head WHERE id = 1").fetchone()
    if head is None:
        intact = count == 0
    else:
        stored_seq, stored_hash, mac = head[0], bytes(head[1]), bytes(head[2] or b"")
        intact = (stored_seq == count and hmac.compare_digest(stored_hash, prev)
                  and hmac.compare_digest(mac, head_mac(key, stored_seq, stored_hash)))
    if not intact:
        return Verification(False, count, count + 1)
    return Verification(True, count, None)


def verify_file(path: Path, *, key: crypto.SecretKey) -> Verification:
    """Verify the log at ``path`` without starting a writer (an absent log is empty; a file
    that is not a log fails at its first entry)."""
    if not path.exists():
        return Verification(True, 0, None)
    try:
        conn = _connect(path)
    except sqlite3.DatabaseError:
        return Verification(False, 0, 1)
    try:
        return _verify(conn, key)
    except sqlite3.DatabaseError:
        return Verification(False, 0, 1)
    finally:
        conn.close()


def migrate_to_keyed(path: Path, *, key: crypto.SecretKey) -> None:
    """Re-chain a format-1 (unkeyed) log under ``key``, in one transaction; a no-op for a
    missing or already keyed log. Entries after a break in the old chain keep their old
    hashes, so the keyed log reports the break at the same entry the old one did."""
    if not path.exists():
        return
    conn = _connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute(_FORMAT).fetchone() is None:
            _rechain(conn, key)
            conn.execute(_SET_FORMAT, (str(CHAIN_FORMAT),))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _rechain(conn: sqlite3.Connection, key: crypto.SecretKey) -> None:
    old_prev = new_prev = GENESIS
    count = 0
    for row in conn.execute(_SELECT + " ORDER BY seq").fetchall():
        entry = _row_to_entry(row)
        body = canonical(entry.seq, entry, scopes_json=row[5], detail_json=row[9])
        count += 1
        if (entry.seq != count or entry.prev_hash != old_prev
                or entry.entry_hash != _unkeyed_chain_hash(old_prev, body)):
            return  # the old chain breaks here: leave the rest (and the head) as it is
        old_prev = entry.entry_hash
        keyed = chain_hash(key, new_prev, body)
        conn.execute("UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE seq = ?",
                     (new_prev, keyed, entry.seq))
        new_prev = keyed
    head = conn.execute("SELECT seq, entry_hash FROM head WHERE id = 1").fetchone()
    if head is not None and (head[0], bytes(head[1])) == (count, old_prev):
        conn.execute(_SET_HEAD, (count, new_prev, head_mac(key, count, new_prev)))


def snapshot_file(path: Path, target: Path) -> None:
    """A consistent copy of the log at ``path`` into the new file ``target``."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()
