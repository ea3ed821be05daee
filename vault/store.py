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

Tampering (THREATS row 36). Facts, secrets and derived values are rewritten in place, so
each row also carries a ``row_version`` that its associated data binds (token format 2),
and the ``integrity`` row keeps a manifest of the vault — every such row's current version,
the owner's address, and a keyed running digest of the event ids — under an HMAC whose key
comes from a random integrity secret sealed like any other (so it survives key rotation).
Someone with the files but not the passphrase can still delete or roll back rows, but
:meth:`Vault.check` then names them: an older ciphertext put back opens only as its old
version, a deleted row or event is missing from the manifest's picture, and the manifest
itself cannot be re-MACed. The access log's chain is keyed from the same secret
(:meth:`Vault.access_log_key`). The owner's own deletions (``forget_*``) go through the
same writer, which re-keys the event digest to what stays (docs/encryption.md).

Damage is contained (THREATS row 3): a value that fails to open stops only what needs it.
Values that are functions of the events (the aggregates, the summary, the derived values)
are rebuilt by :meth:`Vault.repair` (and by an import that finds them damaged), which moves
events that no longer open into the ``quarantine`` table. A damaged fact, key or secret
cannot be rebuilt: the error names the backup to restore (``backups.json`` remembers the
backups this vault wrote or was restored from).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from vault import audit, crypto, derive, errors, match
from vault._files import (
    LOCK_NAME,
    crash_point,
    create_private_file,
    ensure_private_dir,
    write_atomically,
)
from vault.eth.eip712 import address_of
from vault.identity import FACT_NAMES, Event, EventKind, Fact
from vault.keyfile import KEYFILE_NAME, Keyfile
from vault.scopes import MOODS
from vault.scopes import scope as catalog_entry

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DB_NAME = "vault.db"
BACKUPS_NAME = "backups.json"
#: Rows sealed + inserted per executemany; one transaction still covers the whole import.
BATCH = 2_000
_OWNER_KEY = "owner_key"
_INTEGRITY_KEY = "integrity_key"
_AGGREGATES = "state:aggregates"
_SUMMARY = "state:summary"
#: The owner's own genres for artists, channels and series (`vault genres set`).
_TAUGHT = "state:taught_genres"
#: Named random secrets (:meth:`Vault.secret`), made when the vault is created.
NAMED_SECRETS = ("noise",)
#: Rows every vault holds from its creation on; one missing was deleted (THREATS row 36).
REQUIRED_SECRETS = (_OWNER_KEY, _INTEGRITY_KEY, _AGGREGATES, _SUMMARY,
                    *(f"secret:{name}" for name in NAMED_SECRETS))
#: Rows that are functions of the events (and facts): `vault repair` rebuilds them.
_REBUILDABLE = (_AGGREGATES, _SUMMARY)
_BACKUPS_KEPT = 20
_EVENT_ID = struct.Struct(">Q")


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
    """One declared fact; ``value`` seals its JSON at ("facts", name, "value", row_version)."""

    __tablename__ = "facts"
    name: str = Field(primary_key=True)
    key_version: int
    value: bytes
    row_version: int = 0


class SecretRow(SQLModel, table=True):
    """The owner's key, the integrity secret, named random secrets and the sealed
    aggregates/summary state."""

    __tablename__ = "secrets"
    name: str = Field(primary_key=True)
    key_version: int
    value: bytes
    row_version: int = 0


class DerivedRow(SQLModel, table=True):
    """One scope's materialised value, sealed at ("derived", scope, "value", row_version)."""

    __tablename__ = "derived"
    scope: str = Field(primary_key=True)
    key_version: int
    value: bytes
    row_version: int = 0


class QuarantineRow(SQLModel, table=True):
    """An event that no longer opened, moved out of ``events`` by `vault repair` as it was
    stored (its id stays counted by the event digest)."""

    __tablename__ = "quarantine"
    id: int = Field(primary_key=True)
    key_version: int
    dedupe: bytes
    payload: bytes
    quarantined_at: int


class IntegrityRow(SQLModel, table=True):
    """The vault's manifest (plain JSON, no personal value) and its HMAC."""

    __tablename__ = "integrity"
    id: int = Field(default=1, primary_key=True)
    manifest: bytes
    mac: bytes


def _table(model: type[SQLModel]) -> sqlalchemy.Table:
    table: sqlalchemy.Table = model.__table__  # type: ignore[attr-defined]
    return table


_SCHEMA, _EVENTS, _FACTS, _SECRETS, _DERIVED, _QUARANTINE, _INTEGRITY = (
    _table(m) for m in (SchemaVersion, EventRow, FactRow, SecretRow, DerivedRow,
                        QuarantineRow, IntegrityRow)
)
#: (table, key column) of every table whose rows are rewritten in place; the sealed column
#: is ``value``.
_KEYED = (("facts", "name"), ("secrets", "name"), ("derived", "scope"))


def _create_v1(conn: Connection, keyring: crypto.Keyring) -> None:
    # Frozen DDL: the models describe the newest schema, this is what version 1 was.
    for table, key in (("facts", "name"), ("secrets", "name"), ("derived", "scope")):
        conn.exec_driver_sql(
            f"CREATE TABLE {table} ({key} VARCHAR NOT NULL, key_version INTEGER NOT NULL, "
            f"value BLOB NOT NULL, PRIMARY KEY ({key}))"
        )
    conn.exec_driver_sql(
        "CREATE TABLE events (id INTEGER NOT NULL, key_version INTEGER NOT NULL, "
        "dedupe BLOB NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (id), UNIQUE (dedupe))"
    )
    conn.exec_driver_sql(
        "CREATE TABLE schema_version (id INTEGER NOT NULL, version INTEGER NOT NULL, "
        "PRIMARY KEY (id))"
    )


