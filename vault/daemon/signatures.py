"""A release's two secp256k1 operations, in a process of their own.

Recovering the company's address from its request and signing the owner's receipt are the
bulk of a release's own work. On the event loop, interleaved with the HTTP stack, they
measured twice their cost in a tight loop (a recovery 64 µs instead of 29: libsecp256k1's
~1 MiB of precomputed tables is evicted from the core's cache between requests). A thread
did not help enough: the loop holds the GIL while it parses requests, so the thread only
ran once the loop went idle, and releases moved in lockstep waves. A separate process
(:mod:`vault.daemon.signer`) works beside the loop on the other core with its own GIL and
its own cache; bench_release measured release/health at 16 in flight 36-45 % with the
thread and 50-52 % with the process.

Both operations of one release are one job, so a release crosses over once: the receipt is
signed in the same job, but only when the request recovers to the grant's company (the loop
then checks everything else before it lets the receipt out). Results come back on the
process's stdout, read by the event loop itself — no thread in between.

If the process dies, the releases waiting on it fail with
:class:`~vault.errors.SigningUnavailable` (503, retryable) and the next release starts a new
one. A process that stops answering (alive but stuck: a job takes ~60 µs, so a job waiting
``stall_seconds`` means it will not come back) is killed, which is the same case.

The process serves the event loop that started it (the daemon's, from its lifespan); a
release on any other loop — the app called in-process, as some tests do — is answered right
there by the same code, :func:`vault.daemon.signer.answer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import vault
from vault import errors
from vault.daemon.signer import INVALID, JOB, RESULT, SIGNED, answer
from vault.eth import eip712
from vault.eth.secp256k1 import INVALID as INVALID_SIGNATURE
from vault.eth.secp256k1 import DigestSigner

log = logging.getLogger("vault.daemon")

_STOP_TIMEOUT_SECONDS = 5.0
_STOPPED = "the vault's signing process stopped while answering; retry the request"


@dataclass(frozen=True, slots=True)
class Verified:
    """The request's signer, and the receipt signature when ``signer`` is the company the
    receipt was prepared for (``None`` otherwise)."""

    signer: str
    receipt_signature: bytes | None


class SignerProcess:
    """The daemon's end of :mod:`vault.daemon.signer`."""

    def __init__(
        self, owner_key: bytes, *, stall_seconds: float = 5.0, python: str = sys.executable
    ) -> None:
        if len(owner_key) != 32:
            raise ValueError("a private key is 32 bytes")
        self._owner_key = owner_key
        self._stall_seconds = stall_seconds
        self._python = python
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the process serves
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # In submission order, which is the order the process answers in: the first is the
        # oldest. Each with its monotonic submission time, for the watchdog.
        self._pending: dict[int, tuple[asyncio.Future[Verified], float]] = {}
        self._job_ids = itertools.count()
        self._starting = asyncio.Lock()
        self._in_process: DigestSigner | None = None

    def __repr__(self) -> str:
        return f"SignerProcess(pid={self.pid})"

    @property
    def pid(self) -> int | None:
        """The running process's id (``None`` before :meth:`start`, after :meth:`stop`, and
        between its death and the next release)."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the process, to serve the running event loop
        (:class:`~vault.errors.SigningUnavailable` if it cannot be started)."""
        async with self._starting:
            if self._process is not None:
                return
            self._loop = asyncio.get_running_loop()
            try:
                process = await asyncio.create_subprocess_exec(
                    self._python, "-P", "-m", "vault.daemon.signer",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL, env=_child_environment(),
                )
            except OSError as error:
                raise errors.SigningUnavailable(
                    f"the vault could not start its signing process: {error.strerror}"
                ) from None
            assert process.stdin is not None
            process.stdin.write(self._owner_key)
            self._process = process
            self._reader = asyncio.create_task(self._read(process))
            self._watchdog = asyncio.create_task(self._watch(process))

    async def recover_and_sign(
        self,
        request_digest: bytes,
        request_signature: str,
        *,
        company: str | None,
        receipt_digest: bytes | None,
    ) -> Verified:
        """The signer of ``request_digest`` (:class:`~vault.errors.SignatureInvalid` if
        there is none) and, if it is ``company``, the owner's signature of
        ``receipt_digest``."""
        try:
            signature = bytes.fromhex(request_signature.removeprefix("0x"))
        except ValueError:
            raise errors.SignatureInvalid(INVALID_SIGNATURE) from None
        if len(signature) != 65:
            raise errors.SignatureInvalid(INVALID_SIGNATURE)
        fields = (
            request_digest, signature, company is not None and receipt_digest is not None,
            eip712.address_bytes(company) if company is not None else bytes(20),
            receipt_digest if receipt_digest is not None else bytes(32),
        )
        if self._loop is not asyncio.get_running_loop():
            if self._in_process is None:
                self._in_process = DigestSigner(self._owner_key)
            _, outcome = _outcome(answer(self._in_process, JOB.pack(0, *fields)))
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        if self._process is None:
            await self.start()
        process = self._process
        assert process is not None and process.stdin is not None
        job_id = next(self._job_ids)
        future: asyncio.Future[Verified] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = (future, time.monotonic())
        process.stdin.write(JOB.pack(job_id, *fields))
        return await future

    async def stop(self) -> None:
        """Close the process's input and wait for it to finish; from then on releases are
        answered in-process."""
        self._loop = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        process, reader = self._process, self._reader
        if process is None or reader is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                self._settle(await process.stdout.readexactly(RESULT.size))
        # Everything below runs before any other coroutine can queue a job on the dead
        # process: the next release starts a new one.
        self._process = None
        failure = errors.SigningUnavailable(_STOPPED)
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        code = await process.wait()
        if self._loop is not None:
            log.warning("the signing process exited (code %s); the next release restarts it", code)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        while self._process is process:
            await asyncio.sleep(self._stall_seconds / 2)
            oldest = next(iter(self._pending.values()), None)
            if (
                self._process is process
                and oldest is not None
                and time.monotonic() - oldest[1] > self._stall_seconds
            ):
                log.warning("the signing process stopped answering; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                return

    def _settle(self, frame: bytes) -> None:
        job_id, outcome = _outcome(frame)
        future, _ = self._pending.pop(job_id, (None, 0.0))
        if future is None or future.done():  # its release was cancelled meanwhile
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _outcome(frame: bytes) -> tuple[int, Verified | errors.SignatureInvalid]:
    job_id, outcome, signer, receipt_signature = RESULT.unpack(frame)
    if outcome == INVALID:
        return job_id, errors.SignatureInvalid(INVALID_SIGNATURE)
    return job_id, Verified(
        eip712.checksum(signer), receipt_signature if outcome == SIGNED else None
    )


def _child_environment() -> dict[str, str]:
    """Only what the child needs to import this very ``vault``: none of the daemon's
    environment (which may hold ``VAULT_PASSPHRASE``) is passed on."""
    return {"PYTHONPATH": str(Path(vault.__file__).resolve().parent.parent), "PATH": os.defpath}
