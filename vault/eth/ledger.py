"""The consent ledger through a node: one typed web3.py client, deployment and verification,
and the one wrapper every node interaction goes through (:func:`call_node`), which maps
transport failures and reverts to :mod:`vault.errors` and never shows a node's secret URL.

:class:`LedgerClient` has one method per contract function and view, dataclasses out
(:class:`~vault.grant.Grant` for a stored request), wei as ``int``, reverts decoded into
:class:`~vault.errors.ContractReverted` carrying the custom error's name and arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import urlsplit

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from vault import errors
from vault.eth import units
from vault.eth.abi import (
    LedgerEvent,
    canonical_type,
    code_matches,
    codec,
    load_artifact,
    revert_data,
)
from vault.eth.eip712 import (
    APPROVAL_TYPEHASH,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    Domain,
    PrivateKey,
    address_bytes,
    as_bytes32,
    private_key_bytes,
)
from vault.grant import Grant, Member, Status

if TYPE_CHECKING:
    from web3.contract import Contract
    from web3.types import TxParams, TxReceipt


def redact_url(url: str) -> str:
    """``url`` with what may carry a secret replaced: user info, path and query.

    Hosted nodes put API keys in the path (``/v3/KEY``) or the query; an error message, a
    log line or a health answer shows only the scheme, host and port.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<node URL>"
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    hidden = "/…" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{hidden}"


def endpoint_of(w3: Web3) -> str:
    """A printable name of the node ``w3`` talks to (its redacted URL, or the in-process
    backend)."""
    uri = getattr(w3.provider, "endpoint_uri", None)
    return redact_url(str(uri)) if uri else type(w3.provider).__name__


_T = TypeVar("_T")


def call_node(w3: Web3, action: Callable[[], _T]) -> _T:
    """Run one node interaction, mapping transport failures and reverts to vault's errors.

    Connection refused, timeouts and HTTP errors become :class:`LedgerUnavailable` naming
    the URL (THREATS row 19); reverts become :class:`ContractReverted` with the decoded name.
    """
    import requests  # web3's HTTP transport

    try:
        return action()
    except ContractLogicError as error:
        data = revert_data(error)
        if data is None:
            raise errors.ContractReverted("Reverted", {"message": str(error.message)}) from None
        raise codec().decode_revert(data) from None
    except (requests.ConnectionError, requests.Timeout, TimeExhausted) as error:
        raise errors.LedgerUnavailable(
            f"the ledger node at {endpoint_of(w3)} did not answer ({type(error).__name__})"
        ) from None
    except Web3RPCError as error:
        # geth: "insufficient funds for gas * price + value"; anvil capitalises it. The node
        # works: the sender cannot pay (:meth:`LedgerClient._transact` names the account).
        if "insufficient funds" in str(error.message).lower():
            raise errors.InsufficientFunds(
                "no ETH for gas: the sending account cannot pay for this transaction"
            ) from None
        raise errors.LedgerUnavailable(
            f"the ledger node at {endpoint_of(w3)} answered an error: {error.message}"
        ) from None
    except requests.HTTPError as error:
        raise errors.LedgerUnavailable(
            f"the ledger node at {endpoint_of(w3)} answered HTTP {error.response.status_code}"
            if error.response is not None
            else f"the ledger node at {endpoint_of(w3)} failed"
        ) from None
    except Exception as error:
        # eth-tester (the embedded chain) raises its own errors: a ValidationError for a
        # sender that cannot pay the gas (or the value and the gas), TransactionFailed for
        # reverts in estimate/call.
        if type(error).__name__ == "ValidationError" and (
            "cannot afford txn gas" in str(error) or "not have enough balance" in str(error)
        ):
            raise errors.InsufficientFunds(
                "no ETH for gas: the sending account cannot pay for this transaction"
            ) from None
        if type(error).__name__ == "TransactionFailed":
            data = revert_data(error)
            if data is not None:
                raise codec().decode_revert(data) from None
            raise errors.ContractReverted("Reverted", {"message": str(error)}) from None
        raise


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class TxOutcome:
    """A mined, successful ledger transaction and the ledger events it emitted."""

    transaction_hash: bytes
    block_number: int
    gas_used: int
    events: tuple[LedgerEvent, ...]

    def event(self, name: str) -> LedgerEvent:
        """The first emitted event called ``name``."""
        for event in self.events:
            if event.name == name:
                return event
        raise LookupError(f"the transaction emitted no {name}")


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One owner of a group request, as the contract's ``groupMembers`` reports it (wei)."""

    owner: str
    approved: bool
    #: The owner's part of the price: an equal share, plus the remainder for the first owner.
    share: int
    claimed: int
    claimable: int


