"""vault: a user-owned personal data vault with an on-chain consent ledger."""

__version__ = "0.1.0"
