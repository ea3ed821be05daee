"""Where the ledger runs: three chain backends behind one small interface.

* :class:`EmbeddedChain` — py-evm through eth-tester, in this process; deploys the ledger on
  start and offers ten funded accounts. Unit tests and one-process demos.
* :class:`RpcChain` — any JSON-RPC URL; the chain id is checked against the configuration and
  the ledger address must hold the shipped contract (:func:`vault.eth.ledger.verify_ledger`).
* the **devnet** — an anvil node this module starts on 127.0.0.1 with its state in
  ``<home>/devnet/`` (so it survives restarts), deploys the ledger on once and records it in
  ``<home>/devnet/devnet.json``; opened as an :class:`RpcChain`.

:func:`open_chain` picks one from :class:`~vault.config.Settings`. A node that is down or
slow surfaces as :class:`~vault.errors.LedgerUnavailable` naming its URL (THREATS row 19).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from vault import errors
from vault.config import Settings
from vault.eth import ledger
from vault.eth.eip712 import address_of


class Chain(Protocol):
    """A connected chain with a verified ledger on it."""

    @property
    def w3(self) -> Web3: ...

    @property
    def chain_id(self) -> int: ...

    @property
    def ledger_address(self) -> str: ...

    @property
    def rpc_url(self) -> str | None:
        """The node's JSON-RPC URL; ``None`` for an in-process chain."""

    def close(self) -> None: ...


# --------------------------------------------------------------------------- embedded


class EmbeddedChain:
    """py-evm in this process with the ledger deployed by the first funded account.

    Blocks are mined per transaction. ``dev_keys`` are eth-tester's well-known funded test
    keys (1, 2, … 10) — never use them anywhere real.
    """

    rpc_url: str | None = None

    def __init__(self) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3.providers.eth_tester import EthereumTesterProvider

        backend = PyEVMBackend()
        self.tester = EthereumTester(backend)
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.dev_keys: tuple[bytes, ...] = tuple(
            bytes.fromhex(str(key)[2:]) for key in backend.account_keys
        )
        self.accounts: tuple[str, ...] = tuple(address_of(k) for k in self.dev_keys)
        self.chain_id = int(self.w3.eth.chain_id)
        self.ledger_address = ledger.deploy_ledger(self.w3, sender=self.accounts[0])

    def client(self, sender: ledger.Sender | None = None) -> ledger.LedgerClient:
        """A ledger client on this chain (senders may be any of ``accounts``: unlocked)."""
        return ledger.LedgerClient(self.w3, self.ledger_address, sender=sender)

    def time_travel(self, seconds: int) -> int:
        """Mine one block ``seconds`` after the latest one; its timestamp."""
        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        self.tester.time_travel(latest + seconds)
        return latest + seconds

    def snapshot(self) -> Any:
        """A snapshot id for :meth:`revert`."""
        return self.tester.take_snapshot()

    def revert(self, snapshot: Any) -> None:
        self.tester.revert_to_snapshot(snapshot)

    def close(self) -> None:
        """Nothing to release: the chain lives as long as this object."""


# --------------------------------------------------------------------------- rpc


def http_web3(url: str, *, timeout: float, session: requests.Session | None = None) -> Web3:
    """A Web3 over HTTP that fails fast: one attempt per request, ``timeout`` seconds each.

    Pass ``session`` to own the connection pool (and close it); without one web3 keeps a
    pooled session per URL for the life of the process.
    """
    provider = HTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        session=session,
        exception_retry_configuration=None,
    )
    return Web3(provider)


def rpc_call(url: str, method: str, params: list[Any], *, timeout: float) -> Any:
    """One JSON-RPC call on a throwaway connection (probes, anvil's dev methods)."""
    try:
        response = requests.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=timeout,
        )
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as error:
        raise errors.LedgerUnavailable(
            f"the node at {ledger.redact_url(url)} did not answer {method} "
            f"({type(error).__name__})"
        ) from None
    if "error" in body:
        raise errors.LedgerUnavailable(
            f"the node at {ledger.redact_url(url)} refused {method}: {body['error']}"
        )
    return body.get("result")


