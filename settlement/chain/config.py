"""Chain settlement configuration: where the chain is, whose key signs, which mints.

Frozen and strict like the engine's configs. From the environment (prefix ``CX_``):
``CX_SOLANA_RPC_URL`` (unset: the embedded runtime), ``CX_SETTLEMENT_AUTHORITY`` (the
keypair file), ``CX_SETTLEMENT_MINTS`` (JSON ``{"0": "<USDC mint>"}`` on a real cluster).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from risk.config import RiskConfig


class ChainConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CX_", frozen=True, extra="forbid")

    solana_rpc_url: str | None = None
    settlement_authority: Path = Path("var/settlement-authority.json")
    settlement_mints: dict[int, str] = Field(default_factory=dict)  # asset id -> mint address
    local_assets: tuple[int, ...] = (0, 1)  # mints the exchange creates on the local runtime
    commitment: str = Field(default="confirmed", pattern="^(processed|confirmed|finalized)$")
    rpc_timeout_s: float = Field(default=5.0, gt=0)
    rpc_retry_for_s: float | None = Field(default=60.0, gt=0)  # None: retry forever
    resend_interval_s: float = Field(default=2.0, gt=0)  # same bytes again while not landed
    poll_interval_s: float = Field(default=0.5, gt=0)
    deposit_poll_s: float = Field(default=0.5, ge=0)  # vault balances read at most this often
    batch_max_rows: int = Field(default=65536, gt=0)  # event rows read per settlement batch
    local_airdrop_lamports: int = Field(default=100 * 10**9, gt=0)
    risk: RiskConfig = RiskConfig()

    def decimals(self, asset: int) -> int:
        if not 0 <= asset < len(self.risk.assets):
            raise KeyError(f"unknown asset {asset}")
        return self.risk.assets[asset].decimals
