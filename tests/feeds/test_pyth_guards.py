"""Each of Pyth's best-practice guards, at and just past its limit."""

from __future__ import annotations

import dataclasses

import pytest

from feeds.pyth.guards import GuardLimits, OracleGuard, Refusal
from feeds.pyth.quote import OracleQuote, PriceStatus
from risk.config import AssetConfig, RiskConfig

NOW = 1_760_000_000
GUARD = OracleGuard({"SOL": GuardLimits(max_age_s=60, max_conf_bps=200, max_future_s=5)})


def quote(**changes: object) -> OracleQuote:
    base = OracleQuote(
        asset="SOL",
        price=150_00000000,
        conf=1_00000000,  # 1 USD on 150: 66 bps
        expo=-8,
        publish_time=NOW,
        status=PriceStatus.TRADING,
        source="test",
        simulated=False,
    )
    return dataclasses.replace(base, **changes)


def test_fresh_trading_tight_quote_passes() -> None:
    assert GUARD.check(quote(), NOW) is None


@pytest.mark.parametrize(
    "status", [PriceStatus.UNKNOWN, PriceStatus.HALTED, PriceStatus.AUCTION, PriceStatus.IGNORED]
)
def test_only_trading_counts(status: PriceStatus) -> None:
    assert GUARD.check(quote(status=status), NOW) == Refusal.NOT_TRADING


def test_maximum_age() -> None:
    assert GUARD.check(quote(publish_time=NOW - 60), NOW) is None
    assert GUARD.check(quote(publish_time=NOW - 61), NOW) == Refusal.STALE


def test_publish_time_from_the_future() -> None:
    assert GUARD.check(quote(publish_time=NOW + 5), NOW) is None
    assert GUARD.check(quote(publish_time=NOW + 6), NOW) == Refusal.FUTURE


def test_maximum_confidence_ratio() -> None:
    at_limit = 150_00000000 * 200 // 10_000  # exactly 2% of the price
    assert GUARD.check(quote(conf=at_limit), NOW) is None
    assert GUARD.check(quote(conf=at_limit + 1), NOW) == Refusal.WIDE_CONFIDENCE


@pytest.mark.parametrize(
    "changes", [{"price": 0}, {"price": -5}, {"conf": -1}, {"publish_time": 0}]
)
def test_invalid_values(changes: dict) -> None:
    assert GUARD.check(quote(**changes), NOW) == Refusal.INVALID


def test_partially_verified_update() -> None:
    assert GUARD.check(quote(verified=False), NOW) == Refusal.UNVERIFIED
    lenient = OracleGuard({"SOL": GuardLimits(require_full_verification=False)})
    assert lenient.check(quote(verified=False), NOW) is None


def test_asset_without_limits() -> None:
    assert GUARD.check(quote(asset="BTC"), NOW) == Refusal.UNKNOWN_ASSET


def test_limits_follow_the_risk_configuration() -> None:
    risk = RiskConfig(
        assets=(
            AssetConfig(symbol="USDC", decimals=6),
            AssetConfig(symbol="SOL", decimals=9, max_age_s=10, max_conf_bps=50),
        )
    )
    guard = OracleGuard.from_risk(risk)
    assert set(guard.limits) == {"USDC", "SOL"}
    assert guard.check(quote(publish_time=NOW - 11), NOW) == Refusal.STALE
    assert guard.check(quote(conf=150_00000000 * 51 // 10_000), NOW) == Refusal.WIDE_CONFIDENCE
    assert guard.check(quote(publish_time=NOW - 10, conf=0), NOW) is None


@pytest.mark.parametrize(
    ("price", "expo", "text"),
    [
        (150_12345678, -8, "150.12345678"),
        (5, -8, "0.00000005"),
        (-1234, -2, "-12.34"),
        (42, 0, "42"),
        (42, 2, "4200"),
    ],
)
def test_quote_shows_exact_decimals(price: int, expo: int, text: str) -> None:
    assert quote(price=price, expo=expo).decimal() == text


def test_simulated_quotes_are_labelled() -> None:
    assert quote(simulated=True).to_wire()["label"] == "SIMULATED"
    assert quote().to_wire()["label"] == "PYTH"