def _add_integrity(conn: Connection, keyring: crypto.Keyring) -> None:
    """Version 2: row versions, the manifest, the quarantine. An existing vault's keyed rows
    are re-sealed as version 1 of themselves and its missing named secrets made now (the
    last time one may be made); its access log is re-chained under the key on open."""
    for table, _ in _KEYED:
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0"
        )
    SQLModel.metadata.create_all(conn, tables=[_QUARANTINE, _INTEGRITY])
    owner_token = conn.execute(select(_SECRETS.c.value).where(
        _SECRETS.c.name == _OWNER_KEY)).scalar_one_or_none()
    if owner_token is None:
        return  # a new vault: `Vault.create` writes every row and the manifest
    owner_key = keyring.open(owner_token, table="secrets", row=_OWNER_KEY, column="value")
    integrity = crypto.SecretKey.generate()
    manifest = _Manifest(owner=address_of(owner_key), log=_LOG_PENDING)
    ids = conn.exec_driver_sql("SELECT id FROM events ORDER BY id").scalars().all()
    keys = _IntegrityKeys(integrity)
    manifest.add_events(keys, ids)
    put = _Writer(conn, keyring, manifest, keys)
    for table, key_col in _KEYED:
        for name, token in conn.exec_driver_sql(
            f"SELECT {key_col}, value FROM {table}"  # noqa: S608
        ).all():
            try:
                value = keyring.open(token, table=table, row=name, column="value")
            except errors.InvalidToken:
                manifest.rows.setdefault(table, {})[name] = 0  # damaged before: stays so
                continue
            put.upsert(table, name, value)
    put.secret(_INTEGRITY_KEY, integrity.reveal())
    for name in NAMED_SECRETS:
        if f"secret:{name}" not in manifest.rows.get("secrets", {}):
            put.secret(f"secret:{name}", os.urandom(32))
    put.finish()


#: MIGRATIONS[i] upgrades schema version i to i + 1; version 0 is an empty database.
MIGRATIONS: tuple[Callable[[Connection, crypto.Keyring], None], ...] = (
    _create_v1, _add_integrity,
)
SCHEMA_VERSION = len(MIGRATIONS)


# -- values that leave the store ---------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    new_events: int = 0
    duplicate_events: int = 0
    facts: int = 0
    #: Ids of stored events that no longer opened and were quarantined by the import's
    #: automatic repair (it runs when the aggregates or summary do not open).
    quarantined: tuple[int, ...] = ()


@dataclass(frozen=True)
class ForgetSummary:
    """What a forget deleted (or, as a plan, would delete): counts and fact names only."""

    events: int = 0
    #: Events deleted per source (importer names and "manual": public vocabulary).
    events_by_source: dict[str, int] = field(default_factory=dict)
    facts: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.events and not self.facts


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
    quarantined_events: int
    #: Records these figures would have read but could not open (`vault check` says more).
    unreadable: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Problems `vault check` reports (DamagedRecord.problem).
DAMAGED = "does not open (altered, moved or damaged)"
ROLLED_BACK = "an older version of the row was put back"
DELETED = "deleted: the vault wrote it and it is gone"
UNEXPECTED = "not written by this vault"
QUARANTINED = "quarantined: it did not open and its data is lost"


@dataclass(frozen=True)
class DamagedRecord:
    table: str
    row: str
    column: str
    problem: str = DAMAGED

    def __str__(self) -> str:
        return f"{self.table} {self.row} {self.column}: {self.problem}"


@dataclass(frozen=True)
class RepairSummary:
    """What `vault repair` did; ``still_damaged`` is what only a backup can bring back."""

    rebuilt: tuple[str, ...]
    quarantined: tuple[int, ...]
    dedupe_keys_fixed: int
    still_damaged: tuple[DamagedRecord, ...]


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


_LOG_KEYED = "keyed"
_LOG_PENDING = "pending"  # the access log still needs audit.migrate_to_keyed


class _IntegrityKeys:
    """The MAC keys derived from the vault's integrity secret."""

    __slots__ = ("events", "log", "manifest")

    def __init__(self, secret: crypto.SecretKey) -> None:
        self.manifest = crypto.derive_subkey(secret, purpose=b"vault manifest v1")
        self.events = crypto.derive_subkey(secret, purpose=b"vault event ids v1")
        self.log = crypto.derive_subkey(secret, purpose=b"vault access log v1")

    def __repr__(self) -> str:
        return "_IntegrityKeys(<redacted>)"


