"""The encrypted store: facts, events, the owner's key and derived values, every one sealed.

Files in the vault's folder (0700): ``keyfile.json`` (see :mod:`vault.keyfile`),
``vault.db`` (SQLite, WAL, ``synchronous=FULL``, 0600) and ``vault.lock`` (an exclusive
``flock`` held by the one process that has the vault open: a second one gets VaultBusy).

Every personal value is sealed (:mod:`vault.crypto`) with associated data naming its table,
row key and column, so a value copied anywhere else fails to open. What stays plain: row
ids, fact/secret/scope names (public vocabulary), the key version of each row, and each
event's dedupe key, an HMAC under a key derived from the data key (it reveals equality of
two events to nobody without the key). An event's kind, time and source are inside its
sealed payload.

The vault exists once ``keyfile.json`` exists: ``create`` builds the database first and
writes the keyfile last, and ``open`` never reads more than the keyfile and a few rows
(one KDF, nothing proportional to the vault's size).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from vault import crypto, derive, errors
from vault._files import crash_point, create_private_file, ensure_private_dir
from vault.identity import FACT_NAMES, Event, EventKind, Fact
from vault.keyfile import KEYFILE_NAME, Keyfile
from vault.scopes import MOODS

DB_NAME = "vault.db"
LOCK_NAME = "vault.lock"
#: Rows sealed + inserted per executemany; one transaction still covers the whole import.
BATCH = 2_000
_OWNER_KEY = "owner_key"
_AGGREGATES = "state:aggregates"
_SUMMARY = "state:summary"


# -- tables ------------------------------------------------------------------------------


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


class EventRow(SQLModel, table=True):
    """One event; ``payload`` seals ``Event.canonical()`` at ("events", id, "payload")."""

    __tablename__ = "events"
    id: int = Field(primary_key=True)
    key_version: int
    dedupe: bytes = Field(unique=True)
    payload: bytes


class FactRow(SQLModel, table=True):
    """One declared fact; ``value`` seals its JSON at ("facts", name, "value")."""

    __tablename__ = "facts"
    name: str = Field(primary_key=True)
    key_version: int
    value: bytes


class SecretRow(SQLModel, table=True):
    """The owner's key, named random secrets and the sealed aggregates/summary state."""

    __tablename__ = "secrets"
    name: str = Field(primary_key=True)
    key_version: int
    value: bytes


class DerivedRow(SQLModel, table=True):
    """One scope's materialised value, sealed at ("derived", scope, "value")."""

    __tablename__ = "derived"
    scope: str = Field(primary_key=True)
    key_version: int
    value: bytes


def _table(model: type[SQLModel]) -> sqlalchemy.Table:
    table: sqlalchemy.Table = model.__table__  # type: ignore[attr-defined]
    return table


_SCHEMA, _EVENTS, _FACTS, _SECRETS, _DERIVED = (
    _table(m) for m in (SchemaVersion, EventRow, FactRow, SecretRow, DerivedRow)
)
_TABLES = [_SCHEMA, _EVENTS, _FACTS, _SECRETS, _DERIVED]
#: (table, key column, sealed column) of every keyed table, for check and rotation.
_KEYED = (("facts", "name", "value"), ("secrets", "name", "value"), ("derived", "scope", "value"))


def _create_v1(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn, tables=_TABLES)


#: MIGRATIONS[i] upgrades schema version i to i + 1; version 0 is an empty database.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_create_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


# -- values that leave the store ---------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    new_events: int = 0
    duplicate_events: int = 0
    facts: int = 0


@dataclass(frozen=True)
class VaultStats:
    """Counts only; safe to print (no personal value)."""

    owner_address: str
    events: int
    events_by_kind: dict[str, int]
    events_by_source: dict[str, int]
    first_event_at: int | None
    last_event_at: int | None
    facts: list[str]
    scopes: int
    key_version: int
    key_versions: list[int]
    schema_version: int
    kdf: dict[str, int]
    database_bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DamagedRecord:
    table: str
    row: str
    column: str
    problem: str = "does not open (altered, moved or damaged)"

    def __str__(self) -> str:
        return f"{self.table} {self.row} {self.column}: {self.problem}"


