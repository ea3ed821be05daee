"""Moved to :mod:`vault.eth.index` and :mod:`vault.eth.sync`; these names keep working for one
release."""

from vault.eth.index import EndpointView, IndexLag, LedgerIndex, index_path, open_index
from vault.eth.sync import LedgerSync, SyncReport, deployment_block, follow
from vault.grant import Grant

__all__ = [
    "EndpointView",
    "Grant",
    "IndexLag",
    "LedgerIndex",
    "LedgerSync",
    "SyncReport",
    "deployment_block",
    "follow",
    "index_path",
    "open_index",
]
