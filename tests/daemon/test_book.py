"""vault.daemon.book: the replay store keeps nonces for the whole skew window, and the
noisy-epoch budget survives a restart (rebuilt from the access log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault import audit, crypto, privacy, scopes
from vault.daemon.book import ReleaseBook
from vault.grant import Grant, Status
from vault.policy import NOISY_BITS, Allow, Deny, Limits, ReleaseAsk

COMPANY = "0x00000000000000000000000000000000000000Aa"
SKEW = 300
#: Mid-epoch, so "a week later" is always the next noise epoch.
T = privacy.EPOCH_SECONDS * 2_900 + privacy.EPOCH_SECONDS // 2
MUSIC = scopes.bitmap(["preferences.music"])
AGE = scopes.bitmap(["profile.age_range"])
LOG_KEY = crypto.SecretKey.generate()


def grant(grant_id: int = 7) -> Grant:
    return Grant(
        id=grant_id, owner="0x" + "11" * 20, company=COMPANY, scopes=MUSIC | AGE,
        price=10**16, duration=365 * 86_400, max_releases=0, catalog_hash=scopes.catalog_hash(),
        purpose="test", status=Status.ACTIVE, starts_at=T - 100, claimed=0, owner_earned=None,
        company_refund=None, requested_block=1, updated_block=2,
    )


def admit(book: ReleaseBook, nonce: str, *, issued_at: int, now: float,
          bits: int = AGE) -> Allow | Deny:
    ask = ReleaseAsk(grant_id=7, signer=COMPANY, scopes=bits, issued_at=issued_at)
    return book.admit(grant(), ask, nonce=nonce, now=now)


def code(decision: Allow | Deny) -> str:
    return decision.code if isinstance(decision, Deny) else "allow"


def test_a_nonce_is_refused_for_as_long_as_its_request_is_inside_the_skew_window() -> None:
    """THREATS row 10: a request issued at T+200 and replayed at T+301, T+400 and T+500
    (still inside the 300 s window around its issued_at) is refused as replayed, even though
    the book pruned old nonces in between."""
    book = ReleaseBook(skew_seconds=SKEW, limits=Limits())
    assert code(admit(book, "0xa0", issued_at=T, now=T)) == "allow"
    assert code(admit(book, "0xb0", issued_at=T + 200, now=T + 200)) == "allow"
    # A fresh request more than the skew window after the first one: the book prunes here.
    assert code(admit(book, "0xc0", issued_at=T + 301, now=T + 301)) == "allow"
    for now in (T + 301, T + 400, T + 500):
        assert code(admit(book, "0xb0", issued_at=T + 200, now=now)) == "replayed", now
    # Another prune, well after the first: b's request is still within the window at T+500.
    assert code(admit(book, "0xd0", issued_at=T + 650, now=T + 650)) == "allow"
    assert code(admit(book, "0xd0", issued_at=T + 650, now=T + 949)) == "replayed"


def test_the_replay_key_is_the_signer_and_the_nonce_in_any_case() -> None:
    """THREATS row 10: the same nonce in upper case is the same nonce."""
    book = ReleaseBook(skew_seconds=SKEW, limits=Limits())
    assert code(admit(book, "0xab", issued_at=T, now=T)) == "allow"
    assert code(admit(book, "0xAB", issued_at=T, now=T + 1)) == "replayed"


def _released(log: audit.AuditLog, *, nonce: str, at: int, noisy: bool) -> None:
    detail: dict[str, object] = {"nonce": nonce, "issued_at": at}
    if noisy:
        detail["noisy_epoch"] = privacy.epoch_of(at)
    log.append_sync(audit.NewEntry(
        at=at, kind=audit.RELEASE, outcome=audit.RELEASED, grant_id=7, company=COMPANY,
        scopes=("preferences.music",) if noisy else ("profile.age_range",), detail=detail,
    ))


@pytest.mark.parametrize("restart", [False, True])
def test_noisy_epoch_budget_holds_across_a_restart(tmp_path: Path, restart: bool) -> None:
    """THREATS row 38: noisy answers in two epochs with a budget of two; after a restart
    (the book rebuilt from the access log) a third epoch is still refused."""
    assert MUSIC & NOISY_BITS and not AGE & NOISY_BITS
    limits = Limits(noisy_epoch_budget=2)
    log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
    book = ReleaseBook.from_log(log, now=T, skew_seconds=SKEW, limits=limits)
    week = privacy.EPOCH_SECONDS
    for n, now in enumerate((T, T + week)):
        assert code(admit(book, f"0x{n:02x}", issued_at=now, now=now, bits=MUSIC)) == "allow"
        _released(log, nonce=f"0x{n:02x}", at=now, noisy=True)
    log.flush()
    if restart:
        log.close()
        log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
        book = ReleaseBook.from_log(log, now=T + 2 * week, skew_seconds=SKEW, limits=limits)
    third = T + 2 * week
    assert code(admit(book, "0x10", issued_at=third, now=third, bits=MUSIC)) == (
        "budget_exhausted"
    )
    # Scopes without noise are not counted, and an epoch already held stays open.
    assert code(admit(book, "0x11", issued_at=third, now=third, bits=AGE)) == "allow"
    assert code(admit(book, "0x12", issued_at=T + week, now=T + week + 1, bits=MUSIC)) == (
        "allow"
    )
    log.close()


def test_nonces_of_the_skew_window_are_reloaded_from_the_log(tmp_path: Path) -> None:
    """THREATS row 10: a restart inside the window keeps the window's nonces."""
    log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
    _released(log, nonce="0xaa", at=T, noisy=False)
    log.flush()
    book = ReleaseBook.from_log(log, now=T + SKEW, skew_seconds=SKEW, limits=Limits())
    assert code(admit(book, "0xAA", issued_at=T, now=T + SKEW)) == "replayed"
    assert code(admit(book, "0xbb", issued_at=T, now=T + SKEW)) == "allow"
    log.close()
