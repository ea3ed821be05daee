"""The consent ledger from Python: EIP-712 types, signatures, and a typed web3.py client.

Three parts, used by the daemon, the CLI and the company SDK alike:

* **Typed messages.** The EIP-712 domain and the ``Approval``, ``Release`` and ``Receipt``
  types are defined once here (:data:`APPROVAL`, :data:`RELEASE`, :data:`RECEIPT`). The
  digest functions hash structs by hand (32-byte words + keccak) because the daemon checks
  a signature on every release; ``tests/test_ledger.py`` cross-checks them against
  eth-account, ethers and the contract's own views.
* **Signatures** through :mod:`vault.secp256k1` (coincurve directly): :func:`sign_digest`
  and :func:`recover_signer`. Only canonical signatures are accepted — 65 bytes ``r‖s‖v``,
  ``v`` in {27, 28} (0/1 are refused so one signature has exactly one encoding), ``0 < r < n``
  and ``0 < s <= n/2`` (eth-account alone accepts the malleated high-s twin). Every failure
  is the same :class:`~vault.errors.SignatureInvalid` (THREATS rows 11, 12).
* **The client**, :class:`LedgerClient`: one method per contract function and view,
  dataclasses out, wei as ``int``, reverts decoded into
  :class:`~vault.errors.ContractReverted` carrying the custom error's name and arguments.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
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
from vault.canonical import keccak256
from vault.secp256k1 import INVALID, DigestSigner, recover_address

if TYPE_CHECKING:
    from web3.contract import Contract
    from web3.types import TxParams, TxReceipt

# --------------------------------------------------------------------------- EIP-712 types

DOMAIN_NAME: Final = "ConsentLedger"
DOMAIN_VERSION: Final = "1"


_WORD_BITS: Final = {"uint256": 256, "uint64": 64}


@dataclass(frozen=True)
class StructType:
    """One EIP-712 struct type: its name and ordered ``(field name, solidity type)`` pairs.

    Everything else (the type string, the type hash, eth-account's and ethers' ``types``
    mapping) is derived from this single definition.
    """

    name: str
    fields: tuple[tuple[str, str], ...]

    @property
    def encode_type(self) -> str:
        """The EIP-712 ``encodeType`` string: ``Approval(uint256 requestId,uint256 deadline)``."""
        return f"{self.name}({','.join(f'{kind} {field}' for field, kind in self.fields)})"

    @functools.cached_property
    def type_hash(self) -> bytes:
        return keccak256(self.encode_type.encode())

    def types(self) -> dict[str, list[dict[str, str]]]:
        """The ``types`` mapping of eth-account / ethers for this struct (without the domain)."""
        return {self.name: [{"name": field, "type": kind} for field, kind in self.fields]}


EIP712_DOMAIN: Final = StructType(
    "EIP712Domain",
    (
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
    ),
)
#: The owner's consent to a pending request; submitted on chain through ``approveBySig``.
APPROVAL: Final = StructType("Approval", (("requestId", "uint256"), ("deadline", "uint256")))
#: A company's request for a release of derived preferences; verified off chain by the daemon.
RELEASE: Final = StructType(
    "Release",
    (("grantId", "uint256"), ("scopes", "uint64"), ("nonce", "bytes32"), ("issuedAt", "uint64")),
)
#: The owner's receipt for what was released; verified off chain by the company SDK.
RECEIPT: Final = StructType(
    "Receipt",
    (
        ("grantId", "uint256"),
        ("company", "address"),
        ("contentHash", "bytes32"),
        ("issuedAt", "uint64"),
    ),
)

APPROVAL_TYPEHASH: Final = APPROVAL.type_hash
RELEASE_TYPEHASH: Final = RELEASE.type_hash
RECEIPT_TYPEHASH: Final = RECEIPT.type_hash
_DOMAIN_TYPEHASH: Final = EIP712_DOMAIN.type_hash
_NAME_HASH: Final = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH: Final = keccak256(DOMAIN_VERSION.encode())


def _uint(value: int, bits: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{value} does not fit uint{bits}")
    return value.to_bytes(32, "big")


def address_bytes(address: str | bytes) -> bytes:
    """The 20 bytes of an address given as ``0x`` hex (any case) or raw bytes."""
    if isinstance(address, bytes):
        raw = address
    else:
        if not (isinstance(address, str) and address[:2] in ("0x", "0X")):
            raise ValueError("an address is 0x followed by 40 hex digits")
        raw = bytes.fromhex(address[2:])
    if len(raw) != 20:
        raise ValueError("an address is 20 bytes")
    return raw


def _from_hex(text: str) -> bytes:
    """Bytes from hex with or without a ``0x`` prefix (ValueError if not hex)."""
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _bytes32(value: bytes | str) -> bytes:
    raw = _from_hex(value) if isinstance(value, str) else value
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise ValueError("expected 32 bytes")
    return raw


@dataclass(frozen=True)
class Domain:
    """The ledger's EIP-712 domain: name "ConsentLedger", version "1", chain id, ledger address."""

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        # Normalise once so equality, hashing and the separator never depend on hex case.
        object.__setattr__(
            self, "verifying_contract", to_checksum_address(address_bytes(self.verifying_contract))
        )
        _uint(self.chain_id, 256)

    @functools.cached_property
    def separator(self) -> bytes:
        """``keccak(typeHash ‖ keccak(name) ‖ keccak(version) ‖ chainId ‖ contract)``."""
        return keccak256(
            _DOMAIN_TYPEHASH
            + _NAME_HASH
            + _VERSION_HASH
            + _uint(self.chain_id, 256)
            + b"\x00" * 12
            + address_bytes(self.verifying_contract)
        )

    def as_dict(self) -> dict[str, Any]:
        """The domain as eth-account and ethers take it."""
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }

    def _digest(self, struct_hash: bytes) -> bytes:
        return keccak256(b"\x19\x01" + self.separator + struct_hash)

    def approval_digest(self, request_id: int, deadline: int) -> bytes:
        """The EIP-712 digest of ``Approval(requestId, deadline)``."""
        return self._digest(
            keccak256(APPROVAL_TYPEHASH + _uint(request_id, 256) + _uint(deadline, 256))
        )

    def release_digest(
        self, grant_id: int, scopes: int, nonce: bytes | str, issued_at: int
    ) -> bytes:
        """The EIP-712 digest of ``Release(grantId, scopes, nonce, issuedAt)``."""
        return self._digest(
            keccak256(
                RELEASE_TYPEHASH
                + _uint(grant_id, 256)
                + _uint(scopes, 64)
                + _bytes32(nonce)
                + _uint(issued_at, 64)
            )
        )

    def receipt_digest(
        self, grant_id: int, company: str | bytes, content_hash: bytes | str, issued_at: int
    ) -> bytes:
        """The EIP-712 digest of ``Receipt(grantId, company, contentHash, issuedAt)``."""
        return self._digest(
            keccak256(
                RECEIPT_TYPEHASH
                + _uint(grant_id, 256)
                + b"\x00" * 12
                + address_bytes(company)
                + _bytes32(content_hash)
                + _uint(issued_at, 64)
            )
        )