Sender = LocalAccount | str


#: Gas added to every estimate. The node estimates against the pending block's timestamp;
#: a settlement (revoke, claim) mined a second later has earned something, and crediting a
#: balance that was zero writes a fresh storage slot: ~22k gas more than the estimate per
#: account credited (seen as flaky out-of-gas revokes on anvil). A group revoke credits up
#: to six owners and the company: seven fresh slots. Unused gas is not charged.
_GAS_HEADROOM: Final = 7 * 22_100 + 5_000


def _request_state(
    request_id: int, fields: Sequence[Any], members: Sequence[Any] = ()
) -> Grant | None:
    """A ``getRequest`` tuple (and, for a group, its ``groupMembers`` rows) as a
    :class:`~vault.grant.Grant`; ``None`` for the empty slot an unknown id reads as."""
    company, scopes, max_releases, owner, price, starts_at, duration, status, claimed = fields
    if int(status) == Status.NONE:
        return None
    return Grant(
        id=request_id,
        company=to_checksum_address(company),
        scopes=int(scopes),
        max_releases=int(max_releases),
        owner=to_checksum_address(owner),
        price=int(price),
        starts_at=int(starts_at),
        duration=int(duration),
        status=Status(int(status)),
        claimed=int(claimed),
        members=tuple(
            Member(owner=to_checksum_address(row[0]), approved=bool(row[1]), share=int(row[2]))
            for row in members
        ),
    )


