"""``POST /v1/identity``: the daemon proves it is this vault's daemon (THREATS row 34).

Unauthenticated on purpose: the CLI calls it *before* it sends the bearer token, so that a
process squatting the daemon's port never receives it. The answer reveals nothing but the
owner address (public, on the ledger) and an HMAC over a nonce the caller chose.
"""

from __future__ import annotations

from fastapi import APIRouter

from vault.daemon import runtime
from vault.daemon.deps import DaemonDep, TokenDep
from vault.daemon.routes._errors import errors_for
from vault.wire import IdentityChallenge, IdentityPublic

router = APIRouter(tags=["owner"])


@router.post("/v1/identity", response_model=IdentityPublic, responses=errors_for(400))
async def identity(daemon: DaemonDep, token: TokenDep, body: IdentityChallenge
                   ) -> IdentityPublic:
    owner = daemon.vault.owner_address
    nonce = bytes.fromhex(body.nonce[2:])
    proof = runtime.proof(token, nonce, owner)
    return IdentityPublic(owner=owner, proof="0x" + proof.hex())
