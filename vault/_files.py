"""Durable private files: folders 0700, files 0600, atomic replace with fsync.

Also the crash points the kill -9 tests use: when ``VAULT_TEST_CRASH_AFTER`` names a
point (``name`` or ``name:N`` for its N-th passage) the process SIGKILLs itself there, so
a test can stop the real CLI at an exact step. Unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal
import stat
from collections import Counter
from pathlib import Path

from vault import errors

#: The vault folder's lock file. Here, not in vault.store, so that the CLI's daemon checks
#: (vault.daemon.runtime) do not load the store's stack (SQLAlchemy, eth-account) to find it.
LOCK_NAME = "vault.lock"

_passed: Counter[str] = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get("VAULT_TEST_CRASH_AFTER")
    if not wanted:
        return
    _passed[name] += 1
    point, _, nth = wanted.partition(":")
    if point == name and _passed[name] == int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (0700) if missing; refuse a symlink or a non-directory."""
    if path.is_symlink():
        raise errors.UnsafePath(f"{path} is a symlink")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.is_dir():
        raise errors.UnsafePath(f"{path} is not a folder")
    os.chmod(path, 0o700)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path) -> int:
    """Open a new file 0600 for writing; fails if it exists (never follows a symlink)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def write_atomically(path: Path, data: bytes, *, checkpoint: str | None = None) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, rename over ``path``, fsync the
    folder: a crash leaves either the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = create_private_file(tmp)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if checkpoint:
        crash_point(checkpoint)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def is_regular_file(path: Path) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISREG(mode)
