"""Every error vault raises on purpose, in one tree.

Lower layers raise these; exactly one place in ``vault.daemon`` maps them to HTTP
statuses and exactly one place in ``vault.cli`` maps them to exit codes. Programmer
mistakes stay ``TypeError`` / ``ValueError``. No message ever carries a secret or a raw
personal value.

::

    VaultError
    ├── VaultStateError
    │   ├── VaultNotFound          no vault in the chosen folder
    │   ├── VaultExists            init into a folder that already holds a vault
    │   └── VaultBusy              another process holds the vault's lock
    ├── UnlockError
    │   ├── WrongPassphrase        the passphrase does not open the keyfile
    │   └── KdfParametersRejected  stored KDF parameters below the minimum / above the maximum
    ├── IntegrityError
    │   ├── InvalidToken           a sealed value failed to open (one error for every cause)
    │   ├── CorruptFile            a database, keyfile or backup is truncated or damaged
    │   └── LogTampered            the hash-chained access log does not verify
    ├── InputError
    │   ├── MalformedExport        an import file is malformed (names file and record)
    │   ├── MalformedBackup        a backup file is malformed or fails authentication
    │   ├── UnsafePath             path traversal / symlink / overwrite refused
    │   ├── UnsafeArchive          a ZIP with a zip bomb, a path outside it, a symlink
    │   ├── ExportKindMismatch     an export named as another kind, or of no known kind
    │   ├── ProfileChoiceNeeded    a Netflix export of several profiles, none chosen
    │   └── UnknownScope           a scope name that is not in the catalog
    ├── LedgerError
    │   ├── LedgerUnavailable      the RPC node is down or too slow (names the URL)
    │   ├── ChainMismatch          the node's chain id differs from the configured one
    │   ├── LedgerNotDeployed      no (or unexpected) code at the ledger address
    │   ├── ContractReverted       a transaction or call reverted (error name + arguments)
    │   ├── InsufficientFunds      the sending account has too little ETH for the gas
    │   └── IndexStale             the local grant index is behind its freshness bound
    ├── SignatureInvalid           malformed, malleated, or not from the expected signer
    ├── SigningUnavailable         the daemon's signing process stopped mid-request
    ├── ReleaseRefused             the policy refused a release (carries a reason code)
    ├── ConsentError               an owner action that does not fit the request's state
    │   ├── AlreadyDecided         not pending any more (approve/deny) or not active (revoke)
    │   ├── NotYourRequest         the request or grant belongs to another owner
    │   └── NothingOwed            nothing to withdraw or claim
    ├── NotFound                   an unknown request, grant or record id
    ├── DaemonUnavailable          the CLI could not reach the local daemon
    └── DaemonUnverified           a server at the daemon's address did not prove it is it
"""

from __future__ import annotations

import enum
from typing import Any


class VaultError(Exception):
    """Base of every error vault raises on purpose.

    ``str(err)`` is one human sentence saying what is wrong; ``hint`` says what to do.
    """

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class VaultStateError(VaultError):
    """The vault's folder is not in the state the operation needs."""


class VaultNotFound(VaultStateError):
    hint = "create one with `vault init` or point --home / VAULT_HOME at it"


class VaultExists(VaultStateError):
    hint = "choose another --home, or remove the existing vault yourself"


class VaultBusy(VaultStateError):
    hint = "wait for the other vault command to finish, or stop the daemon"


class UnlockError(VaultError):
    """The vault could not be unlocked."""


class WrongPassphrase(UnlockError):
    hint = "try again; VAULT_PASSPHRASE is read when set"


class KdfParametersRejected(UnlockError):
    hint = "the keyfile's KDF parameters are outside the accepted range; restore it from a backup"


class IntegrityError(VaultError):
    """Stored data failed an integrity check."""


class InvalidToken(IntegrityError):
    """A sealed value could not be opened.

    Raised for every cause (wrong key, edited byte, value moved to another row,
    unknown version) so that an attacker learns nothing about which check failed.
    """

    def __init__(self, message: str = "a sealed value failed authentication") -> None:
        super().__init__(message, hint="run `vault check` to list damaged records")