@dataclass(frozen=True)
class RotationSummary:
    key_version: int
    rows: int
    resumed: bool


@dataclass
class _Summary:
    """Event counts kept sealed beside the aggregates, for ``stats`` without a scan."""

    by_source: dict[str, int] = field(default_factory=dict)
    first_at: int | None = None
    last_at: int | None = None

    def add(self, ev: Event) -> None:
        self.by_source[ev.source] = self.by_source.get(ev.source, 0) + 1
        at = ev.occurred_at
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


# -- the vault ---------------------------------------------------------------------------


class Vault:
    """An unlocked vault. Holds the process lock until :meth:`close`."""

    home: Path
    owner_address: str

    def __init__(
        self,
        home: Path,
        *,
        keyfile: Keyfile,
        keyring: crypto.Keyring,
        kek: crypto.SecretKey,
        engine: Engine,
        lock_fd: int,
        clock: Callable[[], float],
    ) -> None:
        self.home = home
        self._keyfile = keyfile
        self._keyring = keyring
        self._kek = kek
        self._engine = engine
        self._lock_fd = lock_fd
        self._clock = clock
        self.owner_address = self.owner_account().address

    def __repr__(self) -> str:
        return f"Vault(home={str(self.home)!r}, owner={self.owner_address})"

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        home: Path,
        passphrase: str,
        *,
        kdf: crypto.KdfParams | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Vault:
        """A new vault in ``home`` (created 0700): new data key, new owner key."""
        if not passphrase:
            raise errors.InputError("the passphrase must not be empty")
        ensure_private_dir(home)
        lock_fd = take_lock(home)
        try:
            if (home / KEYFILE_NAME).exists() or (home / KEYFILE_NAME).is_symlink():
                raise errors.VaultExists(f"{home} already holds a vault")
            # A database without a keyfile is the remnant of an interrupted init or
            # restore: nothing in it can ever be opened, so it is safe to replace.
            remove_database(home)
            keyfile, keyring, kek = Keyfile.create(passphrase, kdf or crypto.KDF_DEFAULT)
            os.close(create_private_file(home / DB_NAME))
            engine = _engine(home / DB_NAME)
            owner = Account.create()
            with _transaction(engine, write=True) as conn:
                _migrate(conn)
                put = _Writer(conn, keyring)
                put.secret(_OWNER_KEY, bytes(owner.key))
                put.secret(_AGGREGATES, derive.Aggregates.empty().to_json())
                put.secret(_SUMMARY, json.dumps(asdict(_Summary())).encode())
                put.derived(derive.derive_all({}, derive.Aggregates.empty(),
                                              now=int(clock())))
            crash_point("init-database")
            keyfile.write(home, checkpoint="init-keyfile")
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(home, keyfile=keyfile, keyring=keyring, kek=kek, engine=engine,
                   lock_fd=lock_fd, clock=clock)

    @classmethod
    def open(
        cls, home: Path, passphrase: str, *, clock: Callable[[], float] = time.time
    ) -> Vault:
        """Unlock: one KDF. WrongPassphrase, VaultNotFound, CorruptFile,
        KdfParametersRejected, VaultBusy."""
        if home.is_symlink():
            raise errors.UnsafePath(f"{home} is a symlink")
        if not (home / KEYFILE_NAME).exists():
            raise errors.VaultNotFound(f"no vault in {home}")
        lock_fd = take_lock(home)
        try:
            keyfile = Keyfile.read(home)
            keyring, kek = keyfile.unlock(passphrase)
            db = home / DB_NAME
            if not db.is_file() or db.is_symlink():
                raise errors.CorruptFile(f"{db} is missing")
            engine = _engine(db)
            with _transaction(engine, write=True) as conn:
                _migrate(conn)
            vault = cls(home, keyfile=keyfile, keyring=keyring,
                        kek=kek, engine=engine, lock_fd=lock_fd, clock=clock)
        except BaseException:
            os.close(lock_fd)
            raise
        return vault

    def close(self) -> None:
        if self._lock_fd < 0:
            return
        self._engine.dispose()
        os.close(self._lock_fd)
        self._lock_fd = -1

    # -- owner -------------------------------------------------------------------------

    def owner_account(self) -> LocalAccount:
        """The owner's Ethereum account, for signing approvals and receipts."""
        with self._read() as conn:
            key = self._secret_value(conn, _OWNER_KEY)
        account: LocalAccount = Account.from_key(key)
        return account

    # -- import ------------------------------------------------------------------------

    def import_records(self, records: Iterable[Event | Fact]) -> ImportSummary:
        """Store ``records`` in ONE transaction: all of them, or (on any error) none.
        An event already stored (same canonical bytes) is counted as a duplicate."""
        if len(self._keyring.versions()) > 1:
            raise errors.VaultStateError(
                "a data-key rotation is unfinished",
                hint="run `vault rotate-key` to finish it, then import again",
            )
        new = dupes = facts = 0
        with self._write() as conn:
            put = _Writer(conn, self._keyring)
            aggregates = derive.Aggregates.from_json(self._secret_value(conn, _AGGREGATES))
            summary = _Summary(**json.loads(self._secret_value(conn, _SUMMARY)))
            next_id = int(conn.execute(
                select(sqlalchemy.func.coalesce(sqlalchemy.func.max(_EVENTS.c.id), 0))
            ).scalar_one()) + 1
            iterator = iter(records)
            while batch := list(islice(iterator, BATCH)):
                events: dict[bytes, tuple[Event, bytes]] = {}
                for record in batch:
                    if isinstance(record, Fact):
                        put.fact(record.name, record.value)
                        facts += 1
                        continue
                    if not isinstance(record, Event):
                        raise TypeError(f"not an Event or Fact: {type(record).__name__}")
                    canonical = record.canonical()
                    mac = self._keyring.current.mac(canonical)
                    if mac in events:
                        dupes += 1
                    else:
                        events[mac] = (record, canonical)
                if not events:
                    continue
                stored = set(conn.execute(
                    select(_EVENTS.c.dedupe).where(_EVENTS.c.dedupe.in_(list(events)))
                ).scalars())
                dupes += len(stored)
                rows: list[tuple[int, int, bytes, bytes]] = []
                fresh: list[Event] = []
                seal = self._keyring.current.seal
                version = self._keyring.current.version
                for mac, (ev, canonical) in events.items():
                    if mac in stored:
                        continue
                    rows.append((next_id, version, mac,
                                 seal(canonical, table="events", row=next_id, column="payload")))
                    fresh.append(ev)
                    summary.add(ev)
                    next_id += 1
                if rows:
                    # Driver-level executemany: no per-row ORM or bind-processing cost.
                    conn.exec_driver_sql(
                        "INSERT INTO events (id, key_version, dedupe, payload) "
                        "VALUES (?, ?, ?, ?)", rows)
                    aggregates.fold(fresh)
                    new += len(rows)
                crash_point("import-batch")
            put.secret(_AGGREGATES, aggregates.to_json())
            put.secret(_SUMMARY, json.dumps(asdict(summary)).encode())
            put.derived(derive.derive_all(self._facts(conn), aggregates, now=self._now()))
            crash_point("import-before-commit")
        return ImportSummary(new_events=new, duplicate_events=dupes, facts=facts)

    def set_fact(self, name: str, value: Any) -> None:
        self.import_records([Fact(name, value)])

    def facts(self) -> dict[str, Any]:
        with self._read() as conn:
            return self._facts(conn)

    def record_mood(self, mood: str, *, at: int | None = None) -> None:
        if mood not in MOODS:
            raise errors.InputError(f"unknown mood {mood!r}; one of: {', '.join(MOODS)}")
        when = int(self._clock()) if at is None else at
        self.import_records([Event(EventKind.MOOD, when, "manual", {"mood": mood})])

    # -- derived values ----------------------------------------------------------------

    def derived(self, scopes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The materialised (sealed) value of each scope; time-dependent scopes are
        re-derived from facts and aggregates at ``now`` (never an event scan)."""
        wanted = list(scopes)
        with self._read() as conn:
            rows = {r.scope: r.value for r in conn.execute(
                select(_DERIVED).where(
                    _DERIVED.c.scope.in_(wanted))
            )}
            values: dict[str, dict[str, Any]] = {}
            for name in wanted:
                if name not in rows:
                    raise errors.UnknownScope(f"unknown scope {name!r}")
                values[name] = json.loads(
                    self._keyring.open(rows[name], table="derived", row=name, column="value")
                )
            fresh_needed = [n for n in wanted if n in derive.TIME_DEPENDENT]
            if fresh_needed:
                fresh = derive.derive_all(self._facts(conn), self._aggregates(conn),
                                          now=self._now())
                values.update({n: fresh[n] for n in fresh_needed})
        return values

    def derivation_basis(self, scope: str) -> dict[str, Any]:
        with self._read() as conn:
            return derive.basis(self._facts(conn), self._aggregates(conn), scope)

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret made on first use and kept sealed (e.g. "noise")."""
        key = f"secret:{name}"
        with self._write() as conn:
            row = conn.execute(select(_SECRETS.c.value).where(
                _SECRETS.c.name == key)).scalar_one_or_none()
            if row is not None:
                return self._keyring.open(row, table="secrets", row=key, column="value")
            value = os.urandom(32)
            _Writer(conn, self._keyring).secret(key, value)
            return value

    # -- inspection --------------------------------------------------------------------

    def stats(self) -> VaultStats:
        with self._read() as conn:
            aggregates = self._aggregates(conn)
            summary = _Summary(**json.loads(self._secret_value(conn, _SUMMARY)))
            events = conn.execute(select(sqlalchemy.func.count()).select_from(_EVENTS))
            n_events = int(events.scalar_one())
            fact_names = sorted(conn.execute(
                select(_FACTS.c.name)).scalars())
            scopes = conn.execute(select(sqlalchemy.func.count()).select_from(
                _DERIVED)).scalar_one()
            version = conn.execute(select(_SCHEMA.c.version)).scalar_one()
        db = self.home / DB_NAME
        size = sum(p.stat().st_size for p in (db, db.with_name(DB_NAME + "-wal")) if p.exists())
        return VaultStats(
            owner_address=self.owner_address,
            events=n_events,
            events_by_kind=dict(sorted(aggregates.counts.items())),
            events_by_source=dict(sorted(summary.by_source.items())),
            first_event_at=summary.first_at,
            last_event_at=summary.last_at,
            facts=fact_names,
            scopes=int(scopes),
            key_version=self._keyring.current.version,
            key_versions=self._keyring.versions(),
            schema_version=int(version),
            kdf=self._keyfile.params.to_json(),
            database_bytes=size,
        )

    def check(self) -> list[DamagedRecord]:
        """Open every sealed value; name each one that does not open. Structural damage
        of the database file itself is reported as one record too."""
        damaged: list[DamagedRecord] = []
        with self._read() as conn:
            problems = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            if problems != ["ok"]:
                damaged.append(DamagedRecord("database", DB_NAME, "file", problems[0][:200]))
            for row_id, dedupe, payload in conn.exec_driver_sql(
                "SELECT id, dedupe, payload FROM events ORDER BY id"
            ):
                try:
                    canonical = self._keyring.open(payload, table="events", row=row_id,
                                                   column="payload")
                except errors.InvalidToken:
                    damaged.append(DamagedRecord("events", str(row_id), "payload"))
                    continue
                key = self._keyring.get(crypto.token_key_version(payload))
                if not hmac.compare_digest(key.mac(canonical), dedupe):
                    damaged.append(DamagedRecord("events", str(row_id), "dedupe",
                                                 "dedupe key does not match the record"))
            for table, key_col, col in _KEYED:
                for name, token in conn.exec_driver_sql(
                    f"SELECT {key_col}, {col} FROM {table} ORDER BY {key_col}"  # noqa: S608
                ):
                    try:
                        self._keyring.open(token, table=table, row=name, column=col)
                    except errors.InvalidToken:
                        damaged.append(DamagedRecord(table, str(name), col))
        return damaged

    # -- keys --------------------------------------------------------------------------

    def change_passphrase(
        self, new_passphrase: str, *, kdf: crypto.KdfParams | None = None
    ) -> None:
        """Rewrap the data keys under a KEK from ``new_passphrase``: only the keyfile
        changes, replaced atomically (a crash leaves the old or the new one)."""
        if not new_passphrase:
            raise errors.InputError("the passphrase must not be empty")
        keyfile, kek = self._keyfile.rewrapped(self._keyring, new_passphrase, params=kdf)
        keyfile.write(self.home, checkpoint="passphrase-keyfile")
        self._keyfile, self._kek = keyfile, kek

    def rotate_key(
        self, *, batch_size: int = 1_000, progress: Callable[[int], None] | None = None
    ) -> RotationSummary:
        """Re-seal every row under a new data key; resumable after a crash.

        1. add the new key to the keyfile as current (atomic replace);
        2. re-seal rows whose key version is not current, one transaction per batch;
        3. once none is left, drop the old keys from the keyfile (atomic replace).
        A crash anywhere leaves every row under a key the keyfile still holds.
        """
        resumed = len(self._keyring.versions()) > 1
        if not resumed:
            self._keyfile, self._keyring = self._keyfile.with_new_key(self._kek, self._keyring)
            self._keyfile.write(self.home, checkpoint="rotate-keyfile")
        current = self._keyring.current
        rows = 0
        cursor = [0]  # last event id re-sealed; ids only grow, so each row is seen once
        while True:
            with self._write() as conn:
                done = self._rotate_batch(conn, current, batch_size, cursor)
            rows += done
            if progress is not None:
                progress(done)
            if done == 0:
                break
            crash_point("rotate-batch")
        self._keyfile = self._keyfile.without_old_keys()
        self._keyfile.write(self.home, checkpoint="rotate-finish")
        self._keyring = crypto.Keyring({current.version: current}, current.version)
        return RotationSummary(key_version=current.version, rows=rows, resumed=resumed)

    def _rotate_batch(
        self, conn: Connection, key: crypto.DataKey, limit: int, cursor: list[int]
    ) -> int:
        ring, v = self._keyring, key.version
        events = conn.exec_driver_sql(
            "SELECT id, payload FROM events WHERE id > ? AND key_version != ? "
            "ORDER BY id LIMIT ?", (cursor[0], v, limit)
        ).all()
        if events:
            cursor[0] = events[-1][0]
            updates = []
            for row_id, payload in events:
                canonical = ring.open(payload, table="events", row=row_id, column="payload")
                updates.append({"i": row_id, "v": v, "d": key.mac(canonical),
                                "p": key.seal(canonical, table="events", row=row_id,
                                              column="payload")})
            conn.execute(
                update(_EVENTS).where(_EVENTS.c.id == sqlalchemy.bindparam("i")).values(
                    key_version=sqlalchemy.bindparam("v"), dedupe=sqlalchemy.bindparam("d"),
                    payload=sqlalchemy.bindparam("p")),
                updates,
            )
            return len(updates)
        for table, key_col, col in _KEYED:
            found = conn.exec_driver_sql(
                f"SELECT {key_col}, {col} FROM {table} WHERE key_version != ? LIMIT ?",  # noqa: S608
                (v, limit),
            ).all()
            if found:
                conn.exec_driver_sql(
                    f"UPDATE {table} SET key_version = ?, {col} = ? WHERE {key_col} = ?",  # noqa: S608
                    [(v, key.seal(ring.open(token, table=table, row=name, column=col),
                                  table=table, row=name, column=col), name)
                     for name, token in found],
                )
                return len(found)
        return 0

    # -- backup ------------------------------------------------------------------------

    def verify_passphrase(self, passphrase: str) -> None:
        """WrongPassphrase unless ``passphrase`` is the one that unlocks this vault."""
        if not hmac.compare_digest(self._keyfile.kek(passphrase).reveal(), self._kek.reveal()):
            raise errors.WrongPassphrase("wrong passphrase")

    def snapshot(self, target: Path) -> None:
        """A consistent copy of the database (sealed values as stored) at ``target``."""
        with self._engine.connect() as conn:
            conn.exec_driver_sql("VACUUM INTO ?", (str(target),))
            conn.commit()

    @property
    def keyfile_bytes(self) -> bytes:
        return self._keyfile.to_bytes()

    @property
    def kdf_params(self) -> crypto.KdfParams:
        return self._keyfile.params

    # -- internals ---------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with _transaction(self._engine, write=True) as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with _transaction(self._engine, write=False) as conn:
            yield conn

    def _secret_value(self, conn: Connection, name: str) -> bytes:
        token = conn.execute(select(_SECRETS.c.value).where(
            _SECRETS.c.name == name)).scalar_one_or_none()
        if token is None:
            raise errors.CorruptFile(f"the vault database lacks its {name} record")
        return self._keyring.open(token, table="secrets", row=name, column="value")

    def _aggregates(self, conn: Connection) -> derive.Aggregates:
        return derive.Aggregates.from_json(self._secret_value(conn, _AGGREGATES))

    def _facts(self, conn: Connection) -> dict[str, Any]:
        return {
            name: json.loads(self._keyring.open(token, table="facts", row=name, column="value"))
            for name, token in conn.exec_driver_sql("SELECT name, value FROM facts ORDER BY name")
        }


class _Writer:
    """Sealed upserts inside one transaction."""

    def __init__(self, conn: Connection, keyring: crypto.Keyring) -> None:
        self._conn = conn
        self._keyring = keyring

    def _upsert(self, table: sqlalchemy.Table, key_col: str, key: str, value: bytes) -> None:
        token = self._keyring.seal(value, table=table.name, row=key, column="value")
        version = self._keyring.current.version
        stmt = sqlite_insert(table).values({key_col: key, "key_version": version, "value": token})
        self._conn.execute(stmt.on_conflict_do_update(
            index_elements=[key_col], set_={"key_version": version, "value": token}))

    def secret(self, name: str, value: bytes) -> None:
        self._upsert(_SECRETS, "name", name, value)

    def fact(self, name: str, value: Any) -> None:
        if name not in FACT_NAMES:
            raise errors.InputError(
                f"unknown fact {name!r}; known facts: {', '.join(sorted(FACT_NAMES))}"
            )
        try:
            encoded = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
        except (TypeError, ValueError):
            raise errors.InputError(f"fact {name!r} must be a JSON value") from None
        self._upsert(_FACTS, "name", name, encoded)

    def derived(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        table = _DERIVED
        for scope, value in values.items():
            self._upsert(table, "scope", scope,
                         json.dumps(value, sort_keys=True, ensure_ascii=False).encode())
        self._conn.execute(sqlalchemy.delete(table).where(table.c.scope.not_in(list(values))))


# -- SQLite plumbing ---------------------------------------------------------------------


def take_lock(home: Path) -> int:
    """Take the vault's exclusive lock (released by the kernel even on kill -9)."""
    path = home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise errors.VaultBusy(f"another process is using the vault in {home}") from None
    return fd


def remove_database(home: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        (home / (DB_NAME + suffix)).unlink(missing_ok=True)


def _engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA secure_delete=ON")  # old ciphertexts do not linger in free pages
        # 64 MiB page cache: the dedupe index of a million events stays mostly in memory
        # during a bulk import instead of being re-read from the WAL.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    return engine


@contextlib.contextmanager
def _transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """BEGIN IMMEDIATE for writers (the lock is taken up front), plain BEGIN for readers;
    COMMIT on success, ROLLBACK on any exception; a damaged file becomes CorruptFile."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
    except sqlalchemy.exc.DatabaseError as exc:
        if type(exc.orig) is sqlite3.DatabaseError or "malformed" in str(exc.orig):
            raise errors.CorruptFile("the vault database is damaged") from None
        raise


def _migrate(conn: Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; refuse a database from a newer vault."""
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).first()
    current = 0
    if exists:
        current = int(conn.execute(select(_SCHEMA.c.version)).scalar_one())
    if current > SCHEMA_VERSION:
        raise errors.VaultStateError(
            f"the vault database has schema version {current}; this vault knows {SCHEMA_VERSION}",
            hint="upgrade vault",
        )
    for step in range(current, SCHEMA_VERSION):
        MIGRATIONS[step](conn)
    if current != SCHEMA_VERSION:
        table = _SCHEMA
        conn.execute(sqlite_insert(table).values(id=1, version=SCHEMA_VERSION)
                     .on_conflict_do_update(index_elements=["id"],
                                            set_={"version": SCHEMA_VERSION}))