class RpcChain:
    """A JSON-RPC node with a verified ledger."""

    def __init__(self, url: str, *, chain_id: int, ledger_address: str, timeout: float) -> None:
        self.rpc_url: str | None = url
        self._session = requests.Session()
        self.w3 = http_web3(url, timeout=timeout, session=self._session)
        try:
            self.domain = ledger.verify_ledger(self.w3, ledger_address, chain_id)
        except BaseException:
            self._session.close()
            raise
        self.chain_id = chain_id
        self.ledger_address = self.domain.verifying_contract

    def client(self, sender: ledger.Sender | None = None) -> ledger.LedgerClient:
        return ledger.LedgerClient(self.w3, self.ledger_address, sender=sender)

    def close(self) -> None:
        self._session.close()


# --------------------------------------------------------------------------- anvil

ANVIL_CHAIN_ID = 31337
#: anvil's default, public test mnemonic: its accounts are funded and unlocked on anvil.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_dev_accounts(count: int = 10) -> tuple[LocalAccount, ...]:
    """The first ``count`` of anvil's funded test accounts (public keys — dev only)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(count)
    )


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_anvil() -> Path:
    """anvil from node_modules (npm ``@foundry-rs/anvil``).

    The platform package's native binary is preferred over ``node_modules/.bin/anvil``: that
    one is a Node shim that forwards SIGTERM and exits at once, so its pid would not tell us
    when anvil has finished writing its state file.
    """
    modules = repo_root() / "node_modules"
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    native = modules / "@foundry-rs" / f"anvil-{platform.system().lower()}-{machine}" / "bin"
    for candidate in (native / "anvil", modules / ".bin" / "anvil"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    # Not `npm ci`: the lock omits other platforms' anvil binaries and ci refuses it (Makefile).
    raise errors.LedgerUnavailable(
        f"anvil is not installed under {modules}",
        hint="in the vault checkout run `npm install` and `pip install -e '.[owner]'` (what "
        "`make install` does), or use another node: VAULT_CHAIN=rpc with VAULT_RPC_URL, "
        "VAULT_CHAIN_ID and VAULT_LEDGER",
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _anvil_args(port: int, state_file: Path | None, extra_args: tuple[str, ...]) -> list[str]:
    args = [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--chain-id", str(ANVIL_CHAIN_ID), *extra_args]
    if state_file is not None:
        args += ["--state", str(state_file), "--state-interval", "1"]
    return args


def _await_rpc(url: str, pid: int, *, timeout: float, log_file: Path | None) -> None:
    """Wait until ``url`` answers; stop ``pid`` and raise LedgerUnavailable if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise errors.LedgerUnavailable(
                f"anvil exited before answering at {url}",
                hint=f"see {log_file}" if log_file else "is the port already in use?",
            )
        if rpc_answers(url, timeout=0.5):
            return
        time.sleep(0.05)
    stop_pid(pid, marker="anvil")
    raise errors.LedgerUnavailable(f"anvil did not answer at {url} within {timeout:.0f} s")


def _die_with_parent() -> None:
    """In the child before exec: on Linux, have the kernel SIGTERM it when its parent dies, so
    a test session or benchmark killed without cleanup leaves no anvil behind."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_anvil(
    *, port: int, extra_args: tuple[str, ...] = (), startup_timeout: float = 30.0
) -> subprocess.Popen[bytes]:
    """Start an anvil child on 127.0.0.1:``port`` (in-memory chain) and wait until it answers.

    The caller owns the process and must stop it (see :class:`AnvilNode`).
    """
    process = subprocess.Popen(
        _anvil_args(port, None, extra_args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        _await_rpc(f"http://127.0.0.1:{port}", process.pid, timeout=startup_timeout, log_file=None)
    except errors.LedgerUnavailable:
        process.wait()
        raise
    return process


def spawn_detached_anvil(
    *, port: int, state_file: Path, log_file: Path, startup_timeout: float = 30.0
) -> int:
    """Start an anvil that outlives this process (the devnet); its pid once it answers.

    It runs in its own session (a Ctrl-C here does not reach it), logs to ``log_file``, loads
    its chain from ``state_file`` and writes it back every second and on SIGTERM. Spawned
    without a ``Popen`` object, which would warn about a child still running when collected.
    """
    descriptor = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        args = _anvil_args(port, state_file, ())
        pid = os.posix_spawn(
            args[0],
            args,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, descriptor, 1),
                (os.POSIX_SPAWN_DUP2, descriptor, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(descriptor)
    _await_rpc(f"http://127.0.0.1:{port}", pid, timeout=startup_timeout, log_file=log_file)
    return pid


def rpc_answers(url: str, *, timeout: float) -> bool:
    """Whether a JSON-RPC node answers ``eth_chainId`` at ``url``."""
    try:
        return bool(rpc_call(url, "eth_chainId", [], timeout=timeout))
    except errors.LedgerUnavailable:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\x00") if part]


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our own exited child; a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return "Z" not in line.split()[1]
    return True


def process_matches(pid: int, marker: str) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker``."""
    return _alive(pid) and any(marker in part for part in _cmdline(pid))


