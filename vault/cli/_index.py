"""Every top-level `vault` command: (module, Typer app, group name or None, the
sentence `vault --help` shows). Written by `python scripts/cli_index.py`; do not edit."""

INDEX: dict[str, tuple[str, str, str | None, str]] = {
    'scopes': (
        'scope_commands', 'app', None,
        "List the scope catalog: what a company can ask for, how each is coarsened, and each noisy scope's privacy figure (ε of a whole answer).",  # noqa: E501
    ),
    'preview': (
        'scope_commands', 'app', None,
        'Show exactly what a company would receive for SCOPE...',
    ),
    'init': (
        'store_commands', 'app', None,
        'Create a new vault: a passphrase (asked twice), a data key and your Ethereum key.',
    ),
    'import': (
        'store_commands', 'app', None,
        "Import an export as the service delivered it: one file, or its ZIP archive (my_spotify_data.zip, a Google Takeout archive, Netflix's report), every supported file inside.",  # noqa: E501
    ),
    'mood': (
        'store_commands', 'app', None,
        'Record how you feel now.',
    ),
    'stats': (
        'store_commands', 'app', None,
        'Counts of what the vault holds (no personal values).',
    ),
    'check': (
        'store_commands', 'app', None,
        "Open every sealed value, compare every row with the vault's keyed manifest (rolled back, deleted, quarantined) and verify the access log; name each problem (exit code 5 if any).",  # noqa: E501
    ),
    'repair': (
        'store_commands', 'app', None,
        'Rebuild what the events determine (counts, summary, derived values, dedupe keys) and quarantine events that no longer open; all in one transaction.',  # noqa: E501
    ),
    'passphrase': (
        'store_commands', 'app', None,
        'Change the passphrase (rewraps the data key only; your data is not re-encrypted).',
    ),
    'rotate-key': (
        'store_commands', 'app', None,
        'Re-encrypt every record under a new data key (resumes an interrupted rotation).',
    ),
    'export': (
        'store_commands', 'app', None,
        'Write the whole vault to one encrypted backup file (opens with your passphrase).',
    ),
    'restore': (
        'store_commands', 'app', None,
        'Restore a backup into an empty --home; verifies everything before writing.',
    ),
    'facts': (
        'store_commands', 'app', None,
        'Declared facts: birth date, city, languages, colours, style, …',
    ),
    'forget': (
        'store_commands', 'app', None,
        'Delete records for good: a source, what one file stored, or a fact; re-derives what companies receive and logs the deletion (counts only).',  # noqa: E501
    ),
    'devnet': (
        'devnet_commands', 'app', 'devnet',
        'A local anvil chain with the consent ledger deployed (for development).',
    ),
    'requests': (
        'consent_commands', 'app', None,
        'List access requests, each with the consent statement approving it would sign.',
    ),
    'approve': (
        'consent_commands', 'app', None,
        'Show what approving means, ask, then sign the EIP-712 approval.',
    ),
    'deny': (
        'consent_commands', 'app', None,
        'Deny a pending request; the company gets its whole payment back.',
    ),
    'revoke': (
        'consent_commands', 'app', None,
        'Revoke an active grant: releases stop at once; you keep what was earned so far.',
    ),
    'grants': (
        'consent_commands', 'app', None,
        'List grants: active, expired and revoked.',
    ),
    'earnings': (
        'money_commands', 'app', None,
        'What your grants earned, what you can claim, and what you can withdraw now.',
    ),
    'balance': (
        'money_commands', 'app', None,
        'Your wallet (it pays gas), what the ledger owes you, and what a payout nets after gas.',
    ),
    'claim': (
        'money_commands', 'app', None,
        'Move what your grants earned so far into your withdrawable balance.',
    ),
    'withdraw': (
        'money_commands', 'app', None,
        'Claim everything earned, then send your whole ledger balance to your address.',
    ),
    'privacy': (
        'privacy_commands', 'app', None,
        'What each company received (scopes, weeks, releases), the privacy budget it spent on noisy entries and what remains.',  # noqa: E501
    ),
    'terms': (
        'terms_commands', 'terms_app', 'terms',
        'Your terms: the floor price, the longest grant, what you offer.',
    ),
    'rules': (
        'terms_commands', 'rules_app', 'rules',
        'Auto-approval rules: requests the vault approves while you are away.',
    ),
    'log': (
        'log_commands', 'app', 'log',
        'The hash-chained access log: every release, refusal and decision.',
    ),
    'match': (
        'match_commands', 'app', 'match',
        "Matches: companies' lists ranked for you; only the ranking leaves.",
    ),
    'serve': (
        'daemon_commands', 'app', None,
        'Unlock the vault and run its daemon until SIGTERM or Ctrl-C.',
    ),
    'open': (
        'open_commands', 'app', None,
        'Open your dashboard in the browser with a one-time login link (needs `vault serve`).',
    ),
    'genres': (
        'genre_commands', 'app', 'genres',
        'Your own genres for artists, channels and series (they feed preferences).',
    ),
}
