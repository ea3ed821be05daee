"""The daemon's app factory: one :class:`~vault.daemon.state.Daemon` (the parts for one
unlocked vault and one chain), its routes, the error handlers, the Host/body guard and the
per-start bearer token. The sync loop runs while the app's lifespan does."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vault import __version__
from vault.config import Settings
from vault.daemon import http_errors
from vault.daemon.guard import GuardMiddleware, allowed_hosts
from vault.daemon.routes import (
    dashboard,
    dashboard_data,
    dashboard_terms,
    health,
    household,
    identity,
    match,
    owner,
    records,
    release,
    terms,
)
from vault.daemon.runtime import new_token
from vault.daemon.state import Daemon, DaemonVault
from vault.eth.chain import Chain
from vault.household import CONTRIBUTION_PATH


def create_app(
    settings: Settings,
    *,
    vault: DaemonVault,
    chain: Chain,
    clock: Callable[[], float] = time.time,
    start_block: int = 0,
) -> FastAPI:
    """The daemon for one unlocked vault on one chain. The sync loop runs while the app's
    lifespan does; the caller keeps ownership of ``vault`` and ``chain`` (and closes them)."""
    daemon = Daemon(settings, vault=vault, chain=chain, clock=clock, start_block=start_block)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await daemon.signatures.start()
        daemon.start()
        # What the daemon holds from its start (modules, the vault, the index) lives as long
        # as it does: kept out of the collector's full passes, which otherwise scan it all in
        # the middle of a request (0.1 s in bench_match's process, its p99).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await daemon.household.aclose()
            await daemon.signatures.stop()
            with contextlib.suppress(Exception):
                daemon.stop()

    app = FastAPI(
        title="vault daemon",
        version=__version__,
        description="A personal data vault's local daemon: company routes (signed release "
        "requests) and owner routes (bearer token).",
        lifespan=lifespan,
        # The schema and its pages are the owner's (GET /v1/owner/openapi.json), not a map
        # of the daemon for whoever reaches the port.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.daemon = daemon
    app.state.token = new_token()
    http_errors.install(app)
    for module in (health, identity, terms, release, match, household, owner, records):
        app.include_router(module.router)
    dashboard.install(app, clock=clock)
    for module in (dashboard_data, dashboard_terms):
        app.include_router(module.router)  # its pages, on the dashboard's sessions
    app.add_middleware(
        GuardMiddleware,
        allowed_hosts=allowed_hosts(settings.host, allow_remote=settings.allow_remote),
        max_body=settings.max_body_bytes,
        route_max_body={
            **dict.fromkeys((match.MATCH_PATH, match.PREVIEW_PATH), match.MATCH_BODY_BYTES),
            # A forwarded match: the company's body plus the coordinator's envelope.
            CONTRIBUTION_PATH: match.MATCH_BODY_BYTES + 4096,
            dashboard.UPLOAD_PATH: dashboard.UPLOAD_BODY_BYTES,
        },
    )
    return app
