"""`vault serve`: loopback only unless told otherwise; unlocks; publishes its runtime file
once it listens and removes it on a clean stop (SIGTERM, SIGINT); stops cleanly."""

from __future__ import annotations

import os
import signal
import stat
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
from vault.daemon import runtime
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
def serving(tmp_path: Path, *, port: int | None = None
            ) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`vault serve` on a fresh vault, once its health route answers 200 at the address
    its runtime file publishes."""
    home = tmp_path / "home"
    Vault.create(home, PASS).close()
    port = chains.free_port() if port is None else port
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
        while (published := runtime.read(home)) is None:
            assert process.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert published.pid == process.pid and port in (0, published.port)
        # Published only once it listens: the first request is answered.
        health = httpx.get(published.url + "/v1/health", timeout=5)
        assert health.status_code == 200
        yield process, stderr_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_serve_unlocks_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """THREATS row 34: the runtime file is 0600 while the daemon runs and gone after SIGTERM."""
    with serving(tmp_path) as (process, stderr_path):
        path = tmp_path / "home" / runtime.RUNTIME_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        published = runtime.read(tmp_path / "home")
        assert published is not None
        token = published.token.reveal()
        children = signing_processes(process.pid)
        assert len(children) == 1  # started with the daemon, before any release
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not path.exists()
        assert PASS not in stderr_path.read_text() and token not in stderr_path.read_text()
        assert not running(children[0])  # and stopped with it


@pytest.mark.slow
def test_serve_on_port_0_publishes_the_port_it_got_and_sigint_removes_it(
    tmp_path: Path,
) -> None:
    """THREATS row 34: the CLI finds the daemon whatever its port, even one the kernel
    chose; Ctrl-C (SIGINT) is a clean stop too."""
    with serving(tmp_path, port=0) as (process, _):
        published = runtime.read(tmp_path / "home")
        assert published is not None and published.port != 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130  # "interrupted", after a clean shutdown
        assert not (tmp_path / "home" / runtime.RUNTIME_FILE).exists()


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
