"""Decimal strings at the API edge become exact integers, or are refused."""

from __future__ import annotations

import pytest

from exchange.money import format_price, parse_price, parse_units


@pytest.mark.parametrize(
    ("text", "units"),
    [("2.013", 2_013_000), ("0.001", 1_000), ("1000", 1_000_000_000), ("0", 0), ("2.0", 2_000_000)],
)
def test_prices_parse_exactly_and_format_back(text: str, units: int) -> None:
    assert parse_price(text) == units
    assert parse_price(format_price(units)) == units


@pytest.mark.parametrize(
    "bad",
    ["", " 2.013", "2.013 ", "+2", "2.0135", "1e3", "2,013", "02.5", ".5", "5.", "NaN", "-",
     "1" * 19],
)  # fmt: skip
def test_malformed_or_off_tick_prices_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_price(bad)


def test_floats_are_refused_outright() -> None:
    with pytest.raises(TypeError, match="decimal strings"):
        parse_price(2.013)  # type: ignore[arg-type]


def test_asset_amounts_use_the_asset_decimals() -> None:
    assert parse_units("1.5", 9) == 1_500_000_000  # SOL
    assert parse_units("-0.000001", 6) == -1
    with pytest.raises(ValueError, match="decimal places"):
        parse_units("0.0000001", 6)