class LedgerClient:
    """Typed access to one deployed ConsentLedger.

    ``sender`` is who transacts: a :class:`LocalAccount` (signs locally, works with any node)
    or the address of an account the node has unlocked (eth-tester, anvil). Views need no
    sender. ``gas`` fixes the gas limit instead of estimating it (a failed transaction is then
    mined with status 0, which is detected and explained).
    """

    def __init__(
        self,
        w3: Web3,
        address: str,
        *,
        sender: Sender | None = None,
        gas: int | None = None,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address_bytes(address))
        self.contract: Contract = w3.eth.contract(address=self.address, abi=load_artifact().abi)
        self.sender = sender
        self.gas = gas
        self.receipt_timeout = receipt_timeout
        self._chain_id: int | None = None

    def using(self, sender: Sender) -> LedgerClient:
        """The same ledger, transacting as ``sender``."""
        clone = LedgerClient(
            self.w3, self.address, sender=sender, gas=self.gas, receipt_timeout=self.receipt_timeout
        )
        clone._chain_id = self._chain_id
        return clone

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = call_node(self.w3, lambda: self.w3.eth.chain_id)
        return self._chain_id

    @property
    def domain(self) -> Domain:
        """This ledger's EIP-712 domain."""
        return Domain(self.chain_id, self.address)

    # ----------------------------------------------------------------- transactions

    def request_access(
        self,
        owner: str,
        scopes: int,
        duration: int,
        *,
        price: int,
        max_releases: int = 0,
        catalog_hash: bytes = b"\x00" * 32,
        purpose: str = "",
    ) -> int:
        """Ask ``owner`` for ``scopes`` for ``duration`` seconds, paying ``price`` wei; the id."""
        outcome = self._transact(
            self.contract.functions.requestAccess(
                to_checksum_address(address_bytes(owner)),
                scopes,
                duration,
                max_releases,
                as_bytes32(catalog_hash),
                purpose,
            ),
            value=price,
        )
        return int(outcome.event("AccessRequested").args["id"])

    def request_group_access(
        self,
        owners: Sequence[str],
        scopes: int,
        duration: int,
        *,
        price: int,
        max_releases: int = 0,
        catalog_hash: bytes = b"\x00" * 32,
        purpose: str = "",
    ) -> int:
        """Ask the 2 to 6 ``owners`` together for ``scopes`` for ``duration`` seconds, paying
        ``price`` wei shared equally among them (the remainder to the first); the id. Each
        owner approves for themself (:meth:`approve` or :meth:`approve_by_sig`)."""
        outcome = self._transact(
            self.contract.functions.requestGroupAccess(
                [to_checksum_address(address_bytes(owner)) for owner in owners],
                scopes,
                duration,
                max_releases,
                as_bytes32(catalog_hash),
                purpose,
            ),
            value=price,
        )
        return int(outcome.event("GroupAccessRequested").args["id"])

    def approve(self, request_id: int) -> TxOutcome:
        return self._transact(self.contract.functions.approve(request_id))

    def approve_by_sig(self, request_id: int, deadline: int, signature: bytes) -> TxOutcome:
        """Relay the owner's ``Approval`` signature (see :func:`sign_approval`)."""
        return self._transact(
            self.contract.functions.approveBySig(request_id, deadline, bytes(signature))
        )

    def deny(self, request_id: int) -> TxOutcome:
        return self._transact(self.contract.functions.deny(request_id))

    def cancel(self, request_id: int) -> TxOutcome:
        return self._transact(self.contract.functions.cancel(request_id))

    def revoke(self, request_id: int) -> TxOutcome:
        return self._transact(self.contract.functions.revoke(request_id))

    def claim(self, request_id: int) -> int:
        """Credit what grant ``request_id`` earned to the owner's balance; the wei moved."""
        outcome = self._transact(self.contract.functions.claim(request_id))
        return sum(int(e.args["amount"]) for e in outcome.events if e.name == "EarningsClaimed")

    def claim_many(self, request_ids: Sequence[int]) -> int:
        """:meth:`claim` for several grants in one transaction; the total wei moved."""
        outcome = self._transact(self.contract.functions.claimMany(list(request_ids)))
        return sum(int(e.args["amount"]) for e in outcome.events if e.name == "EarningsClaimed")

    def withdraw(self) -> int:
        """Send the sender its whole owed balance; the wei sent."""
        outcome = self._transact(self.contract.functions.withdraw())
        return sum(int(e.args["amount"]) for e in outcome.events if e.name == "Withdrawn")

    def publish_endpoint(self, url: str, terms_hash: bytes) -> TxOutcome:
        return self._transact(self.contract.functions.publishEndpoint(url, as_bytes32(terms_hash)))

    def describe_company(self, name: str, url: str) -> TxOutcome:
        """Publish the sender's name and URL (``CompanyDescribed``); the contract refuses a
        name outside 1-64 bytes or a URL over 256 (``InvalidCompanyName``,
        ``CompanyUrlTooLong``)."""
        return self._transact(self.contract.functions.describeCompany(name, url))

    # ----------------------------------------------------------------- views

    def get_request(self, request_id: int) -> Grant:
        """The stored request, a group's with its members; :class:`ContractReverted`
        ``UnknownRequest`` if there is none."""
        fields = self._view(self.contract.functions.getRequest(request_id))
        members = self._view(self.contract.functions.groupMembers(request_id))
        state = _request_state(request_id, fields, members)
        if state is None:
            raise errors.ContractReverted("UnknownRequest", {"id": request_id})
        return state

    def get_requests(
        self, request_ids: Sequence[int], *, block: int
    ) -> dict[int, Grant | None]:
        """The stored requests ``request_ids`` as of block ``block`` (``None`` for an id the
        contract does not know), each with its ``groupMembers`` (empty for a single owner's
        request), read in one JSON-RPC batch where the node takes batches.

        Ids are sequential, so ``requestCount`` at the same block says which ids exist; only
        those are read (``getRequest`` reverts on the others, which would fail the batch).
        Every id's members are read with it: whether a request is a group is what the read
        is to establish, so the node's events cannot choose which ids skip that read.
        An in-process backend (a provider without a URL, like py-evm's) takes no batches and
        has no round trip to save: it is asked once per call.
        """
        count = int(call_node(
            self.w3, lambda: self.contract.functions.requestCount().call(block_identifier=block)
        ))
        known = [i for i in request_ids if 1 <= i <= count]
        found: dict[int, Grant | None] = dict.fromkeys(request_ids)
        if not known:
            return found
        calls: list[TxParams] = [
            {"to": self.address, "data": self.contract.encode_abi(view, args=[i])}
            for i in known
            for view in ("getRequest", "groupMembers")
        ]
        if getattr(self.w3.provider, "endpoint_uri", None) is None:
            raw = [call_node(self.w3, functools.partial(self.w3.eth.call, c, block))
                   for c in calls]
        else:
            def batched() -> list[Any]:
                with self.w3.batch_requests() as batch:
                    for call in calls:
                        batch.add(self.w3.eth.call(call, block))
                    return list(batch.execute())

            raw = call_node(self.w3, batched)
        request_output, members_output = (
            [canonical_type(o) for o in self.contract.get_function_by_name(view).abi["outputs"]]
            for view in ("getRequest", "groupMembers")
        )
        for position, request_id in enumerate(known):
            (fields,) = abi_decode(request_output, bytes(raw[2 * position]))
            (members,) = abi_decode(members_output, bytes(raw[2 * position + 1]))
            found[request_id] = _request_state(request_id, fields, members)
        return found

    def group_members(self, request_id: int) -> list[GroupMember]:
        """The owners of group request ``request_id`` in the company's order, each with its
        approval, share and money; empty for a single-owner request. (A group request's
        :meth:`get_request` has the zero address as its owner.)"""
        raw = self._view(self.contract.functions.groupMembers(request_id))
        return [
            GroupMember(
                owner=to_checksum_address(owner),
                approved=bool(approved),
                share=int(share),
                claimed=int(claimed),
                claimable=int(claimable),
            )
            for owner, approved, share, claimed, claimable in raw
        ]

    def request_count(self) -> int:
        return int(self._view(self.contract.functions.requestCount()))

    def is_active(self, request_id: int) -> bool:
        return bool(self._view(self.contract.functions.isActive(request_id)))

    def covers(self, request_id: int, scopes: int) -> bool:
        return bool(self._view(self.contract.functions.covers(request_id, scopes)))

    def earned(self, request_id: int) -> int:
        return int(self._view(self.contract.functions.earned(request_id)))

    def claimable(self, request_id: int) -> int:
        return int(self._view(self.contract.functions.claimable(request_id)))

    def owed(self, account: str) -> int:
        return int(
            self._view(self.contract.functions.owed(to_checksum_address(address_bytes(account))))
        )

    def escrow_held(self) -> int:
        return int(self._view(self.contract.functions.escrowHeld()))

    def domain_separator(self) -> bytes:
        return bytes(self._view(self.contract.functions.domainSeparator()))

    def approval_typehash(self) -> bytes:
        return bytes(self._view(self.contract.functions.APPROVAL_TYPEHASH()))

    def eip712_domain(self) -> tuple[str, str, int, str]:
        """ERC-5267's ``eip712Domain()``: (name, version, chainId, verifyingContract)."""
        raw = self._view(self.contract.functions.eip712Domain())
        return str(raw[1]), str(raw[2]), int(raw[3]), to_checksum_address(raw[4])

    def balance(self) -> int:
        """Wei held by the ledger contract (escrow plus owed balances)."""
        return self.balance_of(self.address)

    def balance_of(self, account: str) -> int:
        """Wei ``account`` holds on this chain (its wallet, not what the ledger owes it)."""
        checksum = to_checksum_address(address_bytes(account))
        return call_node(self.w3, lambda: int(self.w3.eth.get_balance(checksum)))

    def gas_price(self) -> int:
        """The node's current price of one unit of gas, in wei."""
        return call_node(self.w3, lambda: int(self.w3.eth.gas_price))

    def estimate_claim_many(self, request_ids: Sequence[int]) -> int:
        """Gas :meth:`claim_many` would use, sent by the sender now."""
        return self._estimate(self.contract.functions.claimMany(list(request_ids)))

    def estimate_withdraw(self) -> int:
        """Gas :meth:`withdraw` would use, sent by the sender now (it reverts ``NothingOwed``
        while nothing is owed)."""
        return self._estimate(self.contract.functions.withdraw())

    # ----------------------------------------------------------------- plumbing

    def _view(self, function: Any) -> Any:
        return call_node(self.w3, function.call)

    def _estimate(self, function: Any) -> int:
        params: TxParams = {"from": self._sender_address()}
        return int(call_node(self.w3, lambda: function.estimate_gas(params)))

    def _sender_address(self) -> str:
        if self.sender is None:
            raise ValueError("this LedgerClient has no sender; use .using(account)")
        if isinstance(self.sender, str):
            return to_checksum_address(address_bytes(self.sender))
        return str(self.sender.address)

    def _transact(self, function: Any, *, value: int = 0) -> TxOutcome:
        """Send ``function`` from the sender and wait for it to be mined; the contract's
        custom error on a revert."""
        sender = self._sender_address()
        params: TxParams = {"from": sender, "value": Web3.to_wei(value, "wei")}
        if self.gas is not None:
            params["gas"] = self.gas

        def send() -> bytes:
            if "gas" not in params:
                params["gas"] = function.estimate_gas(params) + _GAS_HEADROOM
            if isinstance(self.sender, LocalAccount):
                params["nonce"] = self.w3.eth.get_transaction_count(
                    cast(ChecksumAddress, sender), "pending"
                )
                params["chainId"] = self.chain_id
                signed = self.sender.sign_transaction(function.build_transaction(params))
                return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
            return bytes(function.transact(params))

        try:
            tx_hash = call_node(self.w3, send)
        except errors.InsufficientFunds:
            held = self.balance_of(sender)
            raise errors.InsufficientFunds(
                f"no ETH for gas: {sender} holds {units.format_eth(held)}, too little to pay"
                " for this transaction",
                hint=f"send ETH to {sender}, then try again",
            ) from None
        receipt = call_node(
            self.w3,
            lambda: self.w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=self.receipt_timeout, poll_latency=0.05
            ),
        )
        if receipt["status"] != 1:
            raise self._explain_failure(function, params, receipt)
        ledger_logs = [
            log for log in receipt["logs"] if to_checksum_address(log["address"]) == self.address
        ]
        decoded = (codec().decode_log(cast(Mapping[str, Any], log)) for log in ledger_logs)
        return TxOutcome(
            transaction_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            events=tuple(e for e in decoded if e is not None),
        )

    def _explain_failure(
        self, function: Any, params: TxParams, receipt: TxReceipt
    ) -> errors.ContractReverted:
        """Why a mined transaction failed: replay it as a call on its parent block."""
        if "gas" in params and int(receipt["gasUsed"]) >= int(params["gas"]):
            return errors.ContractReverted("OutOfGas", {"gas": int(params["gas"])})
        replay = {k: v for k, v in params.items() if k in ("from", "value")}
        try:
            call_node(
                self.w3,
                lambda: function.call(replay, block_identifier=int(receipt["blockNumber"]) - 1),
            )
        except errors.ContractReverted as reverted:
            return reverted
        return errors.ContractReverted(
            "Reverted", {"transaction": "0x" + bytes(receipt["transactionHash"]).hex()}
        )


