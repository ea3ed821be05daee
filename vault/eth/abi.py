"""The ConsentLedger artifact (ABI and bytecode, drift-checked against the Hardhat build)
and decoding: events from logs, custom errors from revert data."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address

from vault import errors
from vault.canonical import keccak256
from vault.grant import Status

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
    return f"{item['name']}({','.join(canonical_type(i) for i in item['inputs'])})"


def canonical_type(abi_input: Mapping[str, Any]) -> str:
    kind = str(abi_input["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in abi_input["components"])
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
                values = abi_decode([canonical_type(i) for i in inputs], body)
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
        values = abi_decode([canonical_type(i) for i in plain], _as_bytes(log["data"]))
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


def revert_data(error: BaseException) -> bytes | None:
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
