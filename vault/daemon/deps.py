"""Typed route dependencies: what a route needs of the running daemon, without reaching into
``request.app.state`` itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vault.daemon.household import HouseholdService
from vault.daemon.match import MatchService
from vault.daemon.release import ReleaseService
from vault.daemon.runtime import Token
from vault.daemon.state import Daemon
from vault.owner import OwnerService


def daemon(request: Request) -> Daemon:
    held: Daemon = request.app.state.daemon
    return held


def token(request: Request) -> Token:
    held: Token = request.app.state.token
    return held


def owner_service(request: Request) -> OwnerService:
    return daemon(request).owner


def release_service(request: Request) -> ReleaseService:
    return daemon(request).releaser


def match_service(request: Request) -> MatchService:
    return daemon(request).matcher


def household_service(request: Request) -> HouseholdService:
    return daemon(request).household


DaemonDep = Annotated[Daemon, Depends(daemon)]
OwnerDep = Annotated[OwnerService, Depends(owner_service)]
TokenDep = Annotated[Token, Depends(token)]
