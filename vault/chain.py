"""Moved to :mod:`vault.eth.chain`; these names keep working for one release."""

from vault.eth.chain import *  # noqa: F403
