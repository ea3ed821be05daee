"""What went wrong deciding a request, told precisely: an id this vault does not know is
either nobody's (exit 10) or another owner's (12) — the local index holds only this owner's
requests, so the chain is asked. The owner service itself raises the other consent errors
(already decided 11, nothing owed 13), and over HTTP they arrive as their wire codes, so
whichever backend answered, the same failure reads the same."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from vault import errors
from vault.cli._common import settings_for

if TYPE_CHECKING:
    from vault.config import Settings


@contextmanager
def deciding(home: Path | None, request_id: int | None) -> Iterator[None]:
    """Tells an unknown ``request_id`` (None: all of the owner's grants) from another
    owner's."""
    try:
        yield
    except errors.NotFound:
        if request_id is not None and _chain_owner(settings_for(home), request_id) is not None:
            raise errors.NotYourRequest(
                f"request {request_id} belongs to another owner; nothing changed"
            ) from None
        raise errors.NotFound(
            f"there is no request {request_id}; nothing changed",
            hint="list requests with `vault requests --status all`",
        ) from None


def _chain_owner(settings: Settings, request_id: int) -> str | None:
    """The owner of ``request_id`` on the ledger, or None if unknown or unreachable: the
    local index knows only this owner's requests, the chain knows everyone's."""
    if settings.chain == "embedded":
        return None  # a fresh in-process chain knows nothing of this vault's requests
    from vault.eth.chain import open_chain
    from vault.eth.ledger import LedgerClient

    try:
        chain = open_chain(settings)
    except errors.VaultError:
        return None
    try:
        state = LedgerClient(chain.w3, chain.ledger_address).get_request(request_id)
    except errors.VaultError:
        return None
    finally:
        chain.close()
    return state.owner
