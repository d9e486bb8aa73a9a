"""The ledger benchmark at tiny sizes: every documented key, sane values, no timings."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmarks import settlement, settlement_ledger
from exchange.core import ExchangeCore
from exchange.events import OrderFilled, decode
from matching import codes as mc

TINY = settlement_ledger.Sizes(fills=2_000, row_fills=150, lag_seconds=0.3, repeats=1)


def test_the_round_flow_trades_every_round_and_is_never_refused() -> None:
    rounds = 40
    rows = np.concatenate([settlement_ledger.setup_rows(), settlement_ledger.round_rows(rounds, 1)])
    rows[:, mc.C_SEQ] = np.arange(1, len(rows) + 1)
    events = decode(ExchangeCore().process(rows))
    kinds = {type(e).__name__ for e in events}
    assert not kinds & {"OrderRejected", "CommandRejected"}
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len(fills) == 2 * rounds * settlement_ledger.ASKS_PER_ROUND


def test_ledger_benchmark_reports_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settlement_ledger, "QUICK", TINY)
    monkeypatch.setattr(settlement_ledger, "WARMUP", TINY)
    monkeypatch.setitem(sys.modules, "benchmarks.settlement_chain", None)  # ledger part only
    result = settlement.run(quick=True)
    for key in (
        "ledger_fills_per_s",
        "ledger_row_inserts_fills_per_s",
        "ledger_speedup_vs_row_inserts",
        "ledger_lag_p99_ms",
        "ledger_lag_p50_ms",
    ):
        assert result[key] > 0, key
    assert result["ledger_workload"]["fills"] == TINY.fills
    assert result["ledger_bulk"]["fills"] == TINY.fills
    assert result["ledger_row_inserts"]["fills"] >= TINY.row_fills
    assert result["ledger_row_and_bulk_identical"] is True
    lag = result["ledger_lag"]
    assert lag["fills_measured"] == lag["fills"] > 0
    assert lag["lag_max_ms"] >= result["ledger_lag_p99_ms"] >= result["ledger_lag_p50_ms"]
    assert "chain_missing" in result
    assert set(result["targets"]) == {"ledger_fills_per_s"}
    assert isinstance(result["targets"]["ledger_fills_per_s"]["met"], bool)
    settlement.print_table(result)
