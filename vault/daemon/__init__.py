"""The local vault daemon. The app factory is :func:`vault.daemon.app.create_app`; this package
imports nothing itself, so the CLI can use the wire models without loading the server."""
