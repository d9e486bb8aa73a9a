"""The ``engine`` section of the configuration: where the engine keeps its files and how
the process around it paces time, listings and reconciliation.

``EngineConfig`` (``exchange.engine``) is what a journal is written under; this section is
how one process runs it, and builds that config (with the ``risk`` section) for a new
journal. Documented variables: ``CX_VAR_DIR``, ``CX_LISTING_SCHEDULE`` (a TOML/JSON file),
``CX_REFERENCE_PRICE``, ``CX_CLOCK_TICK_S``, ``CX_RECONCILE_EVERY_S``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exchange.engine import EngineConfig
from exchange.instruments import ListingSchedule
from risk.config import RiskConfig

DEFAULT_SCHEDULE = ListingSchedule(
    resources=("H100-80G", "A100-80G"), regions=("us-east", "eu-west"), daily_days_ahead=7
)


class EngineSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("var")  # engine, embedded Postgres / Redis / Solana, keys
    listing_schedule: ListingSchedule = DEFAULT_SCHEDULE  # inline, or the path of a file
    reference_price: int = Field(default=2_000_000, gt=0)  # micro-USDC per GPU-hour
    clock_tick_s: float = Field(default=1.0, gt=0)  # AdvanceClock: expiries and cut-offs
    reconcile_every_s: float = Field(default=60.0, gt=0)
    fsync: Literal["batch", "strict"] = "batch"
    snapshot_every: int = Field(default=1_000_000, gt=0)  # commands between snapshots
    snapshots_kept: int = Field(default=3, gt=0)

    @field_validator("listing_schedule", mode="before")
    @classmethod
    def _from_file(cls, value: Any) -> Any:
        """A path (``CX_LISTING_SCHEDULE=schedule.toml``) names a TOML or JSON file."""
        if isinstance(value, Path) or (
            isinstance(value, str) and not value.lstrip().startswith("{")
        ):
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"no listing schedule file {path}")
            return ListingSchedule.from_file(path)
        return value

    @property
    def engine_dir(self) -> Path:
        return self.data_dir / "engine"

    def engine_config(self, risk: RiskConfig) -> EngineConfig:
        """The config a new journal is written under (an existing one keeps its own risk
        and capacity settings: the engine refuses a different one)."""
        return EngineConfig(
            risk=risk,
            fsync=self.fsync,
            snapshot_every=self.snapshot_every,
            snapshots_kept=self.snapshots_kept,
        )
