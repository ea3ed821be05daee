"""`vault open --print-url`: the link comes from the daemon the runtime file names, after
its identity challenge, and signs a browser in once; without a daemon it is exit 9."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from vault.cli import app
from vault.daemon import runtime

from .conftest import Served

EXIT_NO_DAEMON = 9


def test_open_prints_a_one_time_link_from_the_running_daemon(daemon: Served) -> None:
    home = daemon.vault.home
    runtime.publish(home, runtime.RuntimeFile(
        host="127.0.0.1", port=int(daemon.base.rsplit(":", 1)[1]), pid=os.getpid(),
        owner=daemon.vault.owner_address, started_at=int(time.time()),
        token=runtime.Token(daemon.token),
    ))
    result = CliRunner().invoke(app, ["open", "--print-url", "--home", str(home)])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip()
    assert re.fullmatch(re.escape(daemon.base) + r"/login\?code=[\w-]+", link)
    assert daemon.token not in result.output
    assert httpx.get(link, follow_redirects=False).status_code == 303
    assert httpx.get(link, follow_redirects=False).status_code == 403


def test_open_without_a_daemon_says_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["open", "--print-url", "--home", str(tmp_path)])
    assert result.exit_code == EXIT_NO_DAEMON
    assert "no vault daemon runs" in result.stderr and "vault serve" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
