"""Quotes into a real Engine: accepted ones become OraclePriceSet, the rest never reach it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from exchange.engine import Engine
from exchange.events import CommandRejected, OraclePriceSet, decode
from feeds.pyth.feeder import OracleFeeder, Outcome
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.quote import OracleQuote, PriceStatus
from risk.reference import unit_value

NOW = 1_760_000_000
SOL = OracleQuote(
    asset="SOL",
    price=150_12345678,
    conf=4_500000,
    expo=-8,
    publish_time=NOW,
    status=PriceStatus.TRADING,
    source="test",
    simulated=False,
)


class Recorder:
    """Keeps every event batch the engine hands its subscribers."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __call__(self, events: np.ndarray) -> None:
        self.batches.append(events.copy())

    def events(self) -> list:
        return [e for b in self.batches for e in decode(b)]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Engine.open(tmp_path / "engine", clock=lambda: NOW * 10**9) as e:
        yield e


@pytest.fixture
def metrics() -> OracleMetrics:
    return OracleMetrics(CollectorRegistry())


def feeder_for(engine: Engine, metrics: OracleMetrics) -> OracleFeeder:
    return OracleFeeder(engine.submit, risk=engine.config.risk, metrics=metrics, clock=lambda: NOW)


def test_accepted_quote_sets_the_engines_price(engine: Engine, metrics: OracleMetrics) -> None:
    seen = Recorder()
    engine.subscribe(seen)
    [decision] = feeder_for(engine, metrics).offer([SOL])
    assert decision.outcome == Outcome.ACCEPTED
    [event] = seen.events()
    assert isinstance(event, OraclePriceSet)
    assert (event.asset, event.price, event.conf, event.expo) == (1, SOL.price, SOL.conf, -8)
    assert (event.publish_time, event.status) == (NOW, 1)
    # collateral at price - conf, less SOL's 20% haircut, as the risk reference values it
    assert event.unit_value == unit_value(SOL.price, SOL.conf, -8, 2_000) == 120_062_764
    assert metrics.count("quotes_accepted", asset="SOL", source="test") == 1


def test_unchanged_publish_time_is_not_resubmitted(engine: Engine, metrics: OracleMetrics) -> None:
    feeder = feeder_for(engine, metrics)
    feeder.offer([SOL])
    before = engine.last_seq
    [again] = feeder.offer([dataclasses.replace(SOL, price=SOL.price + 1)])
    assert again.outcome == Outcome.UNCHANGED
    assert engine.last_seq == before
    assert metrics.count("quotes_unchanged", asset="SOL", source="test") == 1
    [newer] = feeder.offer([dataclasses.replace(SOL, publish_time=NOW + 1)])
    assert newer.outcome == Outcome.ACCEPTED and engine.last_seq == before + 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": PriceStatus.HALTED}, "not_trading"),
        ({"publish_time": NOW - 61}, "stale"),
        ({"conf": 150_12345678 * 201 // 10_000}, "wide_confidence"),
        ({"verified": False}, "unverified"),
    ],
)
def test_refused_quotes_are_counted_and_never_submitted(
    engine: Engine, metrics: OracleMetrics, changes: dict, reason: str
) -> None:
    feeder = feeder_for(engine, metrics)
    [decision] = feeder.offer([dataclasses.replace(SOL, **changes)])
    assert (decision.outcome, decision.reason) == (Outcome.REFUSED, reason)
    assert engine.last_seq == 0
    assert metrics.count("quotes_refused", asset="SOL", source="test", reason=reason) == 1
    assert metrics.count("quotes_accepted", asset="SOL", source="test") == 0


def test_out_of_order_quote_is_refused(engine: Engine, metrics: OracleMetrics) -> None:
    feeder = feeder_for(engine, metrics)
    feeder.offer([SOL])
    [old] = feeder.offer([dataclasses.replace(SOL, publish_time=NOW - 1)])
    assert (old.outcome, old.reason) == (Outcome.REFUSED, "out_of_order")
    assert engine.last_seq == 1


def test_usdc_is_watched_but_never_priced(engine: Engine, metrics: OracleMetrics) -> None:
    feeder = feeder_for(engine, metrics)
    usdc = dataclasses.replace(SOL, asset="USDC", price=99_990000, conf=20000)
    decisions = feeder.offer([usdc, SOL])
    assert [d.outcome for d in decisions] == [Outcome.NOT_PRICED, Outcome.ACCEPTED]
    assert engine.last_seq == 1  # only SOL reached the engine
    assert feeder.latest["USDC"] == usdc


def test_engine_refusal_is_counted(engine: Engine, metrics: OracleMetrics) -> None:
    feeder_for(engine, metrics).offer([SOL])
    # a second feeder (as after a restart) that does not know what the engine already has
    restarted = feeder_for(engine, metrics)
    [decision] = restarted.offer([dataclasses.replace(SOL, publish_time=NOW - 5)])
    assert (decision.outcome, decision.reason) == (
        Outcome.ENGINE_REJECTED,
        "OUTDATED_ORACLE_PRICE",
    )
    assert metrics.count("quotes_engine_rejected", asset="SOL", reason="OUTDATED_ORACLE_PRICE") == 1


def test_the_engine_answers_every_oracle_command(engine: Engine, metrics: OracleMetrics) -> None:
    seen = Recorder()
    engine.subscribe(seen)
    feeder = feeder_for(engine, metrics)
    quotes = [dataclasses.replace(SOL, publish_time=NOW - 10 + i) for i in range(5)]
    for q in quotes:
        feeder.offer([q])
    events = seen.events()
    assert [type(e) for e in events] == [OraclePriceSet] * 5
    assert not any(isinstance(e, CommandRejected) for e in events)
    assert [e.publish_time for e in events] == [q.publish_time for q in quotes]


def test_a_refused_update_is_counted_once(engine: Engine, metrics: OracleMetrics) -> None:
    feeder = feeder_for(engine, metrics)
    stale = dataclasses.replace(SOL, publish_time=NOW - 100)
    outcomes = [d.outcome for q in (stale, stale, stale) for d in feeder.offer([q])]
    assert outcomes == [Outcome.REFUSED, Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert metrics.count("quotes_refused", asset="SOL", source="test", reason="stale") == 1


def test_a_future_dated_quote_does_not_block_later_ones(
    engine: Engine, metrics: OracleMetrics
) -> None:
    feeder = feeder_for(engine, metrics)
    [future] = feeder.offer([dataclasses.replace(SOL, publish_time=NOW + 3600)])
    assert (future.outcome, future.reason) == (Outcome.REFUSED, "future")
    [good] = feeder.offer([SOL])
    assert good.outcome == Outcome.ACCEPTED and engine.last_seq == 1
