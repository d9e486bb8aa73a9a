"""Chain settlement configuration: where the chain is, whose key signs, which mints.

The ``solana`` section of the one configuration (``cx.settings``), frozen and strict like
the engine's configs. Its documented variables: ``CX_SOLANA_RPC_URL`` (unset: the embedded
runtime), ``CX_SETTLEMENT_AUTHORITY`` (the keypair file; unset: ``settlement-authority.json``
in the data directory), ``CX_SETTLEMENT_MINTS`` (JSON ``{"0": "<USDC mint>"}`` on a real
cluster).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_AUTHORITY = Path("var/settlement-authority.json")


class ChainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rpc_url: str | None = None  # None: the embedded runtime
    settlement_authority: Path | None = None  # None: DEFAULT_AUTHORITY, or the data directory's
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

    def authority_path(self) -> Path:
        return self.settlement_authority or DEFAULT_AUTHORITY
