"""The benchmark's workloads and drivers at tiny sizes: no timings, only correctness.

A benchmark that feeds the books rows they reject, or whose two books disagree, measures
nothing useful, so the generators are checked to be deterministic, to produce the same
events on both books, and the latency driver to leave the book exactly as ``process`` does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

import numpy as np
import orjson
import pytest

import benchmarks
from benchmarks import engine as engine_bench
from benchmarks import engine_workload as ewl
from benchmarks import harness, latency
from benchmarks import matching as bench
from benchmarks import workloads as wl
from exchange.core import ExchangeCore
from matching import codes as c
from matching.codes import BookEventKind
from matching.fast import FastBook
from matching.reference import ReferenceBook
from matching.spec import BookConfig

TINY = bench.Sizes(
    exchange_core=1_500,
    insert_heavy=1_500,
    many_instruments=1_500,
    books=20,
    per_book=30,
    reference=500,
    single_call=200,
    latency={"100k": 300, "1M": 600},
    repeats=1,
)


def _tiny(name: str, oracle: type = ReferenceBook) -> wl.Workload:
    return bench.generate(name, TINY, oracle)


def _events(w: wl.Workload, book_cls: type) -> tuple[np.ndarray, str]:
    book = w.build(book_cls)
    return book.process(w.commands), book.state_hash()


@pytest.mark.parametrize("name", bench.WORKLOADS)
def test_reference_and_fast_books_agree_on_the_workload(name: str) -> None:
    w = _tiny(name)
    ref_events, ref_hash = _events(w, ReferenceBook)
    fast_events, fast_hash = _events(w, FastBook)
    assert len(ref_events) > len(w.commands)
    np.testing.assert_array_equal(ref_events, fast_events)
    assert ref_hash == fast_hash


@pytest.mark.parametrize("name", bench.WORKLOADS)
def test_generation_is_deterministic_whichever_book_is_the_oracle(name: str) -> None:
    a, b = _tiny(name), _tiny(name, FastBook)
    np.testing.assert_array_equal(a.prefill, b.prefill)
    np.testing.assert_array_equal(a.commands, b.commands)


@pytest.mark.parametrize("name", bench.WORKLOADS)
def test_workloads_are_mostly_accepted_and_trade(name: str) -> None:
    w = _tiny(name)
    events, _ = _events(w, ReferenceBook)
    kinds = events[:, c.E_KIND]
    rejects = np.count_nonzero(
        (kinds == BookEventKind.ORDER_REJECTED) | (kinds == BookEventKind.COMMAND_REJECTED)
    )
    assert rejects < 0.1 * len(w.commands)
    assert np.count_nonzero(kinds == BookEventKind.ORDER_FILLED) > 0
    seqs = np.concatenate([w.prefill[:, c.C_SEQ], w.commands[:, c.C_SEQ]])
    assert np.array_equal(seqs, np.arange(1, len(seqs) + 1))


def test_exchange_core_mix_is_close_to_the_published_one() -> None:
    mix = _tiny("exchange_core").stats["mix"]
    assert isinstance(mix, dict)
    assert mix["replace"] == pytest.approx(0.82, abs=0.05)
    assert mix["ioc"] == pytest.approx(0.03, abs=0.02)


def test_probe_commands_agree_on_both_books() -> None:
    books = [cls() for cls in (ReferenceBook, FastBook)]
    out = []
    for book in books:
        book.add_instrument(wl.instrument_spec(0))
        out.append(book.process(wl.probe_commands()))
    np.testing.assert_array_equal(*out)
    assert set(out[0][:, c.E_KIND].tolist()) >= {int(k) for k in BookEventKind}


@pytest.mark.parametrize("rate", [100_000, 1_000_000])
def test_open_loop_driver_leaves_the_book_as_process_does(rate: int) -> None:
    w = _tiny("exchange_core")
    book = w.build(FastBook)
    run = latency.run_open_loop(book, w.commands, rate)
    assert len(run.latency_ns) == len(w.commands)
    assert (run.latency_ns > 0).all()
    assert run.pool_growths == 0
    expected = w.build(FastBook)
    expected.process(w.commands)
    assert book.state_hash() == expected.state_hash()


def test_open_loop_driver_survives_pool_growth() -> None:
    w = _tiny("insert_heavy")
    book = FastBook(BookConfig(initial_orders=16, initial_accounts=16))  # must grow
    for spec in w.specs:
        book.add_instrument(spec)
    run = latency.run_open_loop(book, w.commands, 1_000_000)
    assert run.pool_growths > 0
    expected = w.build(FastBook)
    expected.process(w.commands)
    assert book.state_hash() == expected.state_hash()


def test_measure_workload_reports_every_documented_key() -> None:
    w = _tiny("many_instruments", FastBook)
    res = bench.measure_workload(w, TINY, FastBook)
    for key in (
        "kernel_ops_per_s",
        "single_call_ops_per_s",
        "reference_ops_per_s",
        "speedup_vs_reference",
    ):
        assert res[key] > 0
    assert res["events_match_reference"] is True
    assert res["latency_state_matches_process"] is True
    for rate in bench.RATES:
        assert set(res["latency_us"][rate]) >= {"p50", "p99", "p999", "max"}
    bench.print_table(
        {
            "workloads": {w.name: res},
            "jit_cold_s": 0.0,
            "jit_cached_s": 0.0,
            "latency_driver_compile_s": 0.0,
            "peak_rss_mb": 0.0,
        }
    )


# -- benchmarks.engine ------------------------------------------------------------------------

ENGINE_TINY = engine_bench.Sizes(
    commands=6_000,
    instruments=3,
    accounts=12,
    batch=512,
    resting_orders=2_000,
    repeats=1,
)


def _core_events(rows: np.ndarray, setup: np.ndarray) -> np.ndarray:
    """``setup`` then ``rows`` through a fresh ExchangeCore, stamped as the sequencer would."""
    core = ExchangeCore()
    both = np.concatenate([setup, rows])
    both[:, c.C_SEQ] = np.arange(1, len(both) + 1)
    both[:, c.C_TS] = 1
    setup_events = core.process(both[: len(setup)])
    assert not np.isin(setup_events[:, c.E_KIND], [BookEventKind.COMMAND_REJECTED]).any()
    return core.process(both[len(setup) :])


def test_engine_flow_is_deterministic_and_never_refused() -> None:
    """Cancels and replaces must find their orders without an oracle, and risk must accept
    every order, or the engine benchmark would time rejects."""
    sizes = ENGINE_TINY
    kw = {"instruments": sizes.instruments, "accounts": sizes.accounts, "lifetime": 300}
    a, b = ewl.flow(sizes.commands, **kw), ewl.flow(sizes.commands, **kw)
    np.testing.assert_array_equal(a.commands, b.commands)
    assert len(a.commands) == sizes.commands
    ids = a.commands[a.commands[:, c.C_KIND] == c.BookCommandKind.NEW_ORDER, c.C_ORDER_ID]
    assert len(np.unique(ids)) == len(ids) and ids.min() >= 1
    events = _core_events(a.commands, ewl.setup_rows(sizes.instruments, sizes.accounts))
    kinds = events[:, c.E_KIND]
    assert not np.isin(kinds, [BookEventKind.ORDER_REJECTED, BookEventKind.COMMAND_REJECTED]).any()
    mix = a.stats["mix"]
    assert isinstance(mix, dict)
    assert np.count_nonzero(kinds == BookEventKind.ORDER_REPLACED) == round(
        mix["replace"] * sizes.commands
    )
    user_cancels = (kinds == BookEventKind.ORDER_CANCELLED) & (
        events[:, c.E_REASON] == c.CancelReason.USER
    )
    assert np.count_nonzero(user_cancels) == round(mix["cancel"] * sizes.commands) > 0
    assert np.count_nonzero(kinds == BookEventKind.ORDER_FILLED) > 0


def test_engine_resting_rows_never_cross() -> None:
    sizes = ENGINE_TINY
    rows = ewl.resting_rows(
        sizes.resting_orders, instruments=sizes.instruments, accounts=sizes.accounts
    )
    events = _core_events(rows, ewl.setup_rows(sizes.instruments, sizes.accounts))
    assert np.count_nonzero(events[:, c.E_KIND] == BookEventKind.ORDER_ACCEPTED) == len(rows)
    assert len(events) == len(rows)


def test_engine_benchmark_reports_every_documented_key() -> None:
    result = engine_bench.run(ENGINE_TINY, True, lambda _msg: None, warmup=False)
    for key in (
        "commands_per_s",
        "commands_per_s_no_journal",
        "commands_per_s_with_event_hash",
        "journal_cost_ratio",
        "replay_commands_per_s",
        "matching_only_commands_per_s",
        "snapshot_write_s",
        "snapshot_load_s",
        "snapshot_mb",
        "recovery_s",
        "peak_rss_mb",
    ):
        assert result[key] > 0, key
    assert result["replay_identical"] is True
    assert result["events_equal_across_runs"] is True
    assert result["reject_share"] == 0
    assert result["resting_orders"] == ENGINE_TINY.resting_orders
    snap = result["snapshot"]
    assert snap["recovered_state_identical"] and snap["loaded_state_identical"]
    assert snap["recovery_replayed_commands"] == 0
    assert set(result["targets"]) == set(engine_bench.TARGETS)
    assert all(isinstance(t["met"], bool) for t in result["targets"].values())
    engine_bench.print_table(result)


# -- benchmarks.harness -----------------------------------------------------------------------

HARNESS_TARGETS: dict[str, harness.Target] = {
    "fills_per_s": (">=", 1_000),
    "lag_ms": ("<=", 2.5),
    "missing_per_s": (">=", 10),
}


def _tiny_run(args: argparse.Namespace, progress: harness.Progress) -> dict[str, Any]:
    progress("measuring")
    result = harness.start(args.quick)
    result |= {"fills_per_s": 1_500, "lag_ms": 3.0}
    return harness.finish(result, targets=HARNESS_TARGETS, notes=["what the figures mean"])


def test_harness_reports_one_json_document_in_the_shared_frame(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tables: list[dict[str, Any]] = []
    assert harness.main("tiny", _tiny_run, tables.append, argv=["--json", "--quick"]) == 0
    out, err = capsys.readouterr()
    assert "[benchmarks.tiny] measuring" in err
    result = orjson.loads(out)
    assert tables == []
    assert list(result) == [
        "quick",
        "machine",
        "fills_per_s",
        "lag_ms",
        "targets",
        "peak_rss_mb",
        "notes",
        "total_s",
    ]
    assert result["quick"] is True
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["python"]
    assert len(machine["load_average_at_start"]) == len(machine["load_average_at_end"]) == 3
    assert result["targets"] == {
        "fills_per_s": {"target": ">= 1,000", "value": 1_500, "met": True},
        "lag_ms": {"target": "<= 2.5", "value": 3.0, "met": False},
        "missing_per_s": {"target": ">= 10", "value": None, "met": False},
    }
    assert result["peak_rss_mb"] > 0


def test_harness_prints_the_benchmark_table_then_the_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tables: list[dict[str, Any]] = []
    assert harness.main("tiny", _tiny_run, tables.append, argv=[]) == 0
    out = capsys.readouterr().out
    assert len(tables) == 1 and tables[0]["quick"] is False
    assert "Targets" in out and "fills_per_s" in out and "NO" in out


def test_optional_targets_are_left_out_when_their_part_did_not_run() -> None:
    result = {"fills_per_s": 999}
    targets = harness.evaluate_targets(result, HARNESS_TARGETS, optional=["lag_ms"])
    assert set(targets) == {"fills_per_s", "missing_per_s"}
    assert targets["fills_per_s"]["met"] is False
    with pytest.raises(ValueError):
        harness.verdict(("==", 1), 1)


@pytest.mark.parametrize(
    "name",
    ["matching", "engine", "settlement", "settlement_ledger", "settlement_chain", "marketdata"],
)
def test_every_benchmark_takes_the_shared_options(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--help`` only. A module this test imports is forgotten again, so that a later test
    can still see the settlement benchmark without its chain part."""
    qualified = f"benchmarks.{name}"
    imported_here = qualified not in sys.modules
    try:
        module = importlib.import_module(qualified)
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
    finally:
        if imported_here:
            sys.modules.pop(qualified, None)
            if hasattr(benchmarks, name):
                delattr(benchmarks, name)
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert f"python -m benchmarks.{name}" in usage
    assert "--json" in usage and "--quick" in usage
