"""Mutation check of the security checks: do the tests catch the bugs they are named after?

Each mutant is one deliberate one-line bug: an exact piece of one source file (matched as a
substring, never by line number, because the tree keeps changing) and what replaces it,
plus the test files that ought to notice. The script copies the working tree (tracked and
untracked files that git does not ignore, so uncommitted work is included) to a temporary
folder once, then for each mutant: writes the bug, runs the named test files with this
project's pytest (``-x``: the first failure is enough) and restores the file.

* **caught** — pytest failed: some test noticed the bug.
* **survived** — every named test passed with the bug in place. A mutant that is known to
  change nothing observable carries an ``equivalent`` note; its survival is reported but not
  counted against the score.
* **error** — the mutant's original text is not in the file, or is there more than once
  (the source moved on: update the mutant), or pytest could not run (exit code ≥ 2), or the
  named tests fail even without the mutant (the baseline). An error is never counted as
  caught, and any error or survivor makes the script exit non-zero.

Usage (slow: minutes; it is not part of ``make test``)::

    .venv/bin/python scripts/mutants.py                 # every mutant
    .venv/bin/python scripts/mutants.py --only book-    # mutants whose name contains "book-"
    .venv/bin/python scripts/mutants.py --list          # names, files and tests only
    .venv/bin/python scripts/mutants.py --no-baseline   # skip the unmutated run first
    .venv/bin/python scripts/mutants.py --head          # the last commit, not the tree

The copy imports its own ``vault`` (``PYTHONPATH`` points at it, ahead of the editable
install) and shares ``node_modules`` by symlink, so anvil-backed tests run as they do in the
tree. Nothing in the working tree is modified.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
#: Per mutant; a run this long counts as caught (a hang is a visible failure too).
TIMEOUT_SECONDS = 900
#: Per test (pytest-timeout): a mutant that makes a loop spin fails its test this soon.
TEST_TIMEOUT_SECONDS = 120

RELEASE = "tests/daemon/test_release.py"
BOOK = "tests/daemon/test_book.py"
GUARD = "tests/daemon/test_guard.py"
OWNER_ROUTES = "tests/daemon/test_owner_routes.py"
SIGNATURES = "tests/daemon/test_signatures.py"
TRUST = "tests/daemon/test_trust.py"
POLICY = "tests/test_policy.py"
SYNC = "tests/test_sync.py"
LEDGER = "tests/test_ledger.py"
BACKUP = "tests/test_backup.py"
AUDIT = "tests/test_audit.py"
CRYPTO = "tests/test_crypto.py"
STORE = "tests/test_store.py"
KEYFILE = "tests/test_keyfile.py"
MATCH = "tests/daemon/test_match.py"
MATCH_UNIT = "tests/test_match.py"
HOUSEHOLD = "tests/daemon/test_household.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    #: Why the mutant cannot change behaviour, if it cannot (reported, not counted as caught).
    equivalent: str = ""


MUTANTS: tuple[Mutant, ...] = (
    # --- the six that once survived (issue 19) ---------------------------------------------
    Mutant("book-prune-horizon-1s", "vault/daemon/book.py",
           "horizon = now - 2 * self.skew_seconds - 1", "horizon = now - 1", (BOOK, RELEASE)),
    Mutant("app-noise-secret-constant", "vault/daemon/state.py",
           'noise_secret=vault.secret("noise"),', 'noise_secret=b"\\x00" * 32,', (RELEASE,)),
    Mutant("book-privacy-spent-not-reloaded", "vault/daemon/book.py",
           "for company, charged in privacy.charges_by_company(audit.disclosures()).items():",
           "for company, charged in {}.items():", (BOOK, RELEASE)),
    Mutant("sync-mid-page-reorg-check-removed", "vault/eth/sync.py",
           "if before is None or before != after or not self._cursor_canonical():",
           "if before is None:", (SYNC,)),
    Mutant("backup-chunk-index-not-in-aad", "vault/backup.py",
           'return header_hash + struct.pack(">QB", index, int(last))',
           'return header_hash + struct.pack(">QB", 0, int(last))', (BACKUP,)),
    Mutant("guard-declared-length-unchecked", "vault/daemon/guard.py",
           "if declared > max_body:", "if False:", (GUARD, RELEASE)),
    # --- hollow tests (issue 19) ------------------------------------------------------------
    Mutant("secp256k1-v-check-removed", "vault/eth/secp256k1.py",
           "if v not in (27, 28) or not 0 < r", "if not 0 < r", (LEDGER,)),
    Mutant("secp256k1-v-0-1-accepted", "vault/eth/secp256k1.py",
           "if v not in (27, 28) or not 0 < r", "if v not in (0, 1, 27, 28) or not 0 < r",
           (LEDGER,), equivalent="recovery computes bytes([v - 27]), which raises for 0/1 "
           "inside the try that turns any failure into SignatureInvalid"),
    Mutant("sync-rollback-keeps-events", "vault/eth/index.py",
           "connection.execute(delete(_EVENTS).where(_EVENTS.c.block_number > keep_through))",
           "None", (SYNC,)),
    Mutant("sync-rollback-memory-not-rebuilt", "vault/eth/index.py",
           "for request_id, maybe in rebuilt.items():",
           "for request_id, maybe in {}.items():", (SYNC,)),
    Mutant("sync-rollback-endpoints-kept", "vault/eth/index.py",
           "for account, endpoint in endpoints.items():",
           "for account, endpoint in {}.items():", (SYNC,)),
    Mutant("sync-rollback-to-the-cursor", "vault/eth/sync.py",
           "self.index.rollback(keep_through=number, keep_hash=recorded)",
           "self.index.rollback(keep_through=cursor[0], keep_hash=recorded)", (SYNC,)),
    Mutant("auto-approval-catalog-bits-unchecked", "vault/policy.py",
           "if request.scopes == 0 or request.scopes & ~_CATALOG_BITS:",
           "if request.scopes == 0:", (POLICY,)),
    Mutant("auto-approval-never-share-ignored", "vault/policy.py",
           "if never_shared(request.scopes, [*rules.never_share, *terms_never]):", "if False:",
           (POLICY,)),
    Mutant("auto-approval-status-unchecked", "vault/policy.py",
           "if request.status != Status.PENDING:", "if False:", (POLICY,)),
    Mutant("auto-approval-catalog-hash-unchecked", "vault/policy.py",
           "if request.catalog_hash != catalog_hash:", "if False:", (POLICY,)),
    Mutant("rule-scopes-unchecked", "vault/policy.py",
           "if request.scopes & ~catalog.bitmap(rule.scopes):", "if False:", (POLICY,)),
    Mutant("rule-deny-list-ignored", "vault/policy.py",
           "if company in _lower(rule.companies_deny):", "if False:", (POLICY,)),
    Mutant("rule-allow-list-ignored", "vault/policy.py",
           "if rule.companies_allow is not None and company not in",
           "if False and company not in", (POLICY,)),
    Mutant("rule-unlimited-releases-allowed", "vault/policy.py",
           "0 < request.max_releases <= rule.max_releases_at_most",
           "request.max_releases <= rule.max_releases_at_most", (POLICY,)),
    # --- policy.check_grant / check_limits / check_issued_at ------------------------------------
    Mutant("grant-company-unchecked", "vault/policy.py",
           "if grant.company.lower() != ask.signer.lower():", "if False:", (POLICY, RELEASE)),
    Mutant("grant-local-revocation-ignored", "vault/policy.py",
           "if grant.id in revoked_locally or grant.status == Status.REVOKED:",
           "if grant.status == Status.REVOKED:", (POLICY, RELEASE)),
    Mutant("grant-owner-unchecked", "vault/policy.py",
           "if grant is None or grant.owner.lower() != owner.lower():", "if grant is None:",
           (POLICY, RELEASE)),
    Mutant("grant-local-deny-ignored", "vault/policy.py",
           "if grant.id in denied_locally:", "if False:", (POLICY,)),
    Mutant("grant-unconfirmed-accepted", "vault/policy.py",
           "if grant.confirmed_at is None or now - grant.confirmed_at > max_confirmation_age:",
           "if False:", (POLICY,)),
    Mutant("grant-expiry-unchecked", "vault/policy.py",
           "if grant.status == Status.ACTIVE and grant.is_expired(now):", "if False:",
           (POLICY, RELEASE)),
    Mutant("grant-expiry-off-by-one", "vault/grant.py",
           "return end is not None and now >= end", "return end is not None and now > end",
           (POLICY, RELEASE)),
    Mutant("grant-status-unchecked", "vault/policy.py",
           "if grant.status != Status.ACTIVE:", "if False:", (POLICY, RELEASE)),
    Mutant("grant-scope-escalation", "vault/grant.py",
           "return scopes != 0 and scopes & ~self.scopes == 0", "return scopes != 0",
           (POLICY, RELEASE)),
    Mutant("grant-empty-scopes-allowed", "vault/grant.py",
           "return scopes != 0 and scopes & ~self.scopes == 0",
           "return scopes & ~self.scopes == 0",
           (POLICY, RELEASE)),
    Mutant("grant-catalog-unchecked", "vault/policy.py",
           "if grant.catalog_hash != catalog_hash:", "if False:", (POLICY, RELEASE)),
    Mutant("skew-only-future-checked", "vault/policy.py",
           "if abs(issued_at - now) > skew_seconds:", "if issued_at - now > skew_seconds:",
           (POLICY, RELEASE)),
    Mutant("skew-only-past-checked", "vault/policy.py",
           "if abs(issued_at - now) > skew_seconds:", "if now - issued_at > skew_seconds:",
           (POLICY, RELEASE)),
    Mutant("limits-max-releases-off-by-one", "vault/policy.py",
           "counters.grant_releases >= grant.max_releases",
           "counters.grant_releases > grant.max_releases", (POLICY, RELEASE)),
    Mutant("limits-company-budget-off-by-one", "vault/policy.py",
           "and counters.company_releases_today >= limits.company_releases_per_day",
           "and counters.company_releases_today > limits.company_releases_per_day",
           (POLICY, RELEASE)),
    Mutant("limits-privacy-budget-unchecked", "vault/policy.py",
           "if spent + most > limits.privacy_budget + _EPSILON_SLACK:", "if False:",
           (POLICY, BOOK)),
    # --- the release book ---------------------------------------------------------------------
    Mutant("book-replay-unchecked", "vault/daemon/book.py",
           "if key in self._nonces:", "if False:", (BOOK, RELEASE)),
    Mutant("book-nonce-not-recorded", "vault/daemon/book.py",
           "self._nonces[key] = ask.issued_at", "None", (BOOK, RELEASE)),
    Mutant("book-nonce-case-sensitive", "vault/daemon/book.py",
           "key = (company, nonce.lower())", "key = (company, nonce)", (BOOK, RELEASE)),
    Mutant("book-grant-count-not-kept", "vault/daemon/book.py",
           "self._per_grant[grant.id] += 1", "None", (BOOK, RELEASE)),
    Mutant("book-nonces-not-reloaded", "vault/daemon/book.py",
           "book._nonces[(entry.company.lower(), nonce.lower())] = issued_at", "None",
           (BOOK, RELEASE)),
    Mutant("book-privacy-not-charged", "vault/daemon/book.py",
           "self._spent[company] += sum(charged.values())", "None", (BOOK, RELEASE)),
    Mutant("book-entry-received-again-charged-again", "vault/daemon/book.py",
           "known.update(charged)", "None", (BOOK,)),
    # --- the release hot path -----------------------------------------------------------------
    Mutant("release-stale-request-accepted", "vault/daemon/release.py",
           "if stale is not None:", "if False:", (RELEASE,)),
    Mutant("release-stale-index-accepted", "vault/daemon/release.py",
           "self.index.check_fresh(", "(lambda **_: None)(",
           (RELEASE, TRUST)),
    Mutant("index-freshness-unchecked", "vault/eth/index.py",
           "if age > max_age_seconds:", "if False:", (SYNC, RELEASE)),
    # --- the guard and the owner token --------------------------------------------------------
    Mutant("guard-host-unchecked", "vault/daemon/guard.py",
           "if host_name(host) not in self.allowed_hosts:", "if False:", (GUARD, RELEASE)),
    Mutant("guard-streamed-body-uncounted", "vault/daemon/guard.py",
           "if received > max_body:", "if False:", (GUARD, RELEASE)),
    Mutant("guard-token-unchecked", "vault/daemon/guard.py",
           "if credentials is None or not token.matches(credentials.credentials):",
           "if credentials is None:", (OWNER_ROUTES,)),
    # --- signatures ---------------------------------------------------------------------------
    Mutant("secp256k1-high-s-accepted", "vault/eth/secp256k1.py",
           "not 0 < s <= _HALF_N", "not 0 < s < SECP256K1_N", (LEDGER, RELEASE)),
    Mutant("ledger-verify-signer-any-signer", "vault/eth/eip712.py",
           "if signer != to_checksum_address(address_bytes(expected)):", "if False:",
           (LEDGER,)),
    # --- the access log -----------------------------------------------------------------------
    Mutant("audit-entry-hash-unchecked", "vault/audit.py",
           "or not hmac.compare_digest(entry.entry_hash, expected)", "or False", (AUDIT,)),
    Mutant("audit-prev-hash-unchecked", "vault/audit.py",
           "or not hmac.compare_digest(entry.prev_hash, prev)", "or False", (AUDIT,)),
    Mutant("audit-head-unchecked", "vault/audit.py",
           "if not intact:", "if False:", (AUDIT,)),
    # --- encryption ---------------------------------------------------------------------------
    Mutant("crypto-aad-without-row", "vault/crypto.py",
           "aad = header + _name_field(table) + _field(str(row)) + _name_field(column)",
           "aad = header + _name_field(table) + _name_field(column)", (CRYPTO, STORE)),
    Mutant("crypto-aad-without-table", "vault/crypto.py",
           "aad = header + _name_field(table) + _field(str(row)) + _name_field(column)",
           "aad = header + _field(str(row)) + _name_field(column)", (CRYPTO, STORE)),
    Mutant("crypto-kdf-range-unchecked", "vault/crypto.py",
           "if type(value) is not int or not low <= value <= high:",
           "if type(value) is not int:", (CRYPTO, KEYFILE)),
    Mutant("backup-appended-data-accepted", "vault/backup.py",
           "if backup.read(1):", "if False:", (BACKUP,)),
    # --- sync ---------------------------------------------------------------------------------
    Mutant("sync-confirmations-ignored", "vault/eth/sync.py",
           "end = min(start + page - 1, head - self.confirmations)",
           "end = min(start + page - 1, head)", (SYNC,)),
    # --- match (issue 16) and a household member's part of one (issue 18) -------------------
    Mutant("match-list-size-unchecked", "vault/daemon/match.py",
           "check_size(candidates, body.k)", "None", (MATCH,)),
    Mutant("match-duplicate-ids-accepted", "vault/daemon/match.py",
           "        if not unique:\n            raise duplicate_ids()", "        pass",
           (MATCH,)),
    Mutant("match-matches-per-epoch-unchecked", "vault/daemon/match.py",
           "if self._matches[company.lower()] >= allowed:", "if False:", (MATCH,)),
    Mutant("match-privacy-budget-unchecked", "vault/daemon/match.py",
           "if budget and self._releases.book.epsilon_after(company, revealed) > budget + 1e-6:",
           "if False:", (MATCH,)),
    Mutant("match-hash-keeps-non-rfc8785-numbers", "vault/match.py",
           "written = number.sub(_as_rfc8785, written)", "None", (MATCH_UNIT,)),
    Mutant("match-fractional-integer-accepted", "vault/match.py",
           "if not all(isinstance(n, int) or n.is_integer() for n in numbers):", "if False:",
           (MATCH_UNIT, MATCH)),
    Mutant("household-match-forward-from-a-non-member", "vault/daemon/household.py",
           'charge="household", household=True,\n'
           "            also=lambda grant: self._check_member(grant, coordinator),",
           'charge="household", household=True,', (HOUSEHOLD,)),
)


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # caught, survived, timeout, error
    detail: str
    seconds: float


def _tree_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def make_copy(into: Path, *, head: bool = False) -> None:
    """The working tree as it is now (uncommitted edits included) under ``into``; with
    ``head``, the last commit instead (when others' unfinished edits break the tree)."""
    if head:
        into.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for name in [] if head else _tree_files():
        source = ROOT / name
        if not source.is_file() or source.is_symlink():
            continue  # deleted meanwhile, or a link we do not need
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    if (ROOT / "node_modules").is_dir():
        (into / "node_modules").symlink_to(ROOT / "node_modules")


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_copy_is_imported(copy: Path) -> None:
    found = subprocess.run(
        [str(PYTHON), "-c", "import vault; print(vault.__file__)"],
        cwd=copy, env=_environment(copy), check=True, capture_output=True, text=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"mutants: the copy imports vault from {found}, not from {copy}")


def run_tests(copy: Path, tests: tuple[str, ...]) -> tuple[int | None, str]:
    """pytest's exit code (``None`` on timeout) and the tail of its output."""
    command = [str(PYTHON), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--no-header", f"--timeout={TEST_TIMEOUT_SECONDS}", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=_environment(copy), capture_output=True,
                              text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return None, f"no result after {TIMEOUT_SECONDS} s"
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith(("FAILED tests", "ERROR tests"))]
    return done.returncode, (failed[0] if failed else lines[-1] if lines else "")


def apply(mutant: Mutant, copy: Path) -> tuple[Path, str] | str:
    """Write the mutant into the copy: (path, original text), or why it could not."""
    path = copy / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    text = path.read_text()
    found = text.count(mutant.original)
    if found != 1:
        where = "not found" if found == 0 else f"found {found} times"
        return f"original text {where} in {mutant.file}: {mutant.original!r}"
    path.write_text(text.replace(mutant.original, mutant.replacement, 1))
    return path, text


def try_mutant(mutant: Mutant, copy: Path) -> Outcome:
    started = time.monotonic()
    applied = apply(mutant, copy)
    if isinstance(applied, str):
        return Outcome(mutant, "error", applied, 0.0)
    path, original = applied
    try:
        code, tail = run_tests(copy, mutant.tests)
    finally:
        path.write_text(original)
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(mutant, "timeout", tail, seconds)
    if code == 0:
        return Outcome(mutant, "survived", "every named test passed", seconds)
    if code == 1:
        return Outcome(mutant, "caught", tail, seconds)
    return Outcome(mutant, "error", f"pytest exit code {code}: {tail}", seconds)


def baseline(copy: Path, mutants: list[Mutant]) -> list[str]:
    """Test files that fail without any mutant (their mutants would look caught)."""
    broken = []
    for tests in sorted({t for m in mutants for t in m.tests}):
        code, tail = run_tests(copy, (tests,))
        print(f"baseline  {tests}: {'ok' if code == 0 else tail}", flush=True)
        if code != 0:
            broken.append(tests)
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run the mutants whose name contains NAME (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip running the named test files once without mutants")
    parser.add_argument("--head", action="store_true",
                        help="mutate the last commit instead of the working tree")
    args = parser.parse_args(argv)

    names = [m.name for m in MUTANTS]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        sys.exit(f"mutants: duplicate names {sorted(duplicates)}")
    chosen = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]
    if not chosen:
        sys.exit(f"mutants: no mutant name contains {args.only}")
    if args.list:
        for m in chosen:
            print(f"{m.name:40} {m.file:26} {' '.join(m.tests)}")
        return 0
    if not PYTHON.exists():
        sys.exit(f"mutants: {PYTHON} is missing; run `make install` first")

    # A SIGTERM unwinds like Ctrl-C: the running pytest is killed and the copy removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="vault-mutants-") as temporary:
        copy = Path(temporary) / "tree"
        make_copy(copy, head=args.head)
        check_copy_is_imported(copy)
        broken = [] if args.no_baseline else baseline(copy, chosen)
        outcomes = []
        for mutant in chosen:
            if set(mutant.tests) & set(broken):
                outcome = Outcome(mutant, "error", "its tests fail without the mutant", 0.0)
            else:
                outcome = try_mutant(mutant, copy)
            outcomes.append(outcome)
            print(f"{outcome.verdict:9} {mutant.name:40} {outcome.seconds:6.1f} s  "
                  f"{outcome.detail}", flush=True)

    caught = [o for o in outcomes if o.verdict in ("caught", "timeout")]
    survived = [o for o in outcomes if o.verdict == "survived" and not o.mutant.equivalent]
    equivalent = [o for o in outcomes if o.verdict == "survived" and o.mutant.equivalent]
    failed = [o for o in outcomes if o.verdict == "error"]
    print()
    print(f"score: {len(caught)}/{len(outcomes) - len(equivalent)} caught, "
          f"{len(survived)} survived, {len(equivalent)} equivalent, {len(failed)} errors")
    for outcome in survived:
        print(f"  survived:   {outcome.mutant.name}")
    for outcome in equivalent:
        print(f"  equivalent: {outcome.mutant.name} ({outcome.mutant.equivalent})")
    for outcome in failed:
        print(f"  error:      {outcome.mutant.name}: {outcome.detail}")
    return 0 if not survived and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
