"""The benchmark's workloads and drivers at tiny sizes: no timings, only correctness.

A benchmark that feeds the books rows they reject, or whose two books disagree, measures
nothing useful, so the generators are checked to be deterministic, to produce the same
events on both books, and the latency driver to leave the book exactly as ``process`` does.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import latency
from benchmarks import matching as bench
from benchmarks import workloads as wl
from matching import codes as c
from matching.codes import EventKind
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
        (kinds == EventKind.ORDER_REJECTED) | (kinds == EventKind.COMMAND_REJECTED)
    )
    assert rejects < 0.1 * len(w.commands)
    assert np.count_nonzero(kinds == EventKind.ORDER_FILLED) > 0
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
    assert set(out[0][:, c.E_KIND].tolist()) >= {int(k) for k in EventKind}


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