@dataclass
class _Manifest:
    """What the vault last wrote: each keyed row's version, the owner's address, and a keyed
    running digest over every event id ever stored (``events`` + ``quarantine``).

    Plain JSON (row names are public vocabulary, the address is public on chain) under an
    HMAC; ``generation`` counts write transactions and is the version each one gives the
    rows it writes.
    """

    owner: str
    log: str = _LOG_KEYED
    generation: int = 0
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    events: int = 0
    last_event: int = 0
    event_digest: str = bytes(32).hex()

    def add_events(self, keys: _IntegrityKeys, ids: Iterable[int]) -> None:
        digest = bytes.fromhex(self.event_digest)
        for event_id in ids:
            digest = hmac.digest(keys.events.reveal(), digest + _EVENT_ID.pack(event_id),
                                 "sha256")
            self.events += 1
            self.last_event = max(self.last_event, event_id)
        self.event_digest = digest.hex()

    def recount_events(self, keys: _IntegrityKeys, ids: Iterable[int]) -> None:
        """The digest and count over ``ids`` (ascending) after a forget deleted events on
        purpose; ``last_event`` stays, so a forgotten event's id is never handed out again
        (an old copy of its row put back then shows as not written by the vault)."""
        self.events, self.event_digest = 0, bytes(32).hex()
        self.add_events(keys, ids)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    def mac(self, keys: _IntegrityKeys) -> bytes:
        return hmac.digest(keys.manifest.reveal(), self.to_bytes(), "sha256")

    @classmethod
    def read(cls, conn: Connection, keys: _IntegrityKeys | None) -> _Manifest:
        """The stored manifest once its MAC verifies; CorruptFile otherwise (or when there
        are no keys to verify it with)."""
        row = conn.execute(select(_INTEGRITY.c.manifest, _INTEGRITY.c.mac)).first()
        if row is None:
            raise errors.CorruptFile("the vault's integrity record is missing")
        try:
            manifest = cls(**json.loads(row.manifest))
        except (ValueError, TypeError):
            raise errors.CorruptFile("the vault's integrity record is damaged") from None
        if keys is None or not hmac.compare_digest(manifest.mac(keys), bytes(row.mac)):
            raise errors.CorruptFile("the vault's integrity record does not verify")
        return manifest

    @classmethod
    def read_unverified(cls, conn: Connection) -> _Manifest | None:
        """For what may be shown when the keys are damaged (the owner's address) only."""
        raw = conn.execute(select(_INTEGRITY.c.manifest)).scalar_one_or_none()
        try:
            return None if raw is None else cls(**json.loads(raw))
        except (ValueError, TypeError):
            return None


