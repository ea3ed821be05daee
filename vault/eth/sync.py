"""Follow the ledger into a :class:`~vault.eth.index.LedgerIndex`, trusting no single node.

:class:`LedgerSync` pages ``eth_getLogs`` by block range from the last synced block, stops
``confirmations`` blocks below the head (only confirmed blocks count), and before every
round checks that the block it stopped at still has the hash it recorded. If not, the chain
was reorganised: it walks back through recorded block hashes to the fork point, deletes every
event above it, rebuilds the requests those events touched from the events that remain, and
syncs forward again (THREATS row 18).

**One owner.** An index follows one owner's requests: the logs are asked for by the owner's
indexed topic (plus the endpoints of the owner, of the companies that asked them and of the
other members of their group requests, and those companies' names), so a vault's sync cost
grows with its own requests, not with the chain's, and a request addressed to anyone else
never enters it (THREATS row 31).

**No single node's word.** Logs are what one node says. Before a grant can be used it is
confirmed by a contract read (``getRequest`` and ``groupMembers``, batched) at the synced
block, which is at or after its approval; active grants are re-read every
``reconfirm_seconds``, and so are pending group requests (the other members' approvals are
only on chain). A grant the contract does not know, or a group whose members do not include
this owner, is dropped; one whose stored state differs (a hidden revoke) takes the contract's
state; with a second node (``check_w3``) both must agree on the synced block's hash
and every read, or the round fails and no grant counts as confirmed (THREATS row 32).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import BlockNotFound, Web3RPCError

from vault import errors
from vault.config import Settings
from vault.eth import ledger
from vault.eth.abi import LedgerEvent, codec
from vault.eth.chain import Chain, http_web3
from vault.eth.eip712 import address_bytes
from vault.eth.index import LedgerIndex
from vault.grant import Status

log = logging.getLogger("vault.sync")


@dataclass(frozen=True)
class SyncReport:
    """What one :meth:`LedgerSync.sync_once` round did."""

    from_block: int
    to_block: int
    events: int
    head_block: int
    reorg_from: int | None = None



# --------------------------------------------------------------------------- the syncer


class LedgerSync:
    """Moves a :class:`LedgerIndex` forward along the chain ``w3`` talks to.

    ``confirmations``: blocks below the head that an event's block must be to count.
    ``page_blocks``: the widest ``eth_getLogs`` range (halved while a node refuses a range).
    ``start_block``: where a never-synced index starts (the ledger's deployment block).
    ``reconfirm_seconds``: how old a grant's last contract read may get before it is read again.
    ``check_w3``: an optional second node that must agree with ``w3`` on every confirmation.
    """

    def __init__(
        self,
        w3: Web3,
        index: LedgerIndex,
        *,
        confirmations: int = 0,
        page_blocks: int = 2_000,
        start_block: int = 0,
        reconfirm_seconds: float = 10.0,
        check_w3: Web3 | None = None,
        check_session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if confirmations < 0 or page_blocks < 1 or start_block < 0 or reconfirm_seconds <= 0:
            raise ValueError(
                "confirmations and start_block >= 0, page_blocks >= 1, reconfirm_seconds > 0"
            )
        self.w3 = w3
        self.index = index
        self.confirmations = confirmations
        self.page_blocks = page_blocks
        self.start_block = start_block
        self.reconfirm_seconds = reconfirm_seconds
        self.check_w3 = check_w3
        self._check_session = check_session
        self.clock = clock
        self._ledger = ledger.LedgerClient(w3, index.ledger_address)
        self._check = None if check_w3 is None else ledger.LedgerClient(
            check_w3, index.ledger_address
        )
        self._owner_topic = _topic_of(index.owner)

    def close(self) -> None:
        """Close the check node's connections (if this syncer opened them)."""
        if self._check_session is not None:
            self._check_session.close()

    def sync_once(self) -> SyncReport:
        """One round: undo a reorg if there was one, index every confirmed block, then confirm
        the grants that need it with contract reads.

        A page is kept only if the hash of its last block is the same before and after its
        logs were read and the cursor's block is still canonical; otherwise the reorg is
        undone and the round continues from the fork point.
        """
        head, head_timestamp = self._head()
        reorg_from = self._undo_reorg()
        first = self._next_block()
        count = 0
        page = self.page_blocks
        while (start := self._next_block()) <= head - self.confirmations:
            end = min(start + page - 1, head - self.confirmations)
            before = self._block_hash(end)
            logs = self._logs(start, end)
            if logs is None:  # the node refused the range: ask for half of it
                if end == start:
                    raise errors.LedgerUnavailable(
                        f"the node at {ledger.endpoint_of(self.w3)} refused eth_getLogs for "
                        f"block {start}"
                    )
                page = max(1, (end - start + 1) // 2)
                continue
            after = self._block_hash(end)
            if before is None or before != after or not self._cursor_canonical():
                head, head_timestamp = self._head()
                undone = self._undo_reorg()
                if undone is not None:
                    reorg_from = undone if reorg_from is None else min(reorg_from, undone)
                continue
            self.index.apply(
                logs, block_number=end, block_hash=after, head_block=head,
                head_timestamp=head_timestamp, synced_at=self.clock(),
            )
            count += len(logs)
            page = min(self.page_blocks, page * 2)
        self.confirm_grants()
        self.index.touch(head_block=head, head_timestamp=head_timestamp, synced_at=self.clock())
        return SyncReport(
            from_block=first,
            to_block=self._next_block() - 1,
            events=count,
            head_block=head,
            reorg_from=reorg_from,
        )

    def confirm_grants(self) -> list[str]:
        """Read, at the synced block, every grant that is active in the index, and every
        pending group request, not confirmed in the last ``reconfirm_seconds``; what
        disagreed with the logs, in words. A group's read includes its members: membership
        is proven by the contract, never by the node's events.

        With a second node, both must give the same block hash and the same states; if not,
        every confirmation is dropped and :class:`LedgerUnavailable` raised (fail closed).
        """
        cursor = self.index.cursor
        now = self.clock()
        due = [
            g.id for g in self.index.requests()
            if (g.status is Status.ACTIVE or (g.is_group and g.status is Status.PENDING))
            and (g.confirmed_at is None or now - g.confirmed_at >= self.reconfirm_seconds)
        ]
        if cursor is None or not due:
            return []
        block, block_hash = cursor
        states = self._ledger.get_requests(due, block=block)
        if self._check is not None and self.check_w3 is not None:
            try:
                check_hash = _hash_of_block(self.check_w3, block)
                check_states = self._check.get_requests(due, block=block)
            except errors.LedgerError:
                self.index.unconfirm()
                raise errors.LedgerUnavailable(
                    f"the check node at {ledger.endpoint_of(self.check_w3)} could not confirm "
                    f"block {block}"
                ) from None
            if check_hash != block_hash or check_states != states:
                self.index.unconfirm()
                raise errors.LedgerUnavailable(
                    f"the nodes at {ledger.endpoint_of(self.w3)} and "
                    f"{ledger.endpoint_of(self.check_w3)} disagree about block {block}",
                    hint="releases are refused until they agree; check both nodes",
                )
        disagreements = self.index.confirm(states, at=now)
        for disagreement in disagreements:
            log.warning("the node's events disagree with the contract: %s", disagreement)
        return disagreements

    def run(
        self,
        stop: threading.Event,
        *,
        interval: float,
        on_error: Callable[[errors.LedgerError], None] | None = None,
    ) -> None:
        """Sync every ``interval`` seconds until ``stop`` is set. Ledger errors are reported
        to ``on_error`` and retried next round; meanwhile the index's lag grows, so readers
        that call :meth:`LedgerIndex.check_fresh` fail closed."""
        while not stop.is_set():
            try:
                self.sync_once()
            except errors.LedgerError as error:
                if on_error is not None:
                    on_error(error)
            stop.wait(interval)

    # ------------------------------------------------------------- internals

    def _head(self) -> tuple[int, int]:
        """The head's block number and timestamp."""
        block = ledger.call_node(self.w3, lambda: self.w3.eth.get_block("latest"))
        return int(block["number"]), int(block["timestamp"])

    def _next_block(self) -> int:
        cursor = self.index.cursor
        return cursor[0] + 1 if cursor is not None else self.start_block

    def _block_hash(self, number: int) -> bytes | None:
        """The canonical hash of block ``number``; ``None`` if the chain is shorter."""
        return _hash_of_block(self.w3, number)

    def _cursor_canonical(self) -> bool:
        cursor = self.index.cursor
        return cursor is None or self._block_hash(cursor[0]) == cursor[1]

    def _undo_reorg(self) -> int | None:
        """If the cursor's block is no longer canonical, roll back to the newest recorded
        block that still is; the first block to re-index, or ``None`` without a reorg."""
        cursor = self.index.cursor
        if cursor is None or self._block_hash(cursor[0]) == cursor[1]:
            return None
        for number, recorded in self.index.checkpoints():
            if number < cursor[0] and self._block_hash(number) == recorded:
                self.index.rollback(keep_through=number, keep_hash=recorded)
                return number + 1
        self.index.rollback(keep_through=self.start_block - 1, keep_hash=None)
        return self.start_block

    def _logs(self, start: int, end: int) -> list[LedgerEvent] | None:
        """This owner's decoded ledger events of blocks ``start..end`` in chain order, with
        the endpoints published by the owner, the companies that asked them and the other
        members of their group requests (a household's vaults find each other there), and
        those companies' names; ``None`` when the node answers a query with an error
        (typically: too many results).

        An account seen for the first time in this range may have published its endpoint or
        name before it: those are read from ``start_block`` on.
        """
        requests = self._get_logs(start, end, [None, None, self._owner_topic])
        if requests is None:
            return None
        known = self.index.companies() | self.index.co_members()
        seen = {to_checksum_address(e.args["company"]) for e in requests
                if e.name in ("AccessRequested", "GroupAccessRequested")}
        seen |= {to_checksum_address(o) for e in requests if e.name == "GroupAccessRequested"
                 for o in e.args["owners"]}
        new = seen - known - {self.index.owner}
        # Endpoints and companies' names: both are indexed by the account that published them.
        published = ["0x" + codec().event_topics[name].hex()
                     for name in ("EndpointPublished", "CompanyDescribed")]
        endpoints = self._get_logs(
            start, end, [published, sorted({self._owner_topic} | {_topic_of(c) for c in known})]
        )
        if new and endpoints is not None:
            first_seen = self._get_logs(
                self.start_block, end, [published, sorted(_topic_of(c) for c in new)]
            )
            endpoints = None if first_seen is None else endpoints + first_seen
        if endpoints is None:
            return None
        return sorted(requests + endpoints, key=lambda e: (e.block_number, e.log_index))

    def _get_logs(
        self, start: int, end: int, topics: list[str | list[str] | None]
    ) -> list[LedgerEvent] | None:
        if end < start:
            return []

        def read() -> list[Any] | None:
            try:
                return list(self.w3.eth.get_logs({
                    "address": self.index.ledger_address, "fromBlock": start, "toBlock": end,
                    "topics": topics,
                }))
            except Web3RPCError:
                return None

        logs = ledger.call_node(self.w3, read)
        if logs is None:
            return None
        decoder = codec()
        return [e for e in (decoder.decode_log(log) for log in logs) if e is not None]


def _topic_of(address: str) -> str:
    """An address as an indexed event topic: 32 bytes, left-padded, ``0x`` hex."""
    return "0x" + address_bytes(address).rjust(32, b"\0").hex()


def _hash_of_block(w3: Web3, number: int) -> bytes | None:
    """The canonical hash of block ``number`` on ``w3``'s node; ``None`` if it is shorter."""

    def read() -> bytes | None:
        try:
            return bytes(w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    return ledger.call_node(w3, read)


def follow(
    settings: Settings,
    chain: Chain,
    index: LedgerIndex,
    *,
    start_block: int = 0,
    clock: Callable[[], float] = time.time,
) -> LedgerSync:
    """The syncer ``settings`` describe for ``index`` on ``chain``: the chain's confirmation
    depth, the re-confirmation period and, with ``rpc_url_check``, the second node."""
    check_w3, session = None, None
    if settings.rpc_url_check:
        session = requests.Session()
        check_w3 = http_web3(
            settings.rpc_url_check, timeout=settings.rpc_timeout_seconds, session=session
        )
    return LedgerSync(
        chain.w3, index, confirmations=settings.confirmations_for(chain.chain_id),
        start_block=start_block, reconfirm_seconds=settings.reconfirm_seconds,
        check_w3=check_w3, check_session=session, clock=clock,
    )


def deployment_block(w3: Web3, address: str) -> int:
    """The block the ledger was deployed in (binary search over ``eth_getCode``); 0 when the
    node cannot answer for old blocks (pruned state)."""
    checksum = to_checksum_address(address)
    try:
        low, high = 0, int(w3.eth.block_number)
        if not w3.eth.get_code(checksum, high):
            return 0
        while low < high:
            middle = (low + high) // 2
            if w3.eth.get_code(checksum, middle):
                high = middle
            else:
                low = middle + 1
    except Exception:  # a pruned node errors on historical state; start from genesis then
        return 0
    return low
