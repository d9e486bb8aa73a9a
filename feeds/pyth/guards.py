"""Pyth's best practices as checks on each quote before it may become a command.

A quote is refused when its status is not TRADING, it is older than the asset's maximum age
(against the clock the caller passes in, so tests and replays choose the time), it claims a
publish time from the future, its confidence is too wide a share of the price, its price is
not positive, or (PriceUpdateV2) it was only partially verified. Valuing collateral at
price - confidence, with a haircut, is the risk engine's job and happens there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from feeds.pyth.quote import OracleQuote, PriceStatus
from risk.config import RiskConfig

BPS = 10_000


class Refusal(StrEnum):
    """Why a quote was not used: the ``reason`` label of the refused counter."""

    UNKNOWN_ASSET = "unknown_asset"
    NOT_TRADING = "not_trading"
    INVALID = "invalid"
    STALE = "stale"
    FUTURE = "future"
    WIDE_CONFIDENCE = "wide_confidence"
    UNVERIFIED = "unverified"
    OUT_OF_ORDER = "out_of_order"


class GuardLimits(BaseModel):
    """The thresholds for one asset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_age_s: int = Field(default=60, gt=0)
    max_conf_bps: int = Field(default=200, ge=0, le=BPS)
    max_future_s: int = Field(default=5, ge=0)  # clock skew tolerated on a publish time
    require_full_verification: bool = True


@dataclass(frozen=True, slots=True)
class OracleGuard:
    """Checks quotes against per-asset limits; assets without limits are refused."""

    limits: Mapping[str, GuardLimits] = field(default_factory=dict)

    @classmethod
    def from_risk(cls, risk: RiskConfig, **overrides: Any) -> OracleGuard:
        """The same age and confidence limits risk applies to collateral, per asset."""
        return cls(
            {
                a.symbol: GuardLimits(
                    max_age_s=a.max_age_s, max_conf_bps=a.max_conf_bps, **overrides
                )
                for a in risk.assets
            }
        )

    def check(self, quote: OracleQuote, now_s: int) -> Refusal | None:
        """``None`` if the quote may be used at unix time ``now_s``, else why not."""
        lim = self.limits.get(quote.asset)
        if lim is None:
            return Refusal.UNKNOWN_ASSET
        if quote.status != PriceStatus.TRADING:
            return Refusal.NOT_TRADING
        if quote.price <= 0 or quote.conf < 0 or quote.publish_time <= 0:
            return Refusal.INVALID
        if now_s - quote.publish_time > lim.max_age_s:
            return Refusal.STALE
        if quote.publish_time - now_s > lim.max_future_s:
            return Refusal.FUTURE
        if quote.conf * BPS > lim.max_conf_bps * quote.price:
            return Refusal.WIDE_CONFIDENCE
        if lim.require_full_verification and not quote.verified:
            return Refusal.UNVERIFIED
        return None