def _event_from(canonical: bytes) -> Event:
    kind, occurred_at, source, attrs = json.loads(canonical)
    return Event(EventKind(kind), occurred_at, source, attrs)


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
        # Either may be damaged: the vault still opens, and only what needs them stops.
        with self._read() as conn:
            self._integrity = self._integrity_keys(conn)
            try:
                self.owner_address = address_of(self._secret_value(conn, _OWNER_KEY))
            except errors.CorruptFile:
                manifest = _Manifest.read_unverified(conn)
                self.owner_address = manifest.owner if manifest else "unknown"

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
        """A new vault in ``home`` (created 0700): new data key, new owner key, new
        integrity and named secrets."""
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
            from eth_account import Account  # only here and for signing: it loads py_ecc

            owner = Account.create()
            integrity = crypto.SecretKey.generate()
            with _transaction(engine, write=True) as conn:
                _migrate(conn, keyring)
                put = _Writer(conn, keyring, _Manifest(owner=owner.address),
                              _IntegrityKeys(integrity))
                put.secret(_INTEGRITY_KEY, integrity.reveal())
                put.secret(_OWNER_KEY, bytes(owner.key))
                for name in NAMED_SECRETS:
                    put.secret(f"secret:{name}", os.urandom(32))
                put.secret(_AGGREGATES, derive.Aggregates.empty().to_json())
                put.secret(_SUMMARY, json.dumps(asdict(_Summary())).encode())
                put.derived(derive.derive_all({}, derive.Aggregates.empty(),
                                              now=int(clock())))
                put.finish()
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
            try:
                keyfile = Keyfile.read(home)
            except errors.CorruptFile as error:
                raise errors.CorruptFile(str(error), hint=restore_hint(home)) from None
            keyring, kek = keyfile.unlock(passphrase)
            db = home / DB_NAME
            if not db.is_file() or db.is_symlink():
                raise errors.CorruptFile(f"{db} is missing", hint=restore_hint(home))
            engine = _engine(db)
            with _transaction(engine, write=True) as conn:
                _migrate(conn, keyring)
            vault = cls(home, keyfile=keyfile, keyring=keyring,
                        kek=kek, engine=engine, lock_fd=lock_fd, clock=clock)
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            vault._finish_log_migration()
        except BaseException:
            vault.close()
            raise
        return vault

    def close(self) -> None:
        if self._lock_fd < 0:
            return
        self._engine.dispose()
        os.close(self._lock_fd)
        self._lock_fd = -1

    def _finish_log_migration(self) -> None:
        """Re-chain an access log from before the keyed chain, once (a crash in between
        leaves the manifest saying so, and the next open does it again)."""
        with self._read() as conn:
            try:
                pending = _Manifest.read(conn, self._integrity).log == _LOG_PENDING
            except errors.CorruptFile:
                return  # `vault check` names it; the vault still opens for what it can do
        if pending and self._integrity is not None:
            audit.migrate_to_keyed(self.home / audit.FILENAME, key=self._integrity.log)
            with self._writing() as put:
                put.manifest.log = _LOG_KEYED

    # -- owner -------------------------------------------------------------------------

    def owner_account(self) -> LocalAccount:
        """The owner's Ethereum account, for signing approvals and receipts."""
        with self._read() as conn:
            key = self._secret_value(conn, _OWNER_KEY)
        from eth_account import Account

        account: LocalAccount = Account.from_key(key)
        return account

    def access_log_key(self) -> crypto.SecretKey:
        """The key of the access log's chain (:mod:`vault.audit`)."""
        if self._integrity is None:
            raise self._damaged(_INTEGRITY_KEY)
        return self._integrity.log

    # -- import ------------------------------------------------------------------------

    def import_records(self, records: Iterable[Event | Fact]) -> ImportSummary:
        """Store ``records`` in ONE transaction: all of them, or (on any error) none.
        An event already stored (same canonical bytes) is counted as a duplicate. When the
        aggregates or the summary do not open they are first rebuilt from the events."""
        if len(self._keyring.versions()) > 1:
            raise errors.VaultStateError(
                "a data-key rotation is unfinished",
                hint="run `vault rotate-key` to finish it, then import again",
            )
        new = dupes = facts = 0
        quarantined: tuple[int, ...] = ()
        with self._writing() as put:
            conn = put.conn
            try:
                aggregates = self._aggregates(conn)
                summary = self._summary(conn)
            except errors.CorruptFile:
                aggregates, summary, quarantined, _ = self._rebuild(put)
            next_id = put.manifest.last_event + 1
            taught = self._taught(conn)
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
                    put.events(rows)
                    aggregates.fold(fresh, taught=taught)
                    new += len(rows)
                crash_point("import-batch")
            put.secret(_AGGREGATES, aggregates.to_json())
            put.secret(_SUMMARY, json.dumps(asdict(summary)).encode())
            put.derived(derive.derive_all(self._facts(conn), aggregates, now=self._now()))
            crash_point("import-before-commit")
        return ImportSummary(new_events=new, duplicate_events=dupes, facts=facts,
                             quarantined=quarantined)

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
        """The materialised (sealed) value of each scope; time-dependent scopes, and any
        whose stored value does not open, are derived afresh from facts and aggregates at
        ``now`` (never an event scan)."""
        wanted = list(scopes)
        with self._read() as conn:
            rows = {r.scope: r for r in conn.execute(
                select(_DERIVED).where(_DERIVED.c.scope.in_(wanted))
            )}
            values: dict[str, dict[str, Any]] = {}
            fresh_needed = [n for n in wanted if n in derive.TIME_DEPENDENT]
            for name in wanted:
                if name not in rows:
                    catalog_entry(name)  # UnknownScope; a catalog scope's row was deleted
                    fresh_needed.append(name)
                    continue
                try:
                    values[name] = json.loads(self._keyring.open(
                        rows[name].value, table="derived", row=name, column="value",
                        row_version=rows[name].row_version))
                except errors.InvalidToken:
                    fresh_needed.append(name)
            if fresh_needed:
                fresh = derive.derive_all(self._facts(conn), self._aggregates(conn),
                                          now=self._now())
                values.update({n: fresh[n] for n in fresh_needed})
        return values

    def history(self) -> match.History:
        """The match scorer's summary of every play and view that opens (a damaged event is
        skipped: `vault check` names it). A scan of the events, so callers cache it."""
        history = match.History()
        with self._read() as conn:
            for row_id, payload in conn.exec_driver_sql(
                "SELECT id, payload FROM events ORDER BY id"
            ):
                try:
                    history.fold([_event_from(self._keyring.open(
                        payload, table="events", row=row_id, column="payload"))])
                except (errors.InvalidToken, ValueError, TypeError):
                    continue
        return history

    def teach_genre(self, kind: str, name: str, genre: str | None) -> None:
        """Give an artist, channel or series the owner's own genre (None: forget it), stored
        sealed, and re-fold every event with it: in ONE transaction, like an import."""
        with self._writing() as put:
            try:
                taught = derive.teach_genre(self._taught(put.conn), kind, name, genre)
            except ValueError as error:
                raise errors.InputError(str(error)) from None
            put.secret(_TAUGHT, json.dumps(taught, sort_keys=True).encode())
            self._rederive(put)

    def taught_genres(self) -> dict[str, dict[str, str]]:
        with self._read() as conn:
            return self._taught(conn)

    def genre_coverage(self) -> dict[str, int]:
        """:func:`vault.derive.genre_coverage` of everything imported."""
        with self._read() as conn:
            return derive.genre_coverage(self._aggregates(conn))

    def derivation_basis(self, scope: str) -> dict[str, Any]:
        with self._read() as conn:
            return derive.basis(self._facts(conn), self._aggregates(conn), scope)

    def secret(self, name: str) -> bytes:
        """One of the vault's named random 32-byte secrets (e.g. "noise"), made with the
        vault. One that is missing was deleted: it is never made again, since every answer
        that depended on it would silently change (THREATS row 36)."""
        if name not in NAMED_SECRETS:
            raise ValueError(f"unknown secret {name!r}")
        with self._read() as conn:
            return self._secret_value(conn, f"secret:{name}")

    # -- forget ------------------------------------------------------------------------

    def forget_source(self, source: str, *, dry_run: bool = False) -> ForgetSummary:
        """Delete every event imported from ``source`` (an importer's name, or "manual");
        with ``dry_run``, only count them. A scan, since an event's source is sealed inside
        it; one that no longer opens is quarantined by the rebuild, as `vault repair` does."""

        def chosen(conn: Connection) -> list[tuple[int, str]]:
            found: list[tuple[int, str]] = []
            cursor = 0
            while batch := conn.exec_driver_sql(
                "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (cursor, BATCH),
            ).all():
                cursor = batch[-1][0]
                for row_id, payload in batch:
                    try:
                        event = _event_from(self._keyring.open(
                            payload, table="events", row=row_id, column="payload"))
                    except (errors.InvalidToken, ValueError, TypeError):
                        continue
                    if event.source == source:
                        found.append((row_id, source))
            return found

        return self._forget(chosen, lambda conn: [], dry_run=dry_run, nothing=errors.NotFound(
            f"no events from the source {source!r} are stored",
            hint="`vault stats` lists the sources stored (events_by_source)"))

    def forget_records(
        self, records: Iterable[Event | Fact], *, what: str, dry_run: bool = False
    ) -> ForgetSummary:
        """Delete what importing ``records`` (``what``: a file read again) stored: each
        event stored with the same canonical bytes, found by its dedupe key, and each fact
        whose stored value is still the record's (one set since is the owner's, and stays)."""
        sources: dict[bytes, str] = {}
        facts: dict[str, Any] = {}
        for record in records:
            if isinstance(record, Fact):
                facts[record.name] = record.value
            elif isinstance(record, Event):
                sources[self._keyring.current.mac(record.canonical())] = record.source
            else:
                raise TypeError(f"not an Event or Fact: {type(record).__name__}")

        def chosen(conn: Connection) -> list[tuple[int, str]]:
            found: list[tuple[int, str]] = []
            keys = iter(sources)
            while batch := list(islice(keys, BATCH)):
                found += [(row.id, sources[bytes(row.dedupe)]) for row in conn.execute(
                    select(_EVENTS.c.id, _EVENTS.c.dedupe).where(_EVENTS.c.dedupe.in_(batch)))]
            return sorted(found)

        return self._forget(
            chosen, lambda conn: [n for n, v in self._facts(conn).items()
                                  if n in facts and facts[n] == v],
            dry_run=dry_run, nothing=errors.NotFound(
                f"nothing in {what} is stored (never imported, or already forgotten)"))

    def forget_fact(self, name: str, *, dry_run: bool = False) -> ForgetSummary:
        """Delete one declared fact (InputError for a name that is not a fact)."""
        if name not in FACT_NAMES:
            raise errors.InputError(
                f"unknown fact {name!r}; known facts: {', '.join(sorted(FACT_NAMES))}")
        return self._forget(lambda conn: [], lambda conn: list(conn.execute(
            select(_FACTS.c.name).where(_FACTS.c.name == name)).scalars()),
                            dry_run=dry_run, nothing=errors.NotFound(
                                f"the fact {name!r} is not set",
                                hint="`vault facts list` shows the facts set"))

    def _forget(
        self,
        events: Callable[[Connection], list[tuple[int, str]]],
        facts: Callable[[Connection], list[str]],
        *,
        dry_run: bool,
        nothing: errors.NotFound,
    ) -> ForgetSummary:
        """Delete the chosen events — (id, source) — and facts, rebuild what the events
        determine and re-derive, in ONE transaction; then checkpoint the WAL, so the
        deleted rows' pages (zeroed by ``secure_delete``) leave it too. ``nothing`` is
        raised, and nothing written, when nothing was chosen."""
        if len(self._keyring.versions()) > 1:
            raise errors.VaultStateError(
                "a data-key rotation is unfinished (events are found by their dedupe keys)",
                hint="run `vault rotate-key` to finish it, then forget again")

        def plan(conn: Connection) -> tuple[list[int], ForgetSummary]:
            chosen = events(conn)
            by_source: dict[str, int] = {}
            for _, source in chosen:
                by_source[source] = by_source.get(source, 0) + 1
            return [row_id for row_id, _ in chosen], ForgetSummary(
                events=len(chosen), events_by_source=dict(sorted(by_source.items())),
                facts=tuple(sorted(facts(conn))))

        if dry_run:
            with self._read() as conn:
                summary = plan(conn)[1]
            if summary.empty:
                raise nothing
            return summary
        with self._writing() as put:
            ids, summary = plan(put.conn)
            if summary.empty:
                raise nothing  # rolls the transaction back: not even the manifest is rewritten
            if ids:
                put.forget_events(ids)
            for name in summary.facts:
                put.forget_fact(name)
            self._rederive(put)
            crash_point("forget-before-commit")
        with self._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return summary

    # -- inspection --------------------------------------------------------------------

    def stats(self) -> VaultStats:
        """Counts; a damaged aggregate or summary leaves its figures empty and is named in
        ``unreadable`` instead of stopping the command."""
        unreadable: list[str] = []
        with self._read() as conn:
            try:
                by_kind = self._aggregates(conn).counts
            except errors.CorruptFile:
                by_kind, unreadable = {}, [*unreadable, _AGGREGATES]
            try:
                summary = self._summary(conn)
            except errors.CorruptFile:
                summary, unreadable = _Summary(), [*unreadable, _SUMMARY]
            n_events = conn.execute(
                select(sqlalchemy.func.count()).select_from(_EVENTS)).scalar_one()
            quarantined = conn.execute(
                select(sqlalchemy.func.count()).select_from(_QUARANTINE)).scalar_one()
            fact_names = sorted(conn.execute(select(_FACTS.c.name)).scalars())
            scopes = conn.execute(select(sqlalchemy.func.count()).select_from(
                _DERIVED)).scalar_one()
            version = conn.execute(select(_SCHEMA.c.version)).scalar_one()
        db = self.home / DB_NAME
        size = sum(p.stat().st_size for p in (db, db.with_name(DB_NAME + "-wal")) if p.exists())
        return VaultStats(
            owner_address=self.owner_address,
            events=int(n_events),
            events_by_kind=dict(sorted(by_kind.items())),
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
            quarantined_events=int(quarantined),
            unreadable=unreadable,
        )

    def check(self) -> list[DamagedRecord]:
        """Name every record that does not open, was rolled back, deleted or quarantined,
        and every break in the access log's keyed chain. Structural damage of the database
        file itself is reported as one record too."""
        damaged: list[DamagedRecord] = []
        with self._read() as conn:
            problems = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            if problems != ["ok"]:
                damaged.append(DamagedRecord("database", DB_NAME, "file", problems[0][:200]))
            manifest: _Manifest | None = None
            try:
                manifest = _Manifest.read(conn, self._integrity)
            except errors.CorruptFile as error:
                damaged.append(DamagedRecord("integrity", "manifest", "mac", str(error)))
            damaged += self._check_events(conn, manifest)
            damaged += self._check_keyed(conn, manifest)
        if self._integrity is not None:
            log = audit.verify_file(self.home / audit.FILENAME, key=self._integrity.log)
            if not log.ok:
                damaged.append(DamagedRecord(
                    "access log", str(log.first_bad_seq), "entry",
                    "the keyed chain breaks here (edited, deleted or truncated)"))
        return damaged

    def _check_events(self, conn: Connection, manifest: _Manifest | None) -> list[DamagedRecord]:
        damaged: list[DamagedRecord] = []
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
        damaged += [DamagedRecord("events", str(i), "payload", QUARANTINED) for i in
                    conn.exec_driver_sql("SELECT id FROM quarantine ORDER BY id").scalars()]
        if manifest is None or self._integrity is None:
            return damaged
        ids = conn.exec_driver_sql(
            "SELECT id FROM events UNION ALL SELECT id FROM quarantine ORDER BY id"
        ).scalars().all()
        present = _Manifest(owner=manifest.owner)
        present.add_events(self._integrity, ids)
        if hmac.compare_digest(present.event_digest, manifest.event_digest):
            return damaged
        expected = set(range(1, manifest.last_event + 1))
        if manifest.events == manifest.last_event and set(ids) < expected:
            # Ids are handed out 1, 2, 3, …: the missing ones are exactly the deleted events.
            return damaged + [DamagedRecord("events", str(i), "row", DELETED)
                              for i in sorted(expected - set(ids))]
        return [*damaged, DamagedRecord(
            "events", "*", "rows",
            f"the keyed digest of event ids does not match ({len(ids)} stored, "
            f"{manifest.events} written): events were deleted or replaced")]

    def _check_keyed(self, conn: Connection, manifest: _Manifest | None) -> list[DamagedRecord]:
        damaged: list[DamagedRecord] = []
        for table, key_col in _KEYED:
            expected = dict(manifest.rows.get(table, {})) if manifest else {}
            for name, token, row_version in conn.exec_driver_sql(
                f"SELECT {key_col}, value, row_version FROM {table} "  # noqa: S608
                f"ORDER BY {key_col}"
            ):
                written = expected.pop(name, None)
                try:
                    self._keyring.open(token, table=table, row=name, column="value",
                                       row_version=row_version)
                except errors.InvalidToken:
                    damaged.append(DamagedRecord(table, str(name), "value"))
                    continue
                if manifest is None:
                    continue
                if written is None:
                    damaged.append(DamagedRecord(table, str(name), "value", UNEXPECTED))
                elif written != row_version:
                    damaged.append(DamagedRecord(
                        table, str(name), "value",
                        f"{ROLLED_BACK} (version {row_version}; the vault wrote {written})"))
            damaged += [DamagedRecord(table, name, "value", DELETED) for name in sorted(expected)]
        reported = {(d.table, d.row) for d in damaged}
        present = set(conn.exec_driver_sql("SELECT name FROM secrets").scalars())
        damaged += [DamagedRecord("secrets", name, "value", DELETED)
                    for name in REQUIRED_SECRETS
                    if name not in present and ("secrets", name) not in reported]
        return damaged

    # -- repair ------------------------------------------------------------------------

    def repair(self) -> RepairSummary:
        """Rebuild what the events determine — aggregates, summary, derived values, dedupe
        keys — and quarantine events that no longer open, in ONE transaction (a crash
        leaves the vault as it was). What only a backup can bring back is reported."""
        with self._writing() as put:
            quarantined, fixed = self._rederive(put)
            crash_point("repair-before-commit")
        still = tuple(d for d in self.check() if d.problem != QUARANTINED)
        return RepairSummary(rebuilt=(_AGGREGATES, _SUMMARY, "derived"),
                             quarantined=quarantined, dedupe_keys_fixed=fixed,
                             still_damaged=still)

    def _rederive(self, put: _Writer) -> tuple[tuple[int, ...], int]:
        """Aggregates, summary and derived values rebuilt from every event that opens and
        written: (quarantined ids, dedupe keys fixed)."""
        aggregates, summary, quarantined, fixed = self._rebuild(put)
        put.secret(_AGGREGATES, aggregates.to_json())
        put.secret(_SUMMARY, json.dumps(asdict(summary)).encode())
        put.derived(derive.derive_all(self._facts(put.conn), aggregates, now=self._now()))
        return quarantined, fixed

    def _rebuild(
        self, put: _Writer
    ) -> tuple[derive.Aggregates, _Summary, tuple[int, ...], int]:
        """Aggregates and summary from every event that opens: (aggregates, summary,
        quarantined ids, dedupe keys fixed). Writes the quarantine and dedupe fixes."""
        aggregates, summary = derive.Aggregates.empty(), _Summary()
        quarantined: list[int] = []
        fixed = 0
        cursor = 0
        taught = self._taught(put.conn)
        while batch := put.conn.exec_driver_sql(
            "SELECT id, dedupe, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (cursor, BATCH),
        ).all():
            cursor = batch[-1][0]
            events: list[Event] = []
            for row_id, dedupe, payload in batch:
                try:
                    canonical = self._keyring.open(payload, table="events", row=row_id,
                                                   column="payload")
                    event = _event_from(canonical)
                except (errors.InvalidToken, ValueError, TypeError):
                    put.quarantine(row_id, now=self._now())
                    quarantined.append(row_id)
                    continue
                mac = self._keyring.get(crypto.token_key_version(payload)).mac(canonical)
                if not hmac.compare_digest(mac, dedupe):
                    put.conn.execute(update(_EVENTS).where(_EVENTS.c.id == row_id)
                                     .values(dedupe=mac))
                    fixed += 1
                events.append(event)
                summary.add(event)
            aggregates.fold(events, taught=taught)
            crash_point("repair-batch")
        return aggregates, summary, tuple(quarantined), fixed

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
            with self._writing() as put:
                done = self._rotate_batch(put, current, batch_size, cursor)
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
        self, put: _Writer, key: crypto.DataKey, limit: int, cursor: list[int]
    ) -> int:
        ring, v, conn = self._keyring, key.version, put.conn
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
        for table, key_col in _KEYED:
            found = conn.exec_driver_sql(
                f"SELECT {key_col}, value, row_version FROM {table} "  # noqa: S608
                "WHERE key_version != ? LIMIT ?",
                (v, limit),
            ).all()
            for name, token, row_version in found:
                put.upsert(table, name, ring.open(token, table=table, row=name, column="value",
                                                  row_version=row_version))
            if found:
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
    def _writing(self) -> Iterator[_Writer]:
        """One write transaction whose rows get the next version, closed by a re-MACed
        manifest; refused when the manifest cannot be verified (writing over it would hide
        whatever was done to the vault)."""
        if self._integrity is None:
            raise self._damaged(_INTEGRITY_KEY)
        with _transaction(self._engine, write=True) as conn:
            try:
                manifest = _Manifest.read(conn, self._integrity)
            except errors.CorruptFile as error:
                raise errors.CorruptFile(
                    f"{error}; nothing was written", hint=restore_hint(self.home)
                ) from None
            put = _Writer(conn, self._keyring, manifest, self._integrity)
            yield put
            put.finish()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with _transaction(self._engine, write=False) as conn:
            yield conn

    def _damaged(self, name: str) -> errors.CorruptFile:
        if name in _REBUILDABLE:
            return errors.CorruptFile(f"the vault's {name} record is damaged or missing",
                                      hint="run `vault repair` to rebuild it from the events")
        return errors.CorruptFile(f"the vault's {name} record is damaged or missing",
                                  hint=restore_hint(self.home))

    def _secret_value(self, conn: Connection, name: str) -> bytes:
        row = conn.execute(select(_SECRETS.c.value, _SECRETS.c.row_version).where(
            _SECRETS.c.name == name)).first()
        if row is None:
            raise self._damaged(name)
        try:
            return self._keyring.open(row.value, table="secrets", row=name, column="value",
                                      row_version=row.row_version)
        except errors.InvalidToken:
            raise self._damaged(name) from None

    def _integrity_keys(self, conn: Connection) -> _IntegrityKeys | None:
        try:
            return _IntegrityKeys(crypto.SecretKey(self._secret_value(conn, _INTEGRITY_KEY)))
        except (errors.CorruptFile, ValueError):
            return None

    def _aggregates(self, conn: Connection) -> derive.Aggregates:
        raw = self._secret_value(conn, _AGGREGATES)
        try:
            return derive.Aggregates.from_json(raw)
        except (ValueError, TypeError, KeyError):
            raise self._damaged(_AGGREGATES) from None

    def _taught(self, conn: Connection) -> dict[str, dict[str, str]]:
        """The owner's genres; none until the first `vault genres set`."""
        if conn.execute(select(_SECRETS.c.name).where(_SECRETS.c.name == _TAUGHT)).first() is None:
            return {}
        try:
            taught = json.loads(self._secret_value(conn, _TAUGHT))
        except ValueError:
            raise self._damaged(_TAUGHT) from None
        if not isinstance(taught, dict):
            raise self._damaged(_TAUGHT)
        return taught

    def _summary(self, conn: Connection) -> _Summary:
        try:
            return _Summary(**json.loads(self._secret_value(conn, _SUMMARY)))
        except (ValueError, TypeError):
            raise self._damaged(_SUMMARY) from None

    def _facts(self, conn: Connection) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for name, token, row_version in conn.exec_driver_sql(
            "SELECT name, value, row_version FROM facts ORDER BY name"
        ):
            try:
                facts[name] = json.loads(self._keyring.open(
                    token, table="facts", row=name, column="value", row_version=row_version))
            except errors.InvalidToken:
                raise errors.CorruptFile(
                    f"the fact {name!r} is damaged",
                    hint=f"set it again with `vault facts set {name} …`, or "
                         f"{restore_hint(self.home)}",
                ) from None
        return facts


