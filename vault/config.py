"""Settings, read once from the environment (prefix ``VAULT_``) and passed into the parts.

The passphrase is deliberately not a setting: the CLI reads ``VAULT_PASSPHRASE`` itself
so that it never sits in an object that might be logged or serialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("vault", appauthor=False))


class Settings(BaseSettings):
    """Every knob of the vault. Environment: ``VAULT_HOME``, ``VAULT_CHAIN``, …"""

    model_config = SettingsConfigDict(env_prefix="VAULT_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="the vault's folder")

    chain: Literal["embedded", "rpc", "devnet"] = Field(
        default="devnet",
        description="embedded: in-process py-evm; rpc: any JSON-RPC URL; devnet: local anvil",
    )
    rpc_url: str | None = Field(default=None, description="JSON-RPC URL for chain=rpc")
    chain_id: int | None = Field(default=None, description="expected chain id (checked)")
    ledger: str | None = Field(default=None, description="ConsentLedger contract address")
    rpc_timeout_seconds: float = 5.0

    host: str = "127.0.0.1"
    port: int = 8787
    allow_remote: bool = Field(default=False, description="permit binding a non-loopback host")

    confirmations: int = Field(default=0, ge=0, description="blocks before an event counts")
    sync_interval_seconds: float = Field(default=1.0, gt=0)
    max_index_lag_seconds: float = Field(
        default=30.0, gt=0, description="older index → releases answer 503"
    )
    request_skew_seconds: int = Field(
        default=300, gt=0, description="accepted |issued_at - now| of a release request"
    )
    max_body_bytes: int = Field(
        default=16_384,
        gt=0,
        # The cap also bounds JSON nesting: py-evm raises the recursion limit to 100,000 at
        # import, so json's C parser would overflow the stack on a deep enough body first.
        le=32_768,
        description="larger request bodies are refused with 413 before they are parsed",
    )
    company_releases_per_day: int = Field(
        default=10_000, ge=0, description="releases one company may get per UTC day; 0 = no cap"
    )
    noisy_epoch_budget: int = Field(
        default=12, ge=0, description="noise epochs of noisy scopes per company; 0 = no cap"
    )
