"""A release's two secp256k1 operations, on a thread of their own.

Recovering the company's address from its request and signing the owner's receipt are the
bulk of a release's own work. Done on the event loop, interleaved with the HTTP stack, they
measured about twice their cost in a tight loop (a recovery 64 µs instead of 29): the
libsecp256k1 precomputed tables (~1 MiB) are evicted from the core's cache between
requests. On this thread they keep a core and its cache to themselves, and since cffi
releases the GIL inside libsecp256k1 they run beside the loop's Python work.

Both operations of one release are one job, so a release crosses threads once: the receipt
is signed in the same job, but only when the request recovers to the grant's company (what
the loop will then check, with everything else, before it lets the receipt out). Jobs that
queue up while one batch runs make the next batch, and a batch is handed back to the loop
with a single wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass

from vault import ledger

_STOP = None


@dataclass(frozen=True, slots=True)
class Verified:
    """The request's signer, and the receipt signature when ``signer`` is the company the
    receipt was prepared for (``None`` otherwise)."""

    signer: str
    receipt_signature: bytes | None


@dataclass(frozen=True, slots=True)
class _Job:
    request_digest: bytes
    request_signature: str
    company: str | None
    receipt_digest: bytes | None
    future: asyncio.Future[Verified]


class SignatureThread:
    """Recovers request signers and signs receipts with the owner's key, off the loop."""

    def __init__(self, owner_signer: ledger.DigestSigner) -> None:
        self._owner_signer = owner_signer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="release-signatures", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"SignatureThread(owner={self._owner_signer.address})"

    def recover_and_sign(
        self,
        request_digest: bytes,
        request_signature: str,
        *,
        company: str | None,
        receipt_digest: bytes | None,
    ) -> asyncio.Future[Verified]:
        """Await the signer of ``request_digest`` (:class:`vault.errors.SignatureInvalid` if
        there is none) and, if it is ``company``, the owner's signature of
        ``receipt_digest``. Must be called on the event loop that awaits the result."""
        future: asyncio.Future[Verified] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(request_digest, request_signature, company, receipt_digest, future))
        return future

    def close(self) -> None:
        """Finish the queued jobs and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            outcomes: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Verified | Exception]]] = {}
            for job in batch:
                if job is None:
                    continue
                outcomes.setdefault(job.future.get_loop(), []).append((job, self._run(job)))
            for loop, done in outcomes.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, done)
            if _STOP in batch:
                return

    def _run(self, job: _Job) -> Verified | Exception:
        try:
            signer = ledger.recover_signer(job.request_digest, job.request_signature)
        except Exception as error:  # handed to the awaiting coroutine, which decides
            return error
        receipt_signature = None
        if (
            job.company is not None
            and job.receipt_digest is not None
            and signer.lower() == job.company.lower()
        ):
            receipt_signature = self._owner_signer.sign(job.receipt_digest)
        return Verified(signer, receipt_signature)


def _settle(done: list[tuple[_Job, Verified | Exception]]) -> None:
    for job, outcome in done:
        if job.future.cancelled():
            continue
        if isinstance(outcome, Exception):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)