class _Writer:
    """Sealed upserts inside one transaction, each row at this transaction's version, and
    the manifest that records them (written by :meth:`finish`)."""

    def __init__(
        self, conn: Connection, keyring: crypto.Keyring, manifest: _Manifest,
        keys: _IntegrityKeys,
    ) -> None:
        self.conn = conn
        self.manifest = manifest
        self._keyring = keyring
        self._keys = keys
        self._version = manifest.generation + 1

    def upsert(self, table: str, key: str, value: bytes) -> None:
        token = self._keyring.seal(value, table=table, row=key, column="value",
                                   row_version=self._version)
        key_col = "scope" if table == "derived" else "name"
        self.conn.exec_driver_sql(
            f"INSERT INTO {table} ({key_col}, key_version, value, row_version) "  # noqa: S608
            f"VALUES (?, ?, ?, ?) ON CONFLICT ({key_col}) DO UPDATE SET "
            "key_version = excluded.key_version, value = excluded.value, "
            "row_version = excluded.row_version",
            (key, self._keyring.current.version, token, self._version),
        )
        self.manifest.rows.setdefault(table, {})[key] = self._version

    def secret(self, name: str, value: bytes) -> None:
        self.upsert("secrets", name, value)

    def fact(self, name: str, value: Any) -> None:
        if name not in FACT_NAMES:
            raise errors.InputError(
                f"unknown fact {name!r}; known facts: {', '.join(sorted(FACT_NAMES))}"
            )
        try:
            encoded = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
        except (TypeError, ValueError):
            raise errors.InputError(f"fact {name!r} must be a JSON value") from None
        self.upsert("facts", name, encoded)

    def derived(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        for scope, value in values.items():
            self.upsert("derived", scope,
                        json.dumps(value, sort_keys=True, ensure_ascii=False).encode())
        self.conn.execute(sqlalchemy.delete(_DERIVED).where(
            _DERIVED.c.scope.not_in(list(values))))
        written = self.manifest.rows.setdefault("derived", {})
        for stale in set(written) - set(values):
            del written[stale]

    def events(self, rows: list[tuple[int, int, bytes, bytes]]) -> None:
        """Insert sealed events (id, key version, dedupe, payload), ids ascending."""
        # Driver-level executemany: no per-row ORM or bind-processing cost.
        self.conn.exec_driver_sql(
            "INSERT INTO events (id, key_version, dedupe, payload) VALUES (?, ?, ?, ?)", rows)
        self.manifest.add_events(self._keys, (row[0] for row in rows))

    def quarantine(self, event_id: int, *, now: int) -> None:
        """Move one event, as stored, out of ``events`` (its id stays in the digest)."""
        self.conn.exec_driver_sql(
            "INSERT INTO quarantine (id, key_version, dedupe, payload, quarantined_at) "
            "SELECT id, key_version, dedupe, payload, ? FROM events WHERE id = ?",
            (now, event_id))
        self.conn.exec_driver_sql("DELETE FROM events WHERE id = ?", (event_id,))

    def forget_events(self, ids: list[int]) -> None:
        """Delete events on purpose and re-key the manifest's event digest to what stays."""
        self.conn.exec_driver_sql("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        self.manifest.recount_events(self._keys, self.conn.exec_driver_sql(
            "SELECT id FROM events UNION ALL SELECT id FROM quarantine ORDER BY id"
        ).scalars())

    def forget_fact(self, name: str) -> None:
        self.conn.execute(sqlalchemy.delete(_FACTS).where(_FACTS.c.name == name))
        self.manifest.rows.get("facts", {}).pop(name, None)

    def finish(self) -> None:
        self.manifest.generation = self._version
        self.conn.execute(sqlite_insert(_INTEGRITY).values(
            id=1, manifest=self.manifest.to_bytes(), mac=self.manifest.mac(self._keys),
        ).on_conflict_do_update(index_elements=["id"], set_={
            "manifest": self.manifest.to_bytes(), "mac": self.manifest.mac(self._keys)}))


