"""`vault serve`: loopback only unless told otherwise; unlocks; stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from vault import chain as chains
from vault.cli import app
from vault.cli.daemon_commands import is_loopback
from vault.store import Vault

from .conftest import PASS


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "example.com", "::"]))


def test_serve_refuses_a_non_loopback_host_without_the_flag(owner_vault: Vault) -> None:
    """THREATS row 27."""
    result = CliRunner().invoke(
        app, ["serve", "--home", str(owner_vault.home), "--host", "0.0.0.0"],
        env={"VAULT_PASSPHRASE": PASS},
    )
    assert result.exit_code == 6
    assert "--allow-remote" in result.output


def signing_processes(parent: int) -> list[int]:
    """The pids of ``parent``'s children running vault.daemon.signer."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()  # "pid (comm) state ppid ..."
            if int(stat[stat.rindex(")") + 1:].split()[1]) != parent:
                continue
            if b"vault.daemon.signer" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (an exited child its new parent has not reaped yet is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 1:].split()[0] != "Z"


@contextmanager
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`vault serve` on a fresh vault, once its health route answers 200."""
    home = tmp_path / "home"
    Vault.create(home, PASS).close()
    port = chains.free_port()
    env = {**os.environ, "VAULT_PASSPHRASE": PASS, "VAULT_CHAIN": "embedded"}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "vault"), "serve", "--home", str(home),
             "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr_file,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr_path.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health.status_code == 200
        yield process, stderr_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_serve_unlocks_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serving(tmp_path) as (process, stderr_path):
        children = signing_processes(process.pid)
        assert len(children) == 1  # started with the daemon, before any release
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert PASS not in stderr_path.read_text()
        assert not running(children[0])  # and stopped with it


@pytest.mark.slow
def test_the_signing_process_does_not_outlive_a_killed_daemon(tmp_path: Path) -> None:
    with serving(tmp_path) as (process, _):
        [child] = signing_processes(process.pid)
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while running(child):  # its stdin closed: it exits on its own
            assert time.monotonic() < deadline, "the signing process outlived the daemon"
            time.sleep(0.05)