def typed_data(domain: Domain, struct: StructType, message: Mapping[str, Any]) -> dict[str, Any]:
    """The full EIP-712 JSON document (``eth_signTypedData_v4`` / ethers shape) of a message."""
    return {
        "types": {**EIP712_DOMAIN.types(), **struct.types()},
        "primaryType": struct.name,
        "domain": domain.as_dict(),
        "message": dict(message),
    }


# --------------------------------------------------------------------------- signatures

PrivateKey = bytes | str


def _private_key_bytes(private_key: PrivateKey) -> bytes:
    raw = _from_hex(private_key) if isinstance(private_key, str) else private_key
    if len(raw) != 32:
        raise ValueError("a private key is 32 bytes")
    return raw


def sign_digest(private_key: PrivateKey, digest: bytes) -> bytes:
    """Sign a 32-byte digest: 65 bytes ``r‖s‖v`` with low s and ``v`` in {27, 28}."""
    return DigestSigner(_private_key_bytes(private_key)).sign(digest)


@functools.lru_cache(maxsize=65_536)
def checksum(address: bytes) -> str:
    """The EIP-55 form of a 20-byte address."""
    # Addresses are public and few (the companies a vault deals with); caching the EIP-55
    # form takes a keccak and a string walk off every signature recovery.
    return str(to_checksum_address(address))


def recover_signer(digest: bytes, signature: bytes | str) -> str:
    """The checksum address that signed ``digest``; :class:`SignatureInvalid` otherwise.

    Refuses wrong lengths, ``v`` other than 27/28, ``r`` or ``s`` out of range and high-s
    (THREATS row 11), with one message whatever the cause.
    """
    try:
        raw = _from_hex(signature) if isinstance(signature, str) else bytes(signature)
    except ValueError:
        raise errors.SignatureInvalid(INVALID) from None
    return checksum(recover_address(digest, raw))


