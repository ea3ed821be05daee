"""The local index of one owner's requests on one ledger: SQLite tables in their own file
(``<home>/index.sqlite``, own metadata, so it never mixes with the vault's store) and an
in-memory copy of every request that the hot path reads — :meth:`LedgerIndex.grant` is one
dict lookup, no SQLite, no chain.

Raw events are kept (table ``events``) because a reorg must be undone and a request's state
is a fold over its events; the ``requests``, ``endpoints`` and ``company_names`` tables are
that fold. A
contract read (:meth:`LedgerIndex.confirm`) overrides what the events said and marks the
state confirmed; freshness (:meth:`LedgerIndex.check_fresh`) is the last sync round and the
chain head's block time, so callers fail closed on a stale index or a frozen node.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from eth_utils.address import to_checksum_address
from sqlalchemy import Engine, Table, delete, event, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, create_engine

from vault import errors
from vault.eth.abi import LedgerEvent, codec
from vault.grant import Grant, Member, Status

INDEX_FILE = "index.sqlite"
#: Bumped when the tables change; an index of another version is emptied and synced anew
#: (it is a cache of the chain). 2: one owner per index, the head's timestamp. 3: a group
#: request's members. 4: the names companies published (``CompanyDescribed``).
SCHEMA_VERSION = 4
#: How many recorded block hashes (sync checkpoints) are kept to find a fork point.
CHECKPOINTS_KEPT = 256
#: The owner ``getRequest`` reports for a group request (its owners are in ``groupMembers``).
NO_OWNER = "0x0000000000000000000000000000000000000000"


def index_path(home: Path) -> Path:
    return home / INDEX_FILE


# --------------------------------------------------------------------------- tables


class _IndexModel(SQLModel, registry=registry()):
    """Base of the index's tables: their own metadata, apart from the vault's store."""


class RequestRow(_IndexModel, table=True):
    """A request as folded from its events. Wei and uint64 values are decimal text:
    SQLite integers are signed 64-bit."""

    __tablename__ = "requests"

    id: int = Field(primary_key=True)
    owner: str = Field(index=True)
    company: str = Field(index=True)
    scopes: str
    price: str
    duration: int
    max_releases: int
    catalog_hash: str
    purpose: str
    status: int
    starts_at: int
    claimed: str
    owner_earned: str | None = None
    company_refund: str | None = None
    #: A group request's members as JSON ``[[owner, approved, share], …]``; ``[]`` otherwise.
    members: str = "[]"
    requested_block: int
    updated_block: int


class EndpointRow(_IndexModel, table=True):
    __tablename__ = "endpoints"

    account: str = Field(primary_key=True)
    url: str
    terms_hash: str
    block_number: int


class CompanyNameRow(_IndexModel, table=True):
    """The name and URL a company that asked this owner published last (its own words)."""

    __tablename__ = "company_names"

    account: str = Field(primary_key=True)
    name: str
    url: str
    block_number: int


class EventRow(_IndexModel, table=True):
    """Every ledger event seen, in chain order; ``args`` is JSON (big ints as text)."""

    __tablename__ = "events"

    block_number: int = Field(primary_key=True)
    log_index: int = Field(primary_key=True)
    block_hash: str
    transaction_hash: str
    name: str
    request_id: int | None = Field(default=None, index=True)
    account: str | None = Field(default=None, index=True)
    args: str


class CheckpointRow(_IndexModel, table=True):
    """The hash of a block the index synced up to; the newest is the sync cursor."""

    __tablename__ = "checkpoints"

    block_number: int = Field(primary_key=True)
    block_hash: str


class CursorRow(_IndexModel, table=True):
    """One row: which ledger this index follows and how fresh it is."""

    __tablename__ = "sync_cursor"

    id: int = Field(default=1, primary_key=True)
    chain_id: int
    ledger: str
    owner: str
    block_number: int
    block_hash: str
    head_block: int
    head_timestamp: int = 0
    last_synced_at: float | None = None


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


_REQUESTS = _table(RequestRow)
_ENDPOINTS = _table(EndpointRow)
_NAMES = _table(CompanyNameRow)
_EVENTS = _table(EventRow)
_CHECKPOINTS = _table(CheckpointRow)
_CURSOR = _table(CursorRow)


@dataclass(frozen=True)
class _Cursor:
    block_number: int
    block_hash: str
    head_block: int
    head_timestamp: int
    last_synced_at: float | None


# --------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class EndpointView:
    account: str
    url: str
    terms_hash: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class CompanyNameView:
    """What ``CompanyDescribed`` said, as the company wrote it: nothing on chain checks it."""

    account: str
    name: str
    url: str
    block_number: int


@dataclass(frozen=True)
class IndexLag:
    """How far behind the chain the index is, as of its last sync round."""

    synced_block: int | None
    head_block: int | None
    last_synced_at: float | None
    head_timestamp: int | None = None

    def head_age(self, now: float) -> float:
        """Seconds between the chain head's block time and ``now``; infinite if unknown."""
        return float("inf") if not self.head_timestamp else max(0.0, now - self.head_timestamp)

    @property
    def blocks_behind(self) -> int | None:
        if self.synced_block is None or self.head_block is None:
            return None
        return max(0, self.head_block - self.synced_block)

    def seconds_since_sync(self, now: float) -> float:
        """Seconds since the last completed sync round; infinite if it never completed."""
        return float("inf") if self.last_synced_at is None else max(0.0, now - self.last_synced_at)



