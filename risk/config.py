"""Risk configuration: fees, price band, default limits per role, collateral assets.

Frozen and strict (unknown fields refused). The configuration is part of the engine's
genesis: a journal is replayed with the configuration it was written under.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk.codes import Role


class AssetConfig(BaseModel):
    """One asset accepted as collateral. Asset 0 is the quote asset (USDC) at par."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=16)
    decimals: int = Field(ge=0, le=18)
    haircut_bps: int = Field(default=0, ge=0, le=10_000)
    max_age_s: int = Field(default=60, gt=0)  # an older oracle price values the asset at zero
    max_conf_bps: int = Field(default=200, ge=0, le=10_000)  # confidence / price above: unused


class Limits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_qty: int = Field(gt=0)
    max_order_notional: int = Field(gt=0)  # quote base units (micro-USDC)
    max_open_orders: int = Field(gt=0)
    max_position: int = Field(gt=0)  # lots, per instrument, counting open orders


def _default_limits() -> dict[Role, Limits]:
    big = Limits(
        max_order_qty=100_000,
        max_order_notional=10**14,
        max_open_orders=100_000,
        max_position=10**9,
    )
    return {
        Role.BUYER: Limits(
            max_order_qty=10_000,
            max_order_notional=10**12,  # 1,000,000 USDC
            max_open_orders=1_000,
            max_position=1_000_000,
        ),
        Role.PROVIDER: big,
        Role.MARKET_MAKER: big,
        Role.OPERATOR: big,
    }


USDC_ASSET = AssetConfig(symbol="USDC", decimals=6)
SOL_ASSET = AssetConfig(symbol="SOL", decimals=9, haircut_bps=2_000, max_age_s=60)


class RiskConfig(BaseModel):
    """Fees in basis points of notional; a negative maker fee is a rebate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    taker_fee_bps: int = Field(default=10, ge=0, le=1_000)
    maker_fee_bps: int = Field(default=-2, ge=-1_000, le=1_000)
    price_band_bps: int = Field(default=2_000, ge=0, le=100_000)  # 0 turns the band off
    limits: dict[Role, Limits] = Field(default_factory=_default_limits)
    assets: tuple[AssetConfig, ...] = (USDC_ASSET, SOL_ASSET)

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.maker_fee_bps > self.taker_fee_bps:
            raise ValueError(
                "maker fee must not exceed the taker fee (buyers reserve the taker fee)"
            )
        if -self.maker_fee_bps > self.taker_fee_bps:
            raise ValueError("a maker rebate must not exceed the taker fee")
        if set(self.limits) != set(Role):
            raise ValueError("limits needs an entry for every role")
        if not self.assets or self.assets[0].symbol != "USDC" or self.assets[0].decimals != 6:
            raise ValueError("asset 0 must be USDC with 6 decimals (the quote asset)")
        if len({a.symbol for a in self.assets}) != len(self.assets):
            raise ValueError("asset symbols must be distinct")
        for a in self.assets[1:]:
            if 10**a.decimals > 10**12:
                raise ValueError(f"{a.symbol}: at most 12 decimals (valuation stays in int64)")
        return self

    def asset_index(self, symbol: str) -> int:
        for i, a in enumerate(self.assets):
            if a.symbol == symbol:
                return i
        raise KeyError(f"unknown asset {symbol!r}")