def stop_pid(pid: int, *, marker: str, timeout: float = 15.0) -> bool:
    """SIGTERM exactly ``pid`` if its command line contains ``marker``; wait for it to exit.

    Escalates to SIGKILL after ``timeout``. False when no such process was running.
    """
    if not process_matches(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)
    return True


class AnvilNode:
    """A throwaway anvil on a free 127.0.0.1 port (tests, benchmarks); no state file.

    ``accounts`` are anvil's funded, unlocked dev accounts. Use as a context manager or call
    :meth:`stop`; it stops exactly the process it started.
    """

    chain_id = ANVIL_CHAIN_ID

    def __init__(self, *, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.process = start_anvil(port=self.port, extra_args=extra_args)
        self._session = requests.Session()
        self.w3 = http_web3(self.rpc_url, timeout=30.0, session=self._session)
        self.accounts = anvil_dev_accounts()

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(str(account.address) for account in self.accounts)

    def rpc(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call, e.g. ``rpc("evm_snapshot")``, ``rpc("evm_revert", snapshot)``."""
        return rpc_call(self.rpc_url, method, list(params), timeout=30.0)

    def stop(self) -> None:
        self._session.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- devnet

DEFAULT_DEVNET_PORT = 8545


@dataclass(frozen=True)
class DevnetStatus:
    """What ``vault devnet status --json`` prints."""

    running: bool
    rpc_url: str | None
    chain_id: int | None
    ledger: str | None
    pid: int | None
    port: int | None
    state_file: str
    block_number: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Devnet:
    """The anvil devnet kept in ``<home>/devnet/``.

    Files: ``anvil.pid`` (the pid this module started), ``state.json`` (anvil's chain
    state), ``anvil.log``, and ``devnet.json`` (port, chain id and the ledger address).
    """

    def __init__(self, home: Path) -> None:
        self.dir = home / "devnet"
        self.pid_file = self.dir / "anvil.pid"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "anvil.log"
        self.record_file = self.dir / "devnet.json"

    def _record(self) -> dict[str, Any]:
        try:
            value = json.loads(self.record_file.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise errors.CorruptFile(f"{self.record_file} is unreadable: {error}") from None
        return value if isinstance(value, dict) else {}

    def _write_record(self, record: dict[str, Any]) -> None:
        temporary = self.record_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
        temporary.replace(self.record_file)

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _running_pid(self) -> int | None:
        pid = self._pid()
        # The state path in the command line ties the pid to this home, not just to "anvil".
        if pid is not None and process_matches(pid, str(self.state_file)):
            return pid
        return None

    def status(self) -> DevnetStatus:
        record = self._record()
        pid = self._running_pid()
        port = record.get("port")
        rpc_url = f"http://127.0.0.1:{port}" if port else None
        block_number = None
        if pid is not None and rpc_url is not None:
            with contextlib.suppress(errors.LedgerUnavailable):
                block_number = int(rpc_call(rpc_url, "eth_blockNumber", [], timeout=2.0), 16)
        return DevnetStatus(
            running=pid is not None,
            rpc_url=rpc_url,
            chain_id=record.get("chain_id"),
            ledger=record.get("ledger"),
            pid=pid,
            port=port,
            state_file=str(self.state_file),
            block_number=block_number,
        )

    def up(self, *, port: int | None = None, timeout: float = 30.0) -> DevnetStatus:
        """Start anvil (unless this home's devnet already runs) and deploy the ledger once."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = self._record()
        if self._running_pid() is None:
            chosen = port or int(record.get("port") or DEFAULT_DEVNET_PORT)
            pid = spawn_detached_anvil(
                port=chosen,
                state_file=self.state_file,
                log_file=self.log_file,
                startup_timeout=timeout,
            )
            self.pid_file.write_text(f"{pid}\n")
            record["port"] = chosen
        url = f"http://127.0.0.1:{record['port']}"
        record["chain_id"] = ANVIL_CHAIN_ID
        address = record.get("ledger")
        with requests.Session() as session:
            w3 = http_web3(url, timeout=timeout, session=session)
            try:
                if not address:
                    raise errors.LedgerNotDeployed("no ledger recorded")
                ledger.verify_ledger(w3, address, ANVIL_CHAIN_ID)
            except errors.LedgerNotDeployed:
                # A fresh state, or one whose ledger predates the shipped artifact.
                deployer = anvil_dev_accounts(1)[0]
                record["ledger"] = ledger.deploy_ledger(w3, sender=str(deployer.address))
                record["deployed_block"] = int(w3.eth.block_number)
        self._write_record(record)
        return self.status()

    def down(self) -> bool:
        """Stop the anvil this devnet started (matched by pid and state path); False if none."""
        pid = self._pid()
        stopped = pid is not None and stop_pid(pid, marker=str(self.state_file))
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def fund(self, address: str, wei: int, *, timeout: float = 30.0) -> int:
        """Send ``wei`` from anvil's first funded dev account to ``address`` (the devnet's
        faucet); the balance ``address`` then holds."""
        record = self._record()
        if self._running_pid() is None or not record.get("port"):
            raise errors.LedgerUnavailable(
                f"the devnet in {self.dir} is not running", hint="start it with `vault devnet up`"
            )
        recipient = Web3.to_checksum_address(address)
        faucet = anvil_dev_accounts(1)[0].address
        with requests.Session() as session:
            w3 = http_web3(f"http://127.0.0.1:{record['port']}", timeout=timeout, session=session)

            def send() -> int:
                sent = w3.eth.send_transaction(
                    {"from": faucet, "to": recipient, "value": Web3.to_wei(wei, "wei")}
                )
                w3.eth.wait_for_transaction_receipt(sent, timeout=timeout, poll_latency=0.05)
                return int(w3.eth.get_balance(recipient))

            return ledger.call_node(w3, send)

    def open(self, *, timeout: float, chain_id: int | None, ledger_address: str | None) -> RpcChain:
        record = self._record()
        if self._running_pid() is None or not record.get("port"):
            raise errors.LedgerUnavailable(
                f"the devnet in {self.dir} is not running", hint="start it with `vault devnet up`"
            )
        address = ledger_address or record.get("ledger")
        if not address:
            raise errors.LedgerNotDeployed(f"no ledger recorded in {self.record_file}")
        return RpcChain(
            f"http://127.0.0.1:{record['port']}",
            chain_id=chain_id or int(record.get("chain_id") or ANVIL_CHAIN_ID),
            ledger_address=address,
            timeout=timeout,
        )


# --------------------------------------------------------------------------- choosing


def open_chain(settings: Settings) -> Chain:
    """The chain ``settings.chain`` names, connected, with its ledger verified."""
    if settings.chain == "embedded":
        return EmbeddedChain()
    if settings.chain == "devnet":
        return Devnet(settings.home).open(
            timeout=settings.rpc_timeout_seconds,
            chain_id=settings.chain_id,
            ledger_address=settings.ledger,
        )
    if not settings.rpc_url:
        raise errors.LedgerUnavailable(
            "chain=rpc needs an RPC URL", hint="set VAULT_RPC_URL to the node's JSON-RPC URL"
        )
    if settings.chain_id is None:
        raise errors.ChainMismatch(
            f"chain=rpc needs the expected chain id for {ledger.redact_url(settings.rpc_url)}",
            hint="set VAULT_CHAIN_ID; vault refuses to guess which chain it talks to",
        )
    if not settings.ledger:
        raise errors.LedgerNotDeployed(
            f"no ledger address configured for {ledger.redact_url(settings.rpc_url)}"
        )
    return RpcChain(
        settings.rpc_url,
        chain_id=settings.chain_id,
        ledger_address=settings.ledger,
        timeout=settings.rpc_timeout_seconds,
    )
