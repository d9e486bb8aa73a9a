"""Instrument names, statuses and the listing schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from exchange.instruments import (
    MAX_PRICE_MICRO_USDC,
    STATUS_TRANSITIONS,
    TICK_MICRO_USDC,
    InstrumentKey,
    InstrumentNameError,
    InstrumentState,
    ListingSchedule,
    can_transition,
)
from matching.fast import FastBook
from matching.reference import ReferenceBook
from risk import codes as risk_codes

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def test_names_round_trip_exactly() -> None:
    name = "H100-80G.us-east.20261201T00Z.24h"
    key = InstrumentKey.parse(name)
    assert key == InstrumentKey("H100-80G", "us-east", DEC_1, 24)
    assert key.name == name
    assert key.window_end == DEC_1 + timedelta(hours=24)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "H100-80G.us-east.20261201T00Z",  # no duration
        "h100.us-east.20261201T00Z.24h",  # resource must be upper case
        "H100.US-EAST.20261201T00Z.24h",  # region must be lower case
        "H100.us-east.20261301T00Z.24h",  # month 13
        "H100.us-east.20261201T24Z.24h",  # hour 24
        "H100.us-east.20261201T00Z.0h",  # zero hours
        "H100.us-east.20261201T00Z.24h ",  # trailing space
        "H100..20261201T00Z.24h",
    ],
)
def test_malformed_names_are_refused_with_the_expected_shape(bad: str) -> None:
    with pytest.raises(InstrumentNameError):
        InstrumentKey.parse(bad)


def test_keys_refuse_naive_or_off_hour_windows() -> None:
    with pytest.raises(InstrumentNameError, match="UTC"):
        InstrumentKey("H100", "us-east", datetime(2026, 12, 1), 24)
    with pytest.raises(InstrumentNameError, match="on the hour"):
        InstrumentKey("H100", "us-east", DEC_1.replace(minute=30), 24)
    with pytest.raises(InstrumentNameError, match="UTC"):
        InstrumentKey("H100", "us-east", DEC_1.replace(tzinfo=timezone(timedelta(hours=1))), 1)


@pytest.mark.parametrize("book_cls", [ReferenceBook, FastBook])
def test_spec_prices_on_the_0_001_tick_across_a_million_ticks(book_cls: type) -> None:
    spec = InstrumentKey.parse("H100-80G.us-east.20261201T00Z.24h").spec(7)
    assert spec.tick_size == TICK_MICRO_USDC and spec.max_price == MAX_PRICE_MICRO_USDC
    assert spec.ticks == 1_000_000
    book = book_cls()
    book.add_instrument(spec)
    order = {"instrument": 7, "account": 1, "side": 2, "qty": 5}
    events = book.new_order(order_id=1, price=2_013_000, **order)  # 2.013 USDC per GPU-hour
    assert events[0].kind.name == "ORDER_ACCEPTED"
    events = book.new_order(order_id=2, price=2_013_500, **order)
    assert events[0].reject_code.name == "PRICE_OFF_TICK"


def test_status_transitions_follow_the_lifecycle() -> None:
    s = InstrumentState
    assert STATUS_TRANSITIONS is risk_codes.STATUS_TRANSITIONS  # one table, re-exported
    assert can_transition(s.PRE_OPEN, s.TRADING)
    assert can_transition(s.TRADING, s.HALTED) and can_transition(s.HALTED, s.TRADING)
    assert can_transition(s.TRADING, s.CLOSED)
    assert can_transition(s.CLOSED, s.DELIVERING) and can_transition(s.DELIVERING, s.SETTLED)
    assert not can_transition(s.CLOSED, s.TRADING)
    assert not can_transition(s.SETTLED, s.TRADING)
    assert not can_transition(s.TRADING, s.SETTLED)


def test_schedule_lists_next_hour_spot_and_daily_windows_ahead() -> None:
    schedule = ListingSchedule(resources=("H100-80G", "A100-80G"), regions=("us-east",),
                               daily_days_ahead=3)  # fmt: skip
    now = datetime(2026, 11, 30, 17, 42, tzinfo=UTC)
    names = [key.name for key in schedule.listings(now)]
    assert names == sorted(names)
    assert "H100-80G.us-east.20261130T18Z.1h" in names  # spot: the next whole hour
    for day in ("20261201", "20261202", "20261203"):
        assert f"A100-80G.us-east.{day}T00Z.24h" in names
    assert "A100-80G.us-east.20261204T00Z.24h" not in names
    assert len(names) == 2 * (1 + 3)
    # the same inputs always list the same instruments
    assert schedule.listings(now) == schedule.listings(now)


def test_schedule_skips_a_daily_window_that_has_started() -> None:
    schedule = ListingSchedule(resources=("H100-80G",), regions=("eu-west",), spot=False,
                               daily_days_ahead=1, daily_start_hour=12)  # fmt: skip
    before = schedule.listings(datetime(2026, 12, 1, 11, 59, tzinfo=UTC))
    after = schedule.listings(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert [k.name for k in before] == ["H100-80G.eu-west.20261201T12Z.24h"]
    assert [k.name for k in after] == ["H100-80G.eu-west.20261202T12Z.24h"]


def test_schedule_config_refuses_unknown_fields_and_repeats() -> None:
    with pytest.raises(ValidationError):
        ListingSchedule(resources=("H100-80G",), regions=("us-east",), daly_days_ahead=3)
    with pytest.raises(ValidationError):
        ListingSchedule(resources=("H100-80G", "H100-80G"), regions=("us-east",))
    with pytest.raises(ValidationError):
        ListingSchedule(resources=(), regions=("us-east",))
    with pytest.raises(ValueError, match="timezone"):
        ListingSchedule(resources=("H100-80G",), regions=("us-east",)).listings(
            datetime(2026, 12, 1)
        )


def test_schedule_file_becomes_listing_commands(tmp_path) -> None:
    from exchange.instruments import ListingSchedule, listing_commands

    path = tmp_path / "listings.toml"
    path.write_text('resources = ["H100-80G"]\nregions = ["us-east"]\ndaily_days_ahead = 2\n')
    schedule = ListingSchedule.from_file(path)
    now = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    planned = listing_commands(schedule, now, {}, next_id=5, reference_price=2_000_000)
    names = [key.name for key, _ in planned]
    assert names == [
        "H100-80G.us-east.20261121T10Z.1h",
        "H100-80G.us-east.20261122T00Z.24h",
        "H100-80G.us-east.20261123T00Z.24h",
    ]
    assert [cmd.instrument for _, cmd in planned] == [5, 6, 7]
    spot = planned[0][1]
    assert spot.cutoff_ts == int(datetime(2026, 11, 21, 10, tzinfo=UTC).timestamp()) * 10**9
    again = listing_commands(schedule, now, dict(zip(names, (5, 6, 7), strict=True)), 8)
    assert again == []
    path.write_text('resources = ["H100-80G"]\nregions = ["us-east"]\ntypo = 1\n')
    with pytest.raises(ValueError):
        ListingSchedule.from_file(path)
