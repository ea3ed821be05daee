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

#: Chain ids of local development chains (anvil and Hardhat 31337, geth --dev and Ganache
#: 1337): nothing on them is worth a reorg attack, and they mine only when asked, so their
#: head's age says nothing about a node's honesty.
DEV_CHAIN_IDS = frozenset({31337, 1337})
#: Confirmation depth on every other chain: Ethereum's short reorgs are one or two blocks.
PUBLIC_CONFIRMATIONS = 2
#: How old the head may be on every other chain (Ethereum mines every 12 s; 10 missed slots).
PUBLIC_MAX_HEAD_AGE_SECONDS = 120.0


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
    rpc_url: str | None = Field(
        default=None, repr=False, description="JSON-RPC URL for chain=rpc (may hold an API key)"
    )
    rpc_url_check: str | None = Field(
        default=None,
        repr=False,
        description="a second node's JSON-RPC URL; grants count only while both agree",
    )
    chain_id: int | None = Field(default=None, description="expected chain id (checked)")
    ledger: str | None = Field(default=None, description="ConsentLedger contract address")
    rpc_timeout_seconds: float = 5.0

    host: str = "127.0.0.1"
    port: int = 8787
    allow_remote: bool = Field(default=False, description="permit binding a non-loopback host")

    confirmations: int | None = Field(
        default=None,
        ge=0,
        description="blocks before an event counts; default: 0 on development and embedded "
        f"chains, {PUBLIC_CONFIRMATIONS} elsewhere",
    )
    max_head_age_seconds: float | None = Field(
        default=None,
        gt=0,
        description="an older chain head (a frozen node) → releases answer 503; default: "
        f"unchecked on development and embedded chains, {PUBLIC_MAX_HEAD_AGE_SECONDS:g} s "
        "elsewhere",
    )
    reconfirm_seconds: float = Field(
        default=10.0, gt=0, description="how often active grants are re-read from the contract"
    )
    approval_ttl_seconds: int = Field(
        default=3600, gt=0, description="how long an approval signature may wait to be relayed"
    )
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
    privacy_budget: float = Field(
        default=400.0,
        ge=0,
        # Every noisy scope's full answer costs ε 183 together (docs/scopes.md), so the
        # default holds the first answers and about 35 entries that change after them.
        description="ε each company may be charged for noisy entries new to it; 0 = no cap",
    )
    unauthenticated_refusals_per_second: float = Field(
        default=20.0,
        gt=0,
        description="unsigned or badly signed requests answered per second before 429",
    )
    refusal_summary_seconds: float = Field(
        default=60.0, gt=0, description="how often counted refusals are summarised in the log"
    )
    household_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how long a household's coordinating vault waits for the other members' "
        "contributions; a member later than this → 503, nothing released",
    )

    def _local_chain(self, chain_id: int) -> bool:
        return self.chain == "embedded" or chain_id in DEV_CHAIN_IDS

    def confirmations_for(self, chain_id: int) -> int:
        """The confirmation depth on chain ``chain_id``: the setting, else its default."""
        if self.confirmations is not None:
            return self.confirmations
        return 0 if self._local_chain(chain_id) else PUBLIC_CONFIRMATIONS

    def max_head_age_for(self, chain_id: int) -> float | None:
        """The bound on the head's age on chain ``chain_id``; ``None``: not checked."""
        if self.max_head_age_seconds is not None:
            return self.max_head_age_seconds
        return None if self._local_chain(chain_id) else PUBLIC_MAX_HEAD_AGE_SECONDS