# --------------------------------------------------------------------------- folding


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    return value


def _fold(view: Grant | None, name: str, args: dict[str, Any], block: int) -> Grant | None:
    """The request after event ``name``; ``None`` while it has no AccessRequested.

    A group request (``GroupAccessRequested``, one copy per owner) folds into this owner's
    part of it: ``owner`` is the owner the event copy is for and ``price`` its share (an
    equal part, the remainder to the first owner), which is what it earns over the grant;
    ``members`` lists every owner with its share. This owner's events say only its own
    approval; the others' come from the contract read (:meth:`LedgerIndex.confirm`).
    """
    if name == "GroupAccessRequested":
        owners = [to_checksum_address(o) for o in args["owners"]]
        owner = to_checksum_address(args["owner"])
        price = int(args["price"])
        members = tuple(
            Member(o, False, price // len(owners) + (price % len(owners) if i == 0 else 0))
            for i, o in enumerate(owners)
        )
        share = next((m.share for m in members if m.owner == owner), 0)
        return replace(
            cast(Grant, _fold(None, "AccessRequested", args, block)), owner=owner, price=share,
            members=members,
        )
    if name == "AccessRequested":
        return Grant(
            id=int(args["id"]),
            owner=to_checksum_address(args["owner"]),
            company=to_checksum_address(args["company"]),
            scopes=int(args["scopes"]),
            price=int(args["price"]),
            duration=int(args["duration"]),
            max_releases=int(args["maxReleases"]),
            catalog_hash=bytes(args["catalogHash"]),
            purpose=str(args["purpose"]),
            status=Status.PENDING,
            starts_at=0,
            claimed=0,
            owner_earned=None,
            company_refund=None,
            requested_block=block,
            updated_block=block,
        )
    if view is None:
        return None
    if name == "GroupMemberApproved":
        return replace(
            view, updated_block=block, confirmed_at=None,
            members=tuple(replace(m, approved=m.approved or m.owner == view.owner)
                          for m in view.members),
        )
    if name in ("AccessApproved", "GroupAccessApproved"):
        return replace(
            view, status=Status.ACTIVE, starts_at=int(args["startsAt"]), updated_block=block,
            confirmed_at=None, members=tuple(replace(m, approved=True) for m in view.members),
        )
    if name in ("AccessDenied", "GroupAccessDenied"):
        return replace(view, status=Status.DENIED, updated_block=block, confirmed_at=None)
    if name == "RequestCancelled":
        return replace(view, status=Status.CANCELLED, updated_block=block, confirmed_at=None)
    if name in ("AccessRevoked", "GroupAccessRevoked"):
        return replace(
            view,
            confirmed_at=None,
            status=Status.REVOKED,
            # The contract freezes a revoked grant's earnings into ``claimed``.
            claimed=int(args["ownerEarned"]),
            owner_earned=int(args["ownerEarned"]),
            company_refund=int(args["companyRefund"]),
            updated_block=block,
        )
    if name == "EarningsClaimed":
        return replace(view, claimed=view.claimed + int(args["amount"]), updated_block=block)
    return view


def _args_from_json(name: str, text: str) -> dict[str, Any]:
    """Event args back from the ``events`` table, typed by the event's ABI inputs."""
    raw = json.loads(text)
    out: dict[str, Any] = {}
    for abi_input in codec().event_inputs[name]:
        value, kind = raw[abi_input["name"]], str(abi_input["type"])
        if kind.startswith(("uint", "int")):
            out[abi_input["name"]] = int(value)
        elif kind.startswith("bytes"):
            out[abi_input["name"]] = bytes.fromhex(value[2:])
        else:
            out[abi_input["name"]] = value
    return out


def _row_of(view: Grant) -> dict[str, Any]:
    return {
        "id": view.id,
        "owner": view.owner,
        "company": view.company,
        "scopes": str(view.scopes),
        "price": str(view.price),
        "duration": view.duration,
        "max_releases": view.max_releases,
        "catalog_hash": "0x" + view.catalog_hash.hex(),
        "purpose": view.purpose,
        "status": int(view.status),
        "starts_at": view.starts_at,
        "claimed": str(view.claimed),
        "owner_earned": None if view.owner_earned is None else str(view.owner_earned),
        "company_refund": None if view.company_refund is None else str(view.company_refund),
        "members": json.dumps([[m.owner, m.approved, str(m.share)] for m in view.members]),
        "requested_block": view.requested_block,
        "updated_block": view.updated_block,
    }


def _view_of(row: Any) -> Grant:
    return Grant(
        id=row.id,
        owner=row.owner,
        company=row.company,
        scopes=int(row.scopes),
        price=int(row.price),
        duration=row.duration,
        max_releases=row.max_releases,
        catalog_hash=bytes.fromhex(row.catalog_hash[2:]),
        purpose=row.purpose,
        status=Status(row.status),
        starts_at=row.starts_at,
        claimed=int(row.claimed),
        owner_earned=None if row.owner_earned is None else int(row.owner_earned),
        company_refund=None if row.company_refund is None else int(row.company_refund),
        members=tuple(
            Member(owner, bool(approved), int(share))
            for owner, approved, share in json.loads(row.members)
        ),
        requested_block=row.requested_block,
        updated_block=row.updated_block,
    )


# --------------------------------------------------------------------------- the index


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class LedgerIndex:
    """The local index of one owner's requests on one ledger (chain id + address), in SQLite
    and in memory.

    Opening an index file that follows another ledger or owner (or was written by another
    schema version) empties it first: a fresh devnet or a redeployed ledger must never be
    answered from the old one's events.
    """

    def __init__(
        self, path: Path | str, *, chain_id: int, ledger_address: str, owner: str
    ) -> None:
        self.path = Path(path)
        self.chain_id = chain_id
        self.ledger_address = to_checksum_address(ledger_address)
        self.owner = to_checksum_address(owner)
        self.engine: Engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False}
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        with self.engine.begin() as connection:
            version = connection.exec_driver_sql("PRAGMA user_version").scalar()
            if version != SCHEMA_VERSION:
                _IndexModel.metadata.drop_all(connection)
                connection.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _IndexModel.metadata.create_all(self.engine)
        self._lock = threading.Lock()
        self._grants: dict[int, Grant] = {}
        self._by_company: dict[str, set[int]] = {}
        self._endpoints: dict[str, EndpointView] = {}
        self._names: dict[str, CompanyNameView] = {}
        self._cursor: _Cursor | None = None
        #: The cursor's block when the last sync round completed (None before the first).
        self._round_block: int | None = None
        self._load()

    # ------------------------------------------------------------- reads (hot path)

    def grant(self, request_id: int) -> Grant | None:
        """The request/grant ``request_id`` as last synced; ``None`` if the index has not seen
        it. One dict lookup: no SQLite, no chain."""
        return self._grants.get(request_id)

    def requests(self) -> list[Grant]:
        """Every request addressed to this index's owner, oldest first."""
        with self._lock:
            return [self._grants[i] for i in sorted(self._grants)]

    def companies(self) -> set[str]:
        """Every company that asked this owner for access."""
        with self._lock:
            return {c for c, ids in self._by_company.items() if ids}

    def co_members(self) -> set[str]:
        """Every other owner of a group request this owner is a member of (their vaults
        answer a household together, so the index follows their endpoints too)."""
        with self._lock:
            return {m.owner for view in self._grants.values() for m in view.members
                    if m.owner != self.owner}

    def requests_for_company(self, company: str) -> list[Grant]:
        """Every request ``company`` made to this owner, oldest first."""
        with self._lock:
            ids = sorted(self._by_company.get(to_checksum_address(company), ()))
        return [self._grants[i] for i in ids]

    def endpoint_of(self, account: str) -> EndpointView | None:
        """The endpoint ``account`` published last, if any."""
        return self._endpoints.get(to_checksum_address(account))

    def name_of(self, account: str) -> CompanyNameView | None:
        """The name and URL ``account`` published last (``CompanyDescribed``), if any."""
        return self._names.get(to_checksum_address(account))

    def __len__(self) -> int:
        return len(self._grants)

    @property
    def cursor(self) -> tuple[int, bytes] | None:
        """(block number, block hash) the index is synced up to, if it ever synced."""
        cursor = self._cursor
        if cursor is None:
            return None
        return cursor.block_number, bytes.fromhex(cursor.block_hash[2:])

    def lag(self) -> IndexLag:
        """How far behind the chain the index is. ``synced_block`` is the block of the last
        *completed* round — its grants confirmed by contract reads too — so a company that
        waits for it (the SDK's ``wait_for_grant``) never asks between the events and their
        confirmation."""
        cursor = self._cursor
        if cursor is None:
            return IndexLag(None, None, None)
        return IndexLag(
            self._round_block, cursor.head_block, cursor.last_synced_at, cursor.head_timestamp
        )

    def check_fresh(
        self, *, now: float, max_age_seconds: float, max_head_age_seconds: float | None = None
    ) -> None:
        """Raise :class:`IndexStale` unless a sync round completed within ``max_age_seconds``
        of ``now`` and, with ``max_head_age_seconds``, the chain head it saw was mined within
        that many seconds of ``now`` (THREATS rows 18, 32: a stale index or a frozen node must
        fail closed)."""
        lag = self.lag()
        age = lag.seconds_since_sync(now)
        if age > max_age_seconds:
            shown = "never synced" if age == float("inf") else f"last synced {age:.1f} s ago"
            raise errors.IndexStale(
                f"the ledger index is stale ({shown}; the bound is {max_age_seconds:g} s)"
            )
        if max_head_age_seconds is not None and lag.head_age(now) > max_head_age_seconds:
            raise errors.IndexStale(
                f"the node's newest block is {lag.head_age(now):.0f} s old (the bound is "
                f"{max_head_age_seconds:g} s): its head is not moving"
            )

    def confirm(self, states: dict[int, Grant | None], *, at: float) -> list[str]:
        """Record contract reads of some requests, made at ``at``; what disagreed, in words.

        A request the contract does not know, or does not hold as this owner's, was invented
        by the node's logs: it is dropped from memory (its events stay in the file; a restart
        re-reads it). For a group request, this owner's is one whose members (``groupMembers``)
        include this owner; its price is then this owner's share there. One whose stored
        fields differ takes the contract's fields. Either way the index then holds what the
        contract says, and that state counts as confirmed. Other members' approvals are not
        a disagreement: this owner's events never carry them.
        """
        disagreements: list[str] = []
        with self._lock:
            for request_id, state in states.items():
                view = self._grants.get(request_id)
                if view is None:
                    continue
                share = self._share_in(state, view)
                if state is None or share is None:
                    disagreements.append(f"request {request_id} is not this owner's on chain")
                    self._forget_locked(request_id)
                    continue
                truth = replace(
                    view, company=state.company, scopes=state.scopes, price=share,
                    duration=state.duration, max_releases=state.max_releases,
                    status=state.status, starts_at=state.starts_at, members=state.members,
                    confirmed_at=at,
                )
                if truth != replace(view, members=state.members):
                    disagreements.append(
                        f"request {request_id} is {state.status.name.lower()} on chain, "
                        f"the node's events said {view.status.name.lower()}"
                    )
                self._grants[request_id] = truth
        return disagreements

    def _share_in(self, state: Grant | None, view: Grant) -> int | None:
        """What this owner earns over ``state`` as the contract holds it: the whole price of
        its own request, its share of a group it is a member of; ``None`` if neither (or the
        read and the events disagree on whether it is a group)."""
        if state is None or state.is_group != view.is_group:
            return None
        if not state.is_group:
            return state.price if state.owner == self.owner else None
        if state.owner != NO_OWNER:
            return None
        return next((m.share for m in state.members if m.owner == self.owner), None)

    def unconfirm(self) -> None:
        """Forget every confirmation (the nodes disagree: nothing counts as confirmed)."""
        with self._lock:
            for request_id, view in self._grants.items():
                self._grants[request_id] = replace(view, confirmed_at=None)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------- loading

    def _load(self) -> None:
        with self.engine.begin() as connection:
            cursor = connection.execute(select(_CURSOR)).first()
            if cursor is not None and (
                cursor.chain_id != self.chain_id
                or cursor.ledger != self.ledger_address
                or cursor.owner != self.owner
            ):
                for table in (_REQUESTS, _ENDPOINTS, _NAMES, _EVENTS, _CHECKPOINTS, _CURSOR):
                    connection.execute(delete(table))
                cursor = None
            self._cursor = (
                _Cursor(
                    cursor.block_number, cursor.block_hash, cursor.head_block,
                    cursor.head_timestamp, cursor.last_synced_at,
                )
                if cursor is not None
                else None
            )
            for row in connection.execute(select(_REQUESTS)):
                self._remember(_view_of(row))
            for row in connection.execute(select(_ENDPOINTS)):
                self._endpoints[row.account] = EndpointView(
                    row.account, row.url, bytes.fromhex(row.terms_hash[2:]), row.block_number
                )
            for row in connection.execute(select(_NAMES)):
                self._names[row.account] = CompanyNameView(
                    row.account, row.name, row.url, row.block_number
                )

    def _remember(self, view: Grant) -> None:
        self._grants[view.id] = view
        self._by_company.setdefault(view.company, set()).add(view.id)

    def _forget_locked(self, request_id: int) -> None:
        view = self._grants.pop(request_id, None)
        if view is not None:
            self._by_company.get(view.company, set()).discard(request_id)

    # ------------------------------------------------------------- writes (sync only)

    def apply(
        self,
        events: Sequence[LedgerEvent],
        *,
        block_number: int,
        block_hash: bytes,
        head_block: int,
        head_timestamp: int,
        synced_at: float,
    ) -> None:
        """Record ``events`` (all in blocks up to ``block_number``) and move the cursor, in one
        SQLite transaction; then publish the new request states in memory. An event about
        another owner's request is never recorded, whatever the node sent."""
        touched: dict[int, Grant] = {}
        endpoints: dict[str, EndpointView] = {}
        names: dict[str, CompanyNameView] = {}
        event_rows: list[dict[str, Any]] = []
        for item in events:
            args = item.args
            if "owner" in args and to_checksum_address(args["owner"]) != self.owner:
                continue
            request_id = int(args["id"]) if "id" in args else None
            account = args["company"] if item.name == "CompanyDescribed" else args.get("account")
            event_rows.append(
                {
                    "block_number": item.block_number,
                    "log_index": item.log_index,
                    "block_hash": "0x" + item.block_hash.hex(),
                    "transaction_hash": "0x" + item.transaction_hash.hex(),
                    "name": item.name,
                    "request_id": request_id,
                    "account": account,
                    "args": json.dumps({k: _jsonable(v) for k, v in args.items()}),
                }
            )
            if request_id is not None:
                before = touched.get(request_id) or self._grants.get(request_id)
                after = _fold(before, item.name, args, item.block_number)
                if after is not None:
                    touched[request_id] = after
            elif item.name == "EndpointPublished":
                endpoints[str(account)] = EndpointView(
                    str(account), str(args["url"]), bytes(args["termsHash"]), item.block_number
                )
            elif item.name == "CompanyDescribed":
                names[str(account)] = CompanyNameView(
                    str(account), str(args["name"]), str(args["url"]), item.block_number
                )
        hash_hex = "0x" + block_hash.hex()
        with self.engine.begin() as connection:
            if event_rows:
                connection.execute(sqlite_insert(_EVENTS).on_conflict_do_nothing(), event_rows)
            if touched:
                self._upsert(connection, RequestRow, [_row_of(v) for v in touched.values()], "id")
            if endpoints:
                rows = [
                    {
                        "account": e.account,
                        "url": e.url,
                        "terms_hash": "0x" + e.terms_hash.hex(),
                        "block_number": e.block_number,
                    }
                    for e in endpoints.values()
                ]
                self._upsert(connection, EndpointRow, rows, "account")
            if names:
                self._upsert(connection, CompanyNameRow, [
                    {"account": n.account, "name": n.name, "url": n.url,
                     "block_number": n.block_number} for n in names.values()
                ], "account")
            connection.execute(
                sqlite_insert(_CHECKPOINTS)
                .values(block_number=block_number, block_hash=hash_hex)
                .on_conflict_do_update(
                    index_elements=["block_number"], set_={"block_hash": hash_hex}
                )
            )
            connection.execute(
                delete(_CHECKPOINTS).where(
                    _CHECKPOINTS.c.block_number
                    < select(_CHECKPOINTS.c.block_number)
                    .order_by(_CHECKPOINTS.c.block_number.desc())
                    .offset(CHECKPOINTS_KEPT - 1)
                    .limit(1)
                    .scalar_subquery()
                )
            )
            cursor = self._write_cursor(
                connection, block_number, hash_hex, head_block, head_timestamp, synced_at
            )
        with self._lock:
            for view in touched.values():
                self._remember(view)
            self._endpoints.update(endpoints)
            self._names.update(names)
            self._cursor = cursor

    def touch(self, *, head_block: int, head_timestamp: int, synced_at: float) -> None:
        """Record a completed sync round (events applied, grants confirmed)."""
        if self._cursor is None:
            return
        self._round_block = self._cursor.block_number
        with self.engine.begin() as connection:
            connection.execute(
                update(_CURSOR).values(
                    head_block=head_block, head_timestamp=head_timestamp,
                    last_synced_at=synced_at,
                )
            )
        self._cursor = replace(
            self._cursor, head_block=head_block, head_timestamp=head_timestamp,
            last_synced_at=synced_at,
        )

    def checkpoints(self) -> list[tuple[int, bytes]]:
        """Recorded (block number, hash) pairs, newest first, including event blocks."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_CHECKPOINTS.c.block_number, _CHECKPOINTS.c.block_hash)
                .union(select(_EVENTS.c.block_number, _EVENTS.c.block_hash))
                .order_by(_CHECKPOINTS.c.block_number.desc())
            ).all()
        return [(int(n), bytes.fromhex(str(h)[2:])) for n, h in rows]

    def rollback(self, *, keep_through: int, keep_hash: bytes | None) -> None:
        """Undo everything above block ``keep_through`` (a reorg's fork point minus one).

        Requests touched by a dropped event are rebuilt from their remaining events;
        requests whose AccessRequested was dropped disappear.
        """
        with self.engine.begin() as connection:
            dropped = connection.execute(
                select(_EVENTS.c.request_id, _EVENTS.c.account).where(
                    _EVENTS.c.block_number > keep_through
                )
            ).all()
            ids = {int(r) for r, _ in dropped if r is not None}
            accounts = {str(a) for r, a in dropped if r is None and a is not None}
            connection.execute(delete(_EVENTS).where(_EVENTS.c.block_number > keep_through))
            connection.execute(
                delete(_CHECKPOINTS).where(_CHECKPOINTS.c.block_number > keep_through)
            )
            rebuilt: dict[int, Grant | None] = {}
            for request_id in ids:
                view: Grant | None = None
                for row in connection.execute(
                    select(_EVENTS)
                    .where(_EVENTS.c.request_id == request_id)
                    .order_by(_EVENTS.c.block_number, _EVENTS.c.log_index)
                ):
                    view = _fold(
                        view, row.name, _args_from_json(row.name, row.args), row.block_number
                    )
                rebuilt[request_id] = view
                connection.execute(delete(_REQUESTS).where(_REQUESTS.c.id == request_id))
                if view is not None:
                    connection.execute(sqlite_insert(_REQUESTS).values(**_row_of(view)))
            endpoints: dict[str, EndpointView | None] = {}
            for account in accounts:
                latest = connection.execute(
                    select(_EVENTS)
                    .where(_EVENTS.c.account == account, _EVENTS.c.name == "EndpointPublished")
                    .order_by(
                        _EVENTS.c.block_number.desc(),
                        _EVENTS.c.log_index.desc(),
                    )
                    .limit(1)
                ).first()
                connection.execute(delete(_ENDPOINTS).where(_ENDPOINTS.c.account == account))
                if latest is None:
                    endpoints[account] = None
                    continue
                args = _args_from_json(latest.name, latest.args)
                endpoints[account] = EndpointView(
                    account, str(args["url"]), bytes(args["termsHash"]), int(latest.block_number)
                )
                connection.execute(
                    sqlite_insert(_ENDPOINTS).values(
                        account=account,
                        url=str(args["url"]),
                        terms_hash="0x" + bytes(args["termsHash"]).hex(),
                        block_number=int(latest.block_number),
                    )
                )
            names: dict[str, CompanyNameView | None] = {}
            for account in accounts:
                named = connection.execute(
                    select(_EVENTS)
                    .where(_EVENTS.c.account == account, _EVENTS.c.name == "CompanyDescribed")
                    .order_by(_EVENTS.c.block_number.desc(), _EVENTS.c.log_index.desc())
                    .limit(1)
                ).first()
                connection.execute(delete(_NAMES).where(_NAMES.c.account == account))
                names[account] = None
                if named is not None:
                    described = json.loads(named.args)
                    names[account] = CompanyNameView(
                        account, str(described["name"]), str(described["url"]),
                        int(named.block_number),
                    )
                    connection.execute(sqlite_insert(_NAMES).values(
                        account=account, name=str(described["name"]),
                        url=str(described["url"]), block_number=int(named.block_number),
                    ))
            cursor: _Cursor | None = None
            if keep_hash is None:
                connection.execute(delete(_CURSOR))
            else:
                previous = self._cursor
                cursor = self._write_cursor(
                    connection,
                    keep_through,
                    "0x" + keep_hash.hex(),
                    previous.head_block if previous else keep_through,
                    previous.head_timestamp if previous else 0,
                    previous.last_synced_at if previous else None,
                )
        with self._lock:
            for request_id, maybe in rebuilt.items():
                self._forget_locked(request_id)
                if maybe is not None:
                    self._remember(maybe)
            for account, endpoint in endpoints.items():
                if endpoint is None:
                    self._endpoints.pop(account, None)
                else:
                    self._endpoints[account] = endpoint
            for account, named_view in names.items():
                if named_view is None:
                    self._names.pop(account, None)
                else:
                    self._names[account] = named_view
            self._cursor = cursor
            if self._round_block is not None:
                self._round_block = min(self._round_block, keep_through)

    @staticmethod
    def _upsert(connection: Any, table: Any, rows: list[dict[str, Any]], key: str) -> None:
        statement = sqlite_insert(table)
        columns = {c: statement.excluded[c] for c in rows[0] if c != key}
        connection.execute(
            statement.on_conflict_do_update(index_elements=[key], set_=columns), rows
        )

    def _write_cursor(
        self,
        connection: Any,
        block_number: int,
        block_hash: str,
        head_block: int,
        head_timestamp: int,
        synced_at: float | None,
    ) -> _Cursor:
        values = {
            "id": 1,
            "chain_id": self.chain_id,
            "ledger": self.ledger_address,
            "owner": self.owner,
            "block_number": block_number,
            "block_hash": block_hash,
            "head_block": head_block,
            "head_timestamp": head_timestamp,
            "last_synced_at": synced_at,
        }
        statement = sqlite_insert(_CURSOR).values(**values)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}
            )
        )
        return _Cursor(block_number, block_hash, head_block, head_timestamp, synced_at)



def open_index(home: Path, *, chain_id: int, ledger_address: str, owner: str) -> LedgerIndex:
    """The index file of ``home`` for the given ledger and owner."""
    home.mkdir(parents=True, exist_ok=True)
    return LedgerIndex(
        index_path(home), chain_id=chain_id, ledger_address=ledger_address, owner=owner
    )