# --------------------------------------------------------------------------- deploy & verify


def deploy_ledger(w3: Web3, *, sender: Sender, receipt_timeout: float = 120.0) -> str:
    """Deploy the shipped artifact from ``sender``; the new ledger's checksum address."""
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    params: TxParams
    if isinstance(sender, LocalAccount):
        address = str(sender.address)

        def send() -> bytes:
            tx = factory.constructor().build_transaction(
                {
                    "from": address,
                    "nonce": w3.eth.get_transaction_count(
                        cast(ChecksumAddress, address), "pending"
                    ),
                    "chainId": w3.eth.chain_id,
                }
            )
            return bytes(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
    else:
        params = {"from": to_checksum_address(address_bytes(sender))}

        def send() -> bytes:
            return bytes(factory.constructor().transact(params))

    tx_hash = call_node(w3, send)
    receipt = call_node(
        w3, lambda: w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=receipt_timeout)
    )
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise errors.ContractReverted("DeploymentFailed", {"transaction": "0x" + tx_hash.hex()})
    return to_checksum_address(receipt["contractAddress"])


def verify_ledger(w3: Web3, address: str, expected_chain_id: int) -> Domain:
    """Check that ``address`` on the node ``w3`` is this version of the ledger; its domain.

    Three checks, in order: the node's chain id is ``expected_chain_id`` (else
    :class:`ChainMismatch`); there is code at ``address`` and it is the shipped artifact's
    runtime code up to immutables (:func:`code_matches`); and the contract's EIP-712 views
    (``APPROVAL_TYPEHASH``, ``domainSeparator``, ``eip712Domain``) equal what this module
    computes — so every signature made here will verify there. Either of the last two
    failing is :class:`LedgerNotDeployed`.
    """
    chain_id = call_node(w3, lambda: int(w3.eth.chain_id))
    if chain_id != expected_chain_id:
        raise errors.ChainMismatch(
            f"the node at {endpoint_of(w3)} is chain {chain_id}, expected {expected_chain_id}"
        )
    checksum = to_checksum_address(address_bytes(address))
    code = call_node(w3, lambda: bytes(w3.eth.get_code(checksum)))
    if not code:
        raise errors.LedgerNotDeployed(f"no contract at {checksum} on chain {chain_id}")
    if not code_matches(code, load_artifact().deployed_bytecode):
        raise errors.LedgerNotDeployed(
            f"the contract at {checksum} on chain {chain_id} is not this version of ConsentLedger"
        )
    client = LedgerClient(w3, checksum)
    client._chain_id = chain_id
    domain = Domain(chain_id, checksum)
    name, version, domain_chain, verifying = client.eip712_domain()
    if (
        client.approval_typehash() != APPROVAL_TYPEHASH
        or client.domain_separator() != domain.separator
        or (name, version, domain_chain, verifying)
        != (DOMAIN_NAME, DOMAIN_VERSION, chain_id, checksum)
    ):
        raise errors.LedgerNotDeployed(
            f"the ledger at {checksum} on chain {chain_id} has a different EIP-712 domain"
        )
    return domain


def local_account(private_key: PrivateKey) -> LocalAccount:
    """An eth-account signer for ``private_key`` (for transactions; messages use sign_*)."""
    return cast(LocalAccount, Account.from_key(private_key_bytes(private_key)))
