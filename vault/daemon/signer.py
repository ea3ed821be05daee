"""The daemon's signing process: recovers release signers and signs the owner's receipts.

:class:`vault.daemon.signatures.SignerProcess` runs it as ``python -P -m vault.daemon.signer``
and talks to it over its standard streams in fixed-size little-endian frames:

* first the owner's 32-byte private key (a pipe, never argv or the environment, which
  other processes can read under ``/proc``);
* then any number of :data:`JOB` frames: job id (u64), the request's EIP-712 digest, its
  65-byte signature, whether a receipt is wanted (u8), the company it is for (20 bytes) and
  the receipt's digest;
* for each job, in order, one :data:`RESULT` frame: job id, :data:`INVALID` /
  :data:`RECOVERED` / :data:`SIGNED`, the signer's 20-byte address and the owner's receipt
  signature (zeros unless ``SIGNED``).

The receipt is signed only when the request recovers to the company it was prepared for.
The process ignores SIGINT (a terminal's Ctrl-C reaches the whole process group; the daemon
decides when to stop) and exits when its standard input closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
from typing import BinaryIO, Final

from vault import errors
from vault.eth.secp256k1 import DigestSigner, recover_address

JOB: Final = struct.Struct("<Q32s65sB20s32s")
RESULT: Final = struct.Struct("<QB20s65s")
INVALID: Final = 0
RECOVERED: Final = 1
SIGNED: Final = 2

_NO_ADDRESS = bytes(20)
_NO_SIGNATURE = bytes(65)


def answer(owner: DigestSigner, job: bytes) -> bytes:
    """The :data:`RESULT` frame for one :data:`JOB` frame."""
    job_id, digest, signature, wants_receipt, company, receipt_digest = JOB.unpack(job)
    try:
        signer = recover_address(digest, signature)
    except errors.SignatureInvalid:
        return RESULT.pack(job_id, INVALID, _NO_ADDRESS, _NO_SIGNATURE)
    if wants_receipt and signer == company:
        return RESULT.pack(job_id, SIGNED, signer, owner.sign(receipt_digest))
    return RESULT.pack(job_id, RECOVERED, signer, _NO_SIGNATURE)


def serve(source: BinaryIO, sink: int) -> None:
    """Read the key, then answer jobs from ``source`` onto the file descriptor ``sink``
    until ``source`` ends."""
    key = source.read(32)
    if len(key) != 32:
        return
    owner = DigestSigner(key)
    while len(job := source.read(JOB.size)) == JOB.size:
        os.write(sink, answer(owner, job))


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(BrokenPipeError):  # the daemon went away mid-answer
        serve(sys.stdin.buffer, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
