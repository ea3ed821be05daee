"""The daemon's runtime file, and the proof that a server is this vault's daemon.

``vault serve`` writes ``<home>/daemon.json`` (0600, atomically) once it listens, and removes
it on every clean stop (SIGTERM, SIGINT, normal exit)::

    {"format": "vault-daemon", "format_version": 1, "host": "127.0.0.1", "port": 8787,
     "pid": 4242, "owner": "0x…", "started_at": 1763800000, "token": "<per-start secret>"}

The token is fresh at every start and lives nowhere else on disk. The CLI finds the daemon
from this file whatever port it listens on; a file left behind by a daemon killed with -9
is recognised as stale (its pid is gone, or nobody holds the vault's lock any more) and
removed.

Before the CLI sends the token anywhere, the server must prove it knows it (THREATS row 34):
the CLI posts a random 32-byte nonce to ``POST /v1/identity`` and the daemon answers its
owner address and ``HMAC-SHA256(token, PROOF_LABEL ‖ nonce ‖ owner)``. A process squatting
the port sees a nonce it cannot answer and never receives the token. The owner address
cannot be read from the vault without unlocking it, so the CLI compares it with the one the
daemon wrote in this 0600 file; the HMAC binds it, so a server that knows the token cannot
claim another owner either.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import ipaddress
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from vault import errors
from vault._files import LOCK_NAME, write_atomically

RUNTIME_FILE = "daemon.json"
FORMAT = "vault-daemon"
FORMAT_VERSION = 1
#: Domain separation: the token is a bearer secret; this label keeps an HMAC made with it
#: for the identity proof from ever being mistaken for anything else computed from it.
PROOF_LABEL = b"vault/daemon-identity/v1\x00"
NONCE_BYTES = 32
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Token:
    """The owner routes' bearer token, fresh at every start; its repr never shows the value
    (THREATS row 9) and it is compared in constant time (THREATS row 26)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Token(<redacted>)"

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(self._value.encode(), presented.encode())

    def reveal(self) -> str:
        return self._value


def new_token() -> Token:
    """A fresh per-start token: it lives in memory and in the runtime file only."""
    return Token(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class RuntimeFile:
    """What a running daemon published. The token's repr is redacted (THREATS row 9)."""

    host: str
    port: int
    pid: int
    owner: str
    started_at: int
    token: Token

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"format": FORMAT, "format_version": FORMAT_VERSION, "host": self.host,
             "port": self.port, "pid": self.pid, "owner": self.owner,
             "started_at": self.started_at, "token": self.token.reveal()},
            indent=2, sort_keys=True,
        ).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes) -> RuntimeFile:
        """Parse and check the shape; :class:`CorruptFile` for anything wrong."""
        try:
            data = json.loads(raw)
            if data["format"] != FORMAT or data["format_version"] != FORMAT_VERSION:
                raise ValueError("not a vault runtime file")
            fields: dict[str, Any] = {
                "host": data["host"], "port": data["port"], "pid": data["pid"],
                "owner": data["owner"], "started_at": data["started_at"],
            }
            token = data["token"]
            if not isinstance(fields["host"], str) or not _ADDRESS.fullmatch(
                    str(fields["owner"])):
                raise TypeError("host is a string and owner an address")
            if not all(type(fields[k]) is int for k in ("port", "pid", "started_at")):
                raise TypeError("port, pid and started_at are integers")
            if not (0 < fields["port"] < 65536 and fields["pid"] > 0):
                raise ValueError("port or pid out of range")
            if not isinstance(token, str) or len(token) < 32:
                raise ValueError("the token is missing or too short")
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.CorruptFile(
                f"the daemon's runtime file {RUNTIME_FILE} is damaged ({type(exc).__name__})"
            ) from None  # no parser detail: it could quote part of the token
        return cls(token=Token(token), **fields)


def runtime_path(home: Path) -> Path:
    return home / RUNTIME_FILE


def connect_host(bound_host: str) -> str:
    """The address a local client dials for a daemon bound to ``bound_host``: an unspecified
    address (0.0.0.0, ::) is reached through loopback."""
    try:
        address = ipaddress.ip_address(bound_host.strip("[]"))
    except ValueError:
        return bound_host
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return str(address)


def publish(home: Path, published: RuntimeFile) -> None:
    """Write the runtime file atomically (0600): a reader sees the old file or the new one."""
    write_atomically(runtime_path(home), published.to_bytes())


def withdraw(home: Path, published: RuntimeFile) -> None:
    """Remove the runtime file if it is still ``published``'s (never another start's)."""
    with contextlib.suppress(errors.CorruptFile):
        current = read(home)
        if current is not None and current.pid == published.pid and current.token.matches(
            published.token.reveal()
        ):
            runtime_path(home).unlink(missing_ok=True)


def read(home: Path) -> RuntimeFile | None:
    """The published runtime file, or None when there is none.

    :class:`CorruptFile` when it is damaged, is not a regular file, belongs to another
    user or is readable by others: a token from such a file is never used.
    """
    path = runtime_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:  # ELOOP for a symlink, EACCES, …
        raise errors.CorruptFile(
            f"cannot read the daemon's runtime file {path} ({error.strerror})"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & 0o077):
            raise errors.CorruptFile(
                f"the daemon's runtime file {path} is not a private file of yours"
            )
        raw = handle.read(64 * 1024)
    return RuntimeFile.from_bytes(raw)


def discard(home: Path, *, stale: RuntimeFile | None) -> None:
    """Remove a stale (or damaged, when ``stale`` is None) runtime file — unless a new daemon
    replaced it meanwhile."""
    try:
        current = read(home)
    except errors.CorruptFile:
        current = None
    if stale is None or (current is not None and current.pid == stale.pid
                         and current.started_at == stale.started_at):
        runtime_path(home).unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive but another user's (a reused pid): the lock check decides
        return True
    return True


def vault_in_use(home: Path) -> bool:
    """Whether some process holds the vault's lock (a running daemon always does).

    The kernel drops the lock when its holder dies, even by kill -9, so a free lock proves
    the daemon that wrote a runtime file is gone even if its pid was reused.
    """
    try:
        fd = os.open(home / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock at once
    return False


def is_stale(home: Path, published: RuntimeFile) -> bool:
    """The daemon that wrote ``published`` is gone (killed, or crashed)."""
    return not process_alive(published.pid) or not vault_in_use(home)


def proof(token: Token, nonce: bytes, owner: str) -> bytes:
    """HMAC-SHA256 under the per-start token over the label, the nonce and the owner."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
    message = PROOF_LABEL + nonce + owner.lower().encode("ascii")
    return hmac.new(token.reveal().encode(), message, sha256).digest()


def proof_matches(token: Token, nonce: bytes, owner: str, presented: bytes) -> bool:
    """Constant-time check of a server's answer to ``nonce``."""
    return hmac.compare_digest(proof(token, nonce, owner), presented)
