"""The signature thread: recovery and receipt signing off the event loop."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from vault import errors, ledger
from vault.daemon.signatures import SignatureThread, Verified

OWNER_KEY = bytes.fromhex("11" * 32)
COMPANY_KEY = bytes.fromhex("22" * 32)
COMPANY = ledger.address_of(COMPANY_KEY)
DOMAIN = ledger.Domain(31337, "0x" + "5a" * 20)


@pytest.fixture
def thread():
    signatures = SignatureThread(ledger.DigestSigner(OWNER_KEY))
    yield signatures
    signatures.close()


def request(grant_id: int, key: bytes = COMPANY_KEY) -> tuple[bytes, str]:
    nonce = "0x" + secrets.token_hex(32)
    digest = DOMAIN.release_digest(grant_id, 1, nonce, 1_700_000_000)
    signature = ledger.sign_release(key, DOMAIN, grant_id, 1, nonce, 1_700_000_000)
    return digest, "0x" + signature.hex()


def receipt(grant_id: int) -> bytes:
    return DOMAIN.receipt_digest(grant_id, COMPANY, bytes(32), 1_700_000_000)


def test_recovers_the_signer_and_signs_the_receipt_for_that_company(
    thread: SignatureThread,
) -> None:
    async def go() -> list[Verified]:
        jobs = []
        for grant_id in range(40):  # queued together, so they run as batches
            digest, signature = request(grant_id)
            jobs.append(thread.recover_and_sign(digest, signature, company=COMPANY.lower(),
                                                receipt_digest=receipt(grant_id)))
        return list(await asyncio.gather(*jobs))

    for grant_id, verified in enumerate(asyncio.run(go())):
        assert verified.signer == COMPANY
        assert verified.receipt_signature is not None
        owner = ledger.recover_signer(receipt(grant_id), verified.receipt_signature)
        assert owner == ledger.address_of(OWNER_KEY)


def test_no_receipt_for_another_signer_or_without_a_prepared_receipt(
    thread: SignatureThread,
) -> None:
    async def go() -> tuple[Verified, Verified]:
        digest, signature = request(1, key=bytes.fromhex("33" * 32))
        stranger = await thread.recover_and_sign(digest, signature, company=COMPANY,
                                                 receipt_digest=receipt(1))
        digest, signature = request(2)
        unprepared = await thread.recover_and_sign(digest, signature, company=None,
                                                   receipt_digest=None)
        return stranger, unprepared

    stranger, unprepared = asyncio.run(go())
    assert stranger.signer == ledger.address_of(bytes.fromhex("33" * 32))
    assert stranger.receipt_signature is None
    assert unprepared == Verified(COMPANY, None)


def test_an_invalid_signature_raises_in_the_awaiting_coroutine_only(
    thread: SignatureThread,
) -> None:
    async def go() -> tuple[BaseException | Verified, ...]:
        digest, signature = request(1)
        malleated = signature[:-2] + "1d"  # v = 29
        bad = thread.recover_and_sign(digest, malleated, company=COMPANY,
                                      receipt_digest=receipt(1))
        abandoned = thread.recover_and_sign(digest, signature, company=COMPANY,
                                            receipt_digest=receipt(1))
        abandoned.cancel()
        good = thread.recover_and_sign(digest, signature, company=COMPANY,
                                       receipt_digest=receipt(1))
        return tuple(await asyncio.gather(bad, good, return_exceptions=True))

    bad, good = asyncio.run(go())
    assert isinstance(bad, errors.SignatureInvalid)
    assert isinstance(good, Verified) and good.signer == COMPANY


def test_close_finishes_queued_jobs_then_stops() -> None:
    signatures = SignatureThread(ledger.DigestSigner(OWNER_KEY))

    async def go() -> list[Verified]:
        jobs = [signatures.recover_and_sign(*request(i), company=COMPANY, receipt_digest=None)
                for i in range(10)]
        await asyncio.to_thread(signatures.close)
        return list(await asyncio.gather(*jobs))

    assert [v.signer for v in asyncio.run(go())] == [COMPANY] * 10
    signatures.close()  # a second close is harmless
