"""vault.daemon.book: the replay store keeps nonces for the whole skew window, and the
privacy budget survives a restart (rebuilt from the access log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault import audit, crypto, privacy, scopes
from vault.daemon.book import Admitted, ReleaseBook
from vault.grant import Grant, Status
from vault.policy import NOISY_BITS, Deny, Limits, ReleaseAsk

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
          bits: int = AGE, revealed: dict[str, float] | None = None) -> Admitted | Deny:
    ask = ReleaseAsk(grant_id=7, signer=COMPANY, scopes=bits, issued_at=issued_at)
    return book.admit(grant(), ask, nonce=nonce, now=now, revealed=revealed or {})


def code(decision: Admitted | Deny) -> str:
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


def _released(log: audit.AuditLog, *, nonce: str, at: int, noisy: bool,
              detail: dict[str, object] | None = None) -> None:
    log.append_sync(audit.NewEntry(
        at=at, kind=audit.RELEASE, outcome=audit.RELEASED, grant_id=7, company=COMPANY,
        scopes=("preferences.music",) if noisy else ("profile.age_range",),
        detail={"nonce": nonce, "issued_at": at, **(detail or {})},
    ))


#: A music answer's noisy entries as the release path names them (keyed digest → ε).
ENTRY = round(privacy.entry_epsilon(len(scopes.MUSIC_GENRES)), 4)
FIRST = {f"{n:016x}": ENTRY for n in range(5)}
CHANGED = {**{f"{n:016x}": ENTRY for n in range(4)}, f"{99:016x}": ENTRY}


@pytest.mark.parametrize("restart", [False, True])
def test_privacy_budget_charges_each_entry_once_and_holds_across_a_restart(
    tmp_path: Path, restart: bool
) -> None:
    """THREATS row 38: a company is charged for the noisy entries new to it — the same
    answer again costs nothing, a changed truth costs its changed entry — and, once what
    remains is less than a music answer could cost, noisy scopes are refused; after a
    restart (the book rebuilt from the access log) the same."""
    assert MUSIC & NOISY_BITS and not AGE & NOISY_BITS
    most = privacy.worst_case_epsilon(MUSIC)
    limits = Limits(privacy_budget=most + 5.5 * ENTRY)
    log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
    book = ReleaseBook.from_log(log, now=T, skew_seconds=SKEW, limits=limits)
    week = privacy.EPOCH_SECONDS
    answers = [(T, FIRST, FIRST), (T + 60, FIRST, {}), (T + week, FIRST, {}),
               (T + 2 * week, CHANGED, {f"{99:016x}": ENTRY})]
    for n, (now, revealed, expected) in enumerate(answers):
        admitted = admit(book, f"0x{n:02x}", issued_at=now, now=now, bits=MUSIC,
                         revealed=revealed)
        assert isinstance(admitted, Admitted) and admitted.charged == expected, n
        _released(log, nonce=f"0x{n:02x}", at=now, noisy=True,
                  detail={"revealed": admitted.charged} if admitted.charged else None)
    log.flush()
    # Spent: 6 entries; another music answer could cost 5 more: 6 + most > 5.5 + most.
    later = T + 3 * week
    if restart:
        log.close()
        log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
        book = ReleaseBook.from_log(log, now=later, skew_seconds=SKEW, limits=limits)
    refused = admit(book, "0x10", issued_at=later, now=later, bits=MUSIC, revealed=FIRST)
    assert isinstance(refused, Deny) and refused.code == "budget_exhausted"
    assert f"spent ε {6 * ENTRY:.1f}" in refused.detail
    # Scopes without noise are not counted.
    assert code(admit(book, "0x11", issued_at=later, now=later, bits=AGE)) == "allow"
    log.close()


def test_answers_logged_before_memoised_noise_are_charged_in_full(tmp_path: Path) -> None:
    """THREATS row 38: a release logged with a ``noisy_epoch`` (per-company noise, fresh
    each epoch) costs a whole music answer per epoch after an upgrade."""
    most = privacy.worst_case_epsilon(MUSIC)
    log = audit.AuditLog(tmp_path / "audit.sqlite", key=LOG_KEY)
    for n, at in enumerate((T, T + 60, T + privacy.EPOCH_SECONDS)):
        _released(log, nonce=f"0x{n:02x}", at=at, noisy=True,
                  detail={"noisy_epoch": privacy.epoch_of(at)})
    log.flush()
    now = T + privacy.EPOCH_SECONDS
    book = ReleaseBook.from_log(log, now=now, skew_seconds=SKEW,
                                limits=Limits(privacy_budget=3 * most))
    assert code(admit(book, "0x10", issued_at=now, now=now, bits=MUSIC)) == "allow"
    book = ReleaseBook.from_log(log, now=now, skew_seconds=SKEW,
                                limits=Limits(privacy_budget=3 * most - 1))
    assert code(admit(book, "0x11", issued_at=now, now=now, bits=MUSIC)) == "budget_exhausted"
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