def verify_signer(digest: bytes, signature: bytes | str, expected: str) -> str:
    """Recover the signer and require it to be ``expected``; returns the checksum address."""
    signer = recover_signer(digest, signature)
    if signer != to_checksum_address(address_bytes(expected)):
        raise errors.SignatureInvalid(INVALID)
    return signer


def address_of(private_key: PrivateKey) -> str:
    """The checksum address of a private key."""
    return checksum(DigestSigner(_private_key_bytes(private_key)).address)


def sign_approval(private_key: PrivateKey, domain: Domain, request_id: int, deadline: int) -> bytes:
    """The owner's ``Approval`` signature, ready for :meth:`LedgerClient.approve_by_sig`."""
    return sign_digest(private_key, domain.approval_digest(request_id, deadline))


def sign_release(
    private_key: PrivateKey,
    domain: Domain,
    grant_id: int,
    scopes: int,
    nonce: bytes | str,
    issued_at: int,
) -> bytes:
    """A company's ``Release`` signature."""
    return sign_digest(private_key, domain.release_digest(grant_id, scopes, nonce, issued_at))


def sign_receipt(
    private_key: PrivateKey,
    domain: Domain,
    grant_id: int,
    company: str | bytes,
    content_hash: bytes | str,
    issued_at: int,
) -> bytes:
    """The owner's ``Receipt`` signature."""
    return sign_digest(
        private_key, domain.receipt_digest(grant_id, company, content_hash, issued_at)
    )


# --------------------------------------------------------------------------- money


