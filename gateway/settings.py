"""``cx serve`` configuration, from flags or ``CX_*`` environment variables.

Every external part is real and embedded when not configured (DESIGN "Real components,
embedded by default"): ``CX_DATABASE_URL``, ``CX_REDIS_URL``, ``CX_SOLANA_RPC_URL`` and
``CX_PYTH_SOURCE`` are read by the packages that talk to each; what is here is only where
the embedded ones and the engine keep their files, and what the process serves.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.instruments import ListingSchedule

DEFAULT_SCHEDULE = ListingSchedule(
    resources=("H100-80G", "A100-80G"), regions=("us-east", "eu-west"), daily_days_ahead=7
)


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CX_", frozen=True, extra="ignore")

    var_dir: Path = Path("var")  # engine, embedded Postgres / Redis / Solana, keys
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    listing_schedule: Path | None = None  # TOML/JSON ListingSchedule; default DEFAULT_SCHEDULE
    reference_price: int = Field(default=2_000_000, gt=0)  # micro-USDC per GPU-hour
    demo_traffic: bool = False  # a seeded market maker and buyer trading, for a live demo
    clock_tick_s: float = Field(default=1.0, gt=0)  # AdvanceClock: expiries and cut-offs
    reconcile_every_s: float = Field(default=60.0, gt=0)
    redis_prefix: str = Field(default="cx:md", min_length=1)  # market-data keys in Redis

    def schedule(self) -> ListingSchedule:
        if self.listing_schedule is None:
            return DEFAULT_SCHEDULE
        return ListingSchedule.from_file(self.listing_schedule)
