"""The owner's side: one service behind the daemon's owner routes and the CLI.

``state`` (what the parts share, reloaded from the access log), ``views`` (requests, grants,
the consent statement, the log), ``consent`` (approve, deny, revoke, auto-approval,
termination receipts), ``money`` (earnings, claim, withdraw), ``terms`` (terms and rules),
``privacy`` (what each company received and the privacy budget it spent),
``service`` (:class:`OwnerService` and :func:`opened`, the service without a daemon;
:class:`OfflineOwner` and :func:`opened_offline`, the log, terms and rules without the chain).
"""

from vault.owner.service import OfflineOwner, OwnerService, opened, opened_offline
from vault.owner.terms import terms_hash
from vault.owner.views import consent_statement

__all__ = [
    "OfflineOwner", "OwnerService", "consent_statement", "opened", "opened_offline", "terms_hash",
]