class CorruptFile(IntegrityError):
    hint = "restore the file from a backup (`vault restore`)"


class LogTampered(IntegrityError):
    hint = "the access log was edited outside vault; keep a copy and investigate"


class InputError(VaultError):
    """Input given to vault is unusable."""


class MalformedExport(InputError):
    """An import file is malformed; nothing from it was committed."""

    def __init__(self, path: str, record: int | None, problem: str) -> None:
        where = f"{path}" if record is None else f"{path}, record {record}"
        super().__init__(
            f"{where}: {problem}",
            hint="fix or re-download the export; nothing from this file was imported",
        )
        self.path = path
        self.record = record
        self.problem = problem


class MalformedBackup(InputError):
    hint = "the backup is damaged or not a vault backup; nothing was restored"


class UnsafePath(InputError):
    hint = "choose a regular file path inside a folder you own"


class UnsafeArchive(InputError):
    hint = "nothing was imported; re-download the archive from the service"


class ExportKindMismatch(InputError):
    hint = "run `vault import FILE` to detect the kind; `vault import --help` lists the kinds"


class ProfileChoiceNeeded(InputError):
    hint = "name yours with --profile NAME (or --all-profiles to import every one)"


class UnknownScope(InputError):
    hint = "list the catalog with `vault scopes`"


class LedgerError(VaultError):
    """Talking to the consent ledger failed."""


class LedgerUnavailable(LedgerError):
    hint = "check that the chain's RPC node is running (`vault devnet status`)"


class ChainMismatch(LedgerError):
    hint = "point VAULT_RPC_URL at the configured chain, or fix VAULT_CHAIN_ID"


class LedgerNotDeployed(LedgerError):
    hint = "deploy the ledger (`vault devnet up` or scripts/deploy.py) and set VAULT_LEDGER"


class ContractReverted(LedgerError):
    """A ledger call reverted with one of the contract's custom errors."""

    def __init__(self, name: str, args: dict[str, Any] | None = None) -> None:
        self.name = name
        self.args_by_name: dict[str, Any] = dict(args or {})
        # A status argument is shown by its name (status=cancelled), not its number.
        shown = ", ".join(
            f"{k}={v.name.lower() if isinstance(v, enum.Enum) else v}"
            for k, v in self.args_by_name.items()
        )
        super().__init__(f"the ledger refused: {name}({shown})")


class InsufficientFunds(LedgerError):
    """The sending account cannot pay for a transaction's gas: nothing was sent. The node is
    fine; the account needs ETH (the CLI names the devnet's faucet on the devnet)."""

    hint = "send ETH to the address above for gas, then try again"


class IndexStale(LedgerError):
    hint = "the vault has not seen recent blocks; check the chain connection"


class SignatureInvalid(VaultError):
    """A signature is malformed, malleated, or not from the expected signer."""


class SigningUnavailable(VaultError):
    """The daemon's signing process stopped while a request waited on it (it is restarted
    for the next one)."""

    hint = "retry the request"


class ReleaseRefused(VaultError):
    """The policy refused a release; ``code`` is the wire protocol's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class ConsentError(VaultError):
    """An owner action (approve, deny, revoke, claim, withdraw) that does not apply."""


class AlreadyDecided(ConsentError):
    hint = "list requests with `vault requests --status all` to see their state"


class NotYourRequest(ConsentError):
    hint = "only the request's owner can decide it; check the id with `vault requests`"


class NothingOwed(ConsentError):
    hint = "see `vault earnings`; earnings accrue while grants are active"


class NotFound(VaultError):
    """An unknown request, grant or record id."""


class DaemonUnavailable(VaultError):
    hint = "start it with `vault serve` (or run the command without a daemon)"


class DaemonUnverified(VaultError):
    """The server at the daemon's published address failed the identity challenge: it was
    sent a nonce and nothing else (THREATS row 34)."""

    hint = "another program may hold the daemon's port; stop it, then restart `vault serve`"