# -- backups this vault knows of -----------------------------------------------------------


def remember_backup(home: Path, path: Path, *, created_at: int) -> None:
    """Note a backup of this vault (written by it, or the one it was restored from), so that
    an error about a value only a backup can bring back can name it."""
    known = [b for b in _known_backups(home) if b["path"] != str(path.resolve())]
    known.append({"path": str(path.resolve()), "created_at": created_at})
    write_atomically(home / BACKUPS_NAME,
                     json.dumps({"backups": known[-_BACKUPS_KEPT:]}, indent=2).encode())


def _known_backups(home: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((home / BACKUPS_NAME).read_bytes())
        return [b for b in data["backups"]
                if isinstance(b["path"], str) and isinstance(b["created_at"], int)]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # only a hint: a missing or damaged list names no backup


def restore_hint(home: Path) -> str:
    """What to restore: the newest backup this vault knows of that still exists."""
    for known in reversed(_known_backups(home)):
        if Path(known["path"]).is_file():
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(known["created_at"]))
            return (f"restore the backup {known['path']} (made {when}) into an empty folder: "
                    f"`vault restore {known['path']} --home <new folder>`")
    return "restore your latest backup into an empty folder (`vault restore FILE --home DIR`)"


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


def _migrate(conn: Connection, keyring: crypto.Keyring) -> None:
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
        MIGRATIONS[step](conn, keyring)
    if current != SCHEMA_VERSION:
        table = _SCHEMA
        conn.execute(sqlite_insert(table).values(id=1, version=SCHEMA_VERSION)
                     .on_conflict_do_update(index_elements=["id"],
                                            set_={"version": SCHEMA_VERSION}))
