"""The one place where what went wrong deciding a request becomes the owner's consent
errors: an unknown request (exit 10), one already decided (11), another owner's (12),
nothing owed (13). Whichever backend answered, the same failure reads the same."""

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
    """Maps what went wrong deciding ``request_id`` (None: all of the owner's grants) to
    the consent errors."""
    try:
        yield
    except errors.ContractReverted as error:
        raise _consent_error(error, request_id) from None
    except errors.NotFound:
        if request_id is not None and _chain_owner(settings_for(home), request_id) is not None:
            raise errors.NotYourRequest(
                f"request {request_id} belongs to another owner; nothing changed"
            ) from None
        raise errors.NotFound(
            f"there is no request {request_id}; nothing changed",
            hint="list requests with `vault requests --status all`",
        ) from None


def _consent_error(error: errors.ContractReverted, request_id: int | None) -> errors.VaultError:
    """The ledger's refusals that mean "this does not apply", as the CLI's own errors."""
    what = f"request {request_id}" if request_id is not None else "this"
    if error.name == "RequestNotPending":
        return errors.AlreadyDecided(f"{what} is already decided; nothing changed")
    if error.name in ("GrantNotActive", "GrantExpired"):
        return errors.AlreadyDecided(f"{what} is not an active grant; nothing changed")
    if error.name == "NotRequestOwner":
        return errors.NotYourRequest(f"{what} belongs to another owner; nothing changed")
    if error.name in ("NothingOwed", "NothingToClaim"):
        return errors.NothingOwed("nothing is owed to you; nothing changed")
    return error


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
