"""The uvicorn server that announces the daemon: it publishes the runtime file once it
listens and withdraws it when it stops (THREATS row 34; see :mod:`vault.daemon.runtime`).

The file is written only after the socket is bound, so a CLI that finds it can connect;
and it is removed as the first step of a clean shutdown, before requests drain, so no CLI
starts talking to a daemon on its way out. A daemon killed with -9 leaves it behind, and
the CLI recognises it as stale.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import uvicorn

from vault.daemon import runtime
from vault.daemon.runtime import Token


class DaemonServer(uvicorn.Server):
    """``uvicorn.Server`` plus the runtime file for ``home``."""

    def __init__(self, config: uvicorn.Config, *, home: Path, owner: str, token: Token) -> None:
        super().__init__(config)
        self.home = home
        self.owner = owner
        self.token = token
        self.published: runtime.RuntimeFile | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.publish()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.withdraw()
        await super().shutdown(sockets)

    def publish(self) -> runtime.RuntimeFile:
        # The bound socket, not the configured port: with --port 0 only the socket knows.
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        self.published = runtime.RuntimeFile(
            host=runtime.connect_host(str(host)), port=int(port), pid=os.getpid(),
            owner=self.owner, started_at=int(time.time()), token=self.token,
        )
        runtime.publish(self.home, self.published)
        return self.published

    def withdraw(self) -> None:
        """Remove the runtime file (idempotent; also called after ``run`` returns)."""
        if self.published is not None:
            runtime.withdraw(self.home, self.published)
            self.published = None
