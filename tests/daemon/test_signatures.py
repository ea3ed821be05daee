"""The signing process: recovery and receipt signing beside the event loop, in a real child
process (killed and stopped for real where a test needs it)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from vault import errors, ledger
from vault.daemon.signatures import SignerProcess, Verified
from vault.eth.secp256k1 import SECP256K1_N

OWNER_KEY = bytes.fromhex("11" * 32)
COMPANY_KEY = bytes.fromhex("22" * 32)
STRANGER_KEY = bytes.fromhex("33" * 32)
COMPANY = ledger.address_of(COMPANY_KEY)
DOMAIN = ledger.Domain(31337, "0x" + "5a" * 20)
ISSUED_AT = 1_700_000_000

T = TypeVar("T")


def with_signer(test: Callable[[SignerProcess], Awaitable[T]]) -> T:
    async def run() -> T:
        signer = SignerProcess(OWNER_KEY)
        await signer.start()
        try:
            return await test(signer)
        finally:
            await signer.stop()

    return asyncio.run(run())


def request(grant_id: int, key: bytes = COMPANY_KEY) -> tuple[bytes, str]:
    nonce = "0x" + secrets.token_hex(32)
    digest = DOMAIN.release_digest(grant_id, 1, nonce, ISSUED_AT)
    signature = ledger.sign_release(key, DOMAIN, grant_id, 1, nonce, ISSUED_AT)
    return digest, "0x" + signature.hex()


def receipt(grant_id: int) -> bytes:
    return DOMAIN.receipt_digest(grant_id, COMPANY, bytes(32), ISSUED_AT)


def test_recovers_the_signer_and_signs_the_receipt_for_that_company() -> None:
    async def test(signer: SignerProcess) -> list[Verified]:
        jobs = [signer.recover_and_sign(*request(grant_id), company=COMPANY.lower(),
                                        receipt_digest=receipt(grant_id))
                for grant_id in range(40)]
        return list(await asyncio.gather(*jobs))

    for grant_id, verified in enumerate(with_signer(test)):
        assert verified.signer == COMPANY
        assert verified.receipt_signature is not None
        owner = ledger.recover_signer(receipt(grant_id), verified.receipt_signature)
        assert owner == ledger.address_of(OWNER_KEY)


def test_no_receipt_for_another_signer_or_without_a_prepared_receipt() -> None:
    async def test(signer: SignerProcess) -> tuple[Verified, Verified]:
        stranger = await signer.recover_and_sign(*request(1, STRANGER_KEY), company=COMPANY,
                                                 receipt_digest=receipt(1))
        unprepared = await signer.recover_and_sign(*request(2), company=None,
                                                   receipt_digest=None)
        return stranger, unprepared

    stranger, unprepared = with_signer(test)
    assert stranger == Verified(ledger.address_of(STRANGER_KEY), None)
    assert unprepared == Verified(COMPANY, None)


def test_invalid_signatures_fail_only_their_own_request() -> None:
    digest, good = request(1)
    raw = bytes.fromhex(good[2:])
    s = int.from_bytes(raw[32:64], "big")
    high_s = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    invalid = [good[:-2] + "1d", "0x" + high_s.hex(), "0x" + "00" * 65, "0xzz", good[:-2]]

    async def test(signer: SignerProcess) -> list[BaseException | Verified]:
        bad = [signer.recover_and_sign(digest, sig, company=COMPANY, receipt_digest=None)
               for sig in invalid]
        abandoned = asyncio.ensure_future(
            signer.recover_and_sign(digest, good, company=COMPANY, receipt_digest=None))
        await asyncio.sleep(0)
        abandoned.cancel()
        fine = signer.recover_and_sign(digest, good, company=COMPANY, receipt_digest=None)
        return list(await asyncio.gather(*bad, fine, return_exceptions=True))

    *refused, accepted = with_signer(test)
    assert all(isinstance(r, errors.SignatureInvalid) for r in refused), refused
    assert accepted == Verified(COMPANY, None)


def test_a_killed_process_fails_its_waiting_requests_and_the_next_one_restarts_it() -> None:
    async def test(signer: SignerProcess) -> None:
        first = signer.pid
        assert first is not None
        os.kill(first, signal.SIGSTOP)  # frozen, so the jobs below are surely still waiting
        waiting = [asyncio.ensure_future(signer.recover_and_sign(
            *request(i), company=COMPANY, receipt_digest=receipt(i))) for i in range(5)]
        await asyncio.sleep(0.05)
        os.kill(first, signal.SIGKILL)
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, errors.SigningUnavailable) for o in outcomes), outcomes
        again = await signer.recover_and_sign(*request(9), company=COMPANY,
                                              receipt_digest=receipt(9))
        assert again.signer == COMPANY and again.receipt_signature is not None
        assert signer.pid not in (None, first)

    with_signer(test)


def test_the_key_and_the_daemon_environment_stay_out_of_the_process_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VAULT_PASSPHRASE", "correct horse battery staple")

    async def test(signer: SignerProcess) -> tuple[bytes, bytes]:
        proc = Path(f"/proc/{signer.pid}")
        return (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()

    cmdline, environ = with_signer(test)
    for leaked in (OWNER_KEY.hex().encode(), OWNER_KEY, b"VAULT_PASSPHRASE", b"correct horse"):
        assert leaked not in cmdline and leaked not in environ


def test_stop_ends_the_process_and_later_answers_come_in_process() -> None:
    async def run() -> None:
        signer = SignerProcess(OWNER_KEY)
        await signer.start()
        pid = signer.pid
        first = await signer.recover_and_sign(*request(1), company=None, receipt_digest=None)
        assert first.signer == COMPANY
        await signer.stop()
        assert pid is not None and not Path(f"/proc/{pid}").exists()
        later = await signer.recover_and_sign(*request(2), company=COMPANY,
                                              receipt_digest=receipt(2))
        assert later.signer == COMPANY and signer.pid is None
        assert later.receipt_signature is not None

    asyncio.run(run())


def test_a_release_on_another_loop_is_answered_in_process_identically() -> None:
    digest, signature = request(1)
    bad = signature[:-2] + "1d"
    signer = SignerProcess(OWNER_KEY)

    async def ask() -> tuple[Verified, BaseException | Verified]:
        good = await signer.recover_and_sign(digest, signature, company=COMPANY,
                                             receipt_digest=receipt(1))
        refused = await asyncio.gather(
            signer.recover_and_sign(digest, bad, company=COMPANY, receipt_digest=None),
            return_exceptions=True)
        return good, refused[0]

    home = asyncio.new_event_loop()
    thread = threading.Thread(target=home.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(signer.start(), home).result(timeout=30)
        by_process = asyncio.run_coroutine_threadsafe(ask(), home).result(timeout=30)
        in_process = asyncio.run(ask())  # another loop: answered right there
    finally:
        asyncio.run_coroutine_threadsafe(signer.stop(), home).result(timeout=30)
        home.call_soon_threadsafe(home.stop)
        thread.join(timeout=30)
        home.close()
    assert in_process[0] == by_process[0]  # RFC 6979: the same receipt signature, byte for byte
    assert by_process[0].receipt_signature is not None
    assert isinstance(in_process[1], errors.SignatureInvalid)
    assert isinstance(by_process[1], errors.SignatureInvalid)


def test_a_stuck_process_is_killed_and_its_waiting_requests_refused() -> None:
    async def run() -> None:
        signer = SignerProcess(OWNER_KEY, stall_seconds=0.3)
        await signer.start()
        try:
            stuck = signer.pid
            assert stuck is not None
            os.kill(stuck, signal.SIGSTOP)  # alive, never answering
            outcomes = await asyncio.gather(
                *(signer.recover_and_sign(*request(i), company=None, receipt_digest=None)
                  for i in range(3)),
                return_exceptions=True)
            assert all(isinstance(o, errors.SigningUnavailable) for o in outcomes), outcomes
            assert (await signer.recover_and_sign(*request(7), company=None,
                                                  receipt_digest=None)).signer == COMPANY
            assert signer.pid not in (None, stuck)
        finally:
            await signer.stop()

    asyncio.run(run())


def test_a_process_that_cannot_start_is_a_signing_unavailable_error(tmp_path: Path) -> None:
    async def run() -> None:
        signer = SignerProcess(OWNER_KEY, python=str(tmp_path / "no-such-python"))
        with pytest.raises(errors.SigningUnavailable, match="could not start"):
            await signer.start()
        await signer.stop()

    asyncio.run(run())