def format_eth(wei: int) -> str:
    """Wei as an exact ETH string without trailing zeros: ``1500000000000000 → "0.0015 ETH"``."""
    if not isinstance(wei, int) or isinstance(wei, bool):
        raise TypeError("wei is an int")
    text = format(Decimal(wei).scaleb(-18), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


# --------------------------------------------------------------------------- the artifact


@dataclass(frozen=True)
class Artifact:
    """The compiled contract shipped in ``vault/artifacts/ConsentLedger.json``."""

    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    solc_version: str


@functools.cache
def load_artifact() -> Artifact:
    """The ledger's ABI and bytecode, read once from the package."""
    text = (resources.files("vault") / "artifacts" / "ConsentLedger.json").read_text("utf-8")
    raw = json.loads(text)
    return Artifact(
        abi=raw["abi"],
        bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(raw["deployedBytecode"].removeprefix("0x")),
        solc_version=raw.get("solcVersion", ""),
    )


def code_matches(runtime: bytes, expected: bytes) -> bool:
    """Whether deployed ``runtime`` code is ``expected`` (an artifact's deployedBytecode).

    solc leaves every immutable (OpenZeppelin's EIP712 caches the domain separator, chain id,
    address and name hashes as immutables) as a zero-filled 32-byte placeholder in
    deployedBytecode, filled in at deployment. So the two must have the same length and may
    differ only inside runs of at least 32 zero bytes of ``expected``.
    """
    if len(runtime) != len(expected) or not expected:
        return False
    if runtime == expected:
        return True
    run_start = -1
    masked = bytearray(len(expected))
    for index, byte in enumerate(expected + b"\x01"):
        if byte == 0:
            if run_start < 0:
                run_start = index
        elif run_start >= 0:
            if index - run_start >= 32:
                masked[run_start:index] = b"\x01" * (index - run_start)
            run_start = -1
    return all(masked[index] or runtime[index] == expected[index] for index in range(len(expected)))


# --------------------------------------------------------------------------- decoding


class Status(enum.IntEnum):
    """A request's stored status; "expired" is derived from ``startsAt + duration``."""

    NONE = 0
    PENDING = 1
    ACTIVE = 2
    DENIED = 3
    CANCELLED = 4
    REVOKED = 5


def _is_status(abi_input: Mapping[str, Any]) -> bool:
    return str(abi_input.get("internalType", "")).endswith(".Status")


def _convert(abi_input: Mapping[str, Any], value: Any) -> Any:
    kind = abi_input["type"]
    if kind == "address":
        return to_checksum_address(value)
    if _is_status(abi_input):
        return Status(value)
    if kind.startswith("bytes") and isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


def _signature(item: Mapping[str, Any]) -> str:
    return f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"


def _canonical_type(abi_input: Mapping[str, Any]) -> str:
    kind = str(abi_input["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in abi_input["components"])
        return f"({inner}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class LedgerEvent:
    """One decoded ledger event with where it happened on the chain."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: bytes
    transaction_hash: bytes
    log_index: int


class AbiCodec:
    """Decodes the ledger's custom errors and events straight from the ABI, with eth-abi.

    Faster than web3's per-event processors (the sync path decodes thousands of logs) and
    tolerant of every shape web3 backends give revert data in.
    """

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.errors: dict[bytes, tuple[str, list[Mapping[str, Any]]]] = {}
        self.events: dict[bytes, tuple[str, list[Mapping[str, Any]]]] = {}
        self.event_topics: dict[str, bytes] = {}
        self.event_inputs: dict[str, list[Mapping[str, Any]]] = {}
        for item in abi:
            if item.get("type") == "error":
                selector = keccak256(_signature(item).encode())[:4]
                self.errors[selector] = (item["name"], list(item["inputs"]))
            elif item.get("type") == "event" and not item.get("anonymous"):
                topic = keccak256(_signature(item).encode())
                self.events[topic] = (item["name"], list(item["inputs"]))
                self.event_topics[item["name"]] = topic
                self.event_inputs[item["name"]] = list(item["inputs"])

    def decode_revert(self, data: bytes) -> errors.ContractReverted:
        """The named error for revert ``data`` (custom error, ``Error(string)`` or ``Panic``)."""
        selector, body = data[:4], data[4:]
        try:
            if selector in self.errors:
                name, inputs = self.errors[selector]
                values = abi_decode([_canonical_type(i) for i in inputs], body)
                return errors.ContractReverted(
                    name,
                    {i["name"]: _convert(i, v) for i, v in zip(inputs, values, strict=True)},
                )
            if selector == _ERROR_SELECTOR:
                message = abi_decode(["string"], body)[0]
                return errors.ContractReverted("Error", {"message": message})
            if selector == _PANIC_SELECTOR:
                return errors.ContractReverted("Panic", {"code": abi_decode(["uint256"], body)[0]})
        except Exception:  # eth-abi raises several unrelated types for malformed data
            return errors.ContractReverted("UnknownRevert", {"data": "0x" + data.hex()})
        return errors.ContractReverted("UnknownRevert", {"data": "0x" + data.hex()})

    def decode_log(self, log: Mapping[str, Any]) -> LedgerEvent | None:
        """Decode one raw ``eth_getLogs`` / receipt log; ``None`` for foreign events."""
        topics = [_as_bytes(t) for t in log["topics"]]
        if not topics or topics[0] not in self.events:
            return None
        name, inputs = self.events[topics[0]]
        args: dict[str, Any] = {}
        indexed = [i for i in inputs if i.get("indexed")]
        for abi_input, topic in zip(indexed, topics[1:], strict=True):
            args[abi_input["name"]] = _convert(abi_input, abi_decode([abi_input["type"]], topic)[0])
        plain = [i for i in inputs if not i.get("indexed")]
        values = abi_decode([_canonical_type(i) for i in plain], _as_bytes(log["data"]))
        for abi_input, value in zip(plain, values, strict=True):
            args[abi_input["name"]] = _convert(abi_input, value)
        return LedgerEvent(
            name=name,
            args=args,
            block_number=_as_int(log["blockNumber"]),
            block_hash=_as_bytes(log["blockHash"]),
            transaction_hash=_as_bytes(log["transactionHash"]),
            log_index=_as_int(log["logIndex"]),
        )


_ERROR_SELECTOR: Final = keccak256(b"Error(string)")[:4]
_PANIC_SELECTOR: Final = keccak256(b"Panic(uint256)")[:4]


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _as_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


@functools.cache
def codec() -> AbiCodec:
    """The codec of the shipped artifact's ABI."""
    return AbiCodec(load_artifact().abi)


def _revert_data(error: BaseException) -> bytes | None:
    """Revert data from whatever web3 or eth-tester raised, if it carries any."""
    data: Any = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and error.args:
        data = error.args[0]
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str):
        text = data.removeprefix("execution reverted: ")
        if text.startswith(("b'", 'b"')):
            try:
                import ast  # eth-tester renders revert bytes as their Python repr

                literal = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None
            return literal if isinstance(literal, bytes) else None
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                return None
    return None


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
        data = _revert_data(error)
        if data is None:
            raise errors.ContractReverted("Reverted", {"message": str(error.message)}) from None
        raise codec().decode_revert(data) from None
    except (requests.ConnectionError, requests.Timeout, TimeExhausted) as error:
        raise errors.LedgerUnavailable(
            f"the ledger node at {endpoint_of(w3)} did not answer ({type(error).__name__})"
        ) from None
    except Web3RPCError as error:
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
        # eth-tester raises its own TransactionFailed for reverts in estimate/call.
        if type(error).__name__ == "TransactionFailed":
            data = _revert_data(error)
            if data is not None:
                raise codec().decode_revert(data) from None
            raise errors.ContractReverted("Reverted", {"message": str(error)}) from None
        raise


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class RequestState:
    """A request (or, once approved, grant) as the contract stores it."""

    id: int
    company: str
    scopes: int
    max_releases: int
    owner: str
    price: int
    starts_at: int
    duration: int
    status: Status
    claimed: int

    @property
    def expires_at(self) -> int | None:
        """When an approved grant stops being active; ``None`` while never approved."""
        return self.starts_at + self.duration if self.starts_at else None

    def is_active(self, now: int) -> bool:
        """Active and unexpired at unix time ``now`` (the contract's ``isActive`` rule)."""
        return self.status is Status.ACTIVE and now < self.starts_at + self.duration


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


Sender = LocalAccount | str


#: Gas added to every estimate. The node estimates against the pending block's timestamp;
#: a settlement (revoke, claim) mined a second later has earned something, and crediting a
#: balance that was zero writes a fresh storage slot: ~22k gas more than the estimate (seen
#: as a flaky out-of-gas revoke on anvil). Unused gas is not charged.
_GAS_HEADROOM: Final = 50_000


def _request_state(request_id: int, fields: Sequence[Any]) -> RequestState | None:
    """A ``getRequest`` tuple as a :class:`RequestState`; ``None`` for the empty slot an
    unknown id reads as."""
    company, scopes, max_releases, owner, price, starts_at, duration, status, claimed = fields
    if int(status) == Status.NONE:
        return None
    return RequestState(
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
                _bytes32(catalog_hash),
                purpose,
            ),
            value=price,
        )
        return int(outcome.event("AccessRequested").args["id"])

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
        return self._transact(self.contract.functions.publishEndpoint(url, _bytes32(terms_hash)))

    # ----------------------------------------------------------------- views

    def get_request(self, request_id: int) -> RequestState:
        """The stored request; :class:`ContractReverted` ``UnknownRequest`` if there is none."""
        state = _request_state(
            request_id, self._view(self.contract.functions.getRequest(request_id))
        )
        if state is None:
            raise errors.ContractReverted("UnknownRequest", {"id": request_id})
        return state

    def get_requests(
        self, request_ids: Sequence[int], *, block: int
    ) -> dict[int, RequestState | None]:
        """The stored requests ``request_ids`` as of block ``block`` (``None`` for an id the
        contract does not know), read in one JSON-RPC batch where the node takes batches.

        Ids are sequential, so ``requestCount`` at the same block says which ids exist; only
        those are read (``getRequest`` reverts on the others, which would fail the batch).
        An in-process backend (a provider without a URL, like py-evm's) takes no batches and
        has no round trip to save: it is asked once per id.
        """
        count = int(call_node(
            self.w3, lambda: self.contract.functions.requestCount().call(block_identifier=block)
        ))
        known = [i for i in request_ids if 1 <= i <= count]
        found: dict[int, RequestState | None] = dict.fromkeys(request_ids)
        if not known:
            return found
        calls: list[TxParams] = [
            {"to": self.address, "data": self.contract.encode_abi("getRequest", args=[i])}
            for i in known
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
        output = [_canonical_type(o) for o in self.contract.get_function_by_name(
            "getRequest").abi["outputs"]]
        for request_id, data in zip(known, raw, strict=True):
            (fields,) = abi_decode(output, bytes(data))
            found[request_id] = _request_state(request_id, fields)
        return found

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
        return call_node(self.w3, lambda: int(self.w3.eth.get_balance(self.address)))

    # ----------------------------------------------------------------- plumbing

    def _view(self, function: Any) -> Any:
        return call_node(self.w3, function.call)

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

        tx_hash = call_node(self.w3, send)
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
    return cast(LocalAccount, Account.from_key(_private_key_bytes(private_key)))


__all__ = [
    "APPROVAL",
    "APPROVAL_TYPEHASH",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "EIP712_DOMAIN",
    "RECEIPT",
    "RECEIPT_TYPEHASH",
    "RELEASE",
    "RELEASE_TYPEHASH",
    "AbiCodec",
    "Artifact",
    "Domain",
    "LedgerClient",
    "LedgerEvent",
    "RequestState",
    "Status",
    "StructType",
    "TxOutcome",
    "address_of",
    "call_node",
    "code_matches",
    "codec",
    "deploy_ledger",
    "format_eth",
    "load_artifact",
    "recover_signer",
    "sign_approval",
    "sign_digest",
    "sign_receipt",
    "sign_release",
    "verify_ledger",
    "verify_signer",
]
