"""The local vault daemon: ``create_app(settings, vault=..., chain=...)``."""

from vault.daemon.app import Daemon, create_app

__all__ = ["Daemon", "create_app"]
