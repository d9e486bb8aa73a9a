"""Matching engine benchmark: the numba ``FastBook`` against the plain-Python ``ReferenceBook``.

    python -m benchmarks.matching [--json] [--quick] [--workload NAME]

For each workload (see ``benchmarks.workloads``) it measures the fast book's throughput on
large batches and one command per call, the reference book's throughput on a prefix of
the same commands in the same run (the ratio is what to compare across machines, these
ones being shared and noisy), and open-loop latency at constant offered rates
(``benchmarks.latency``). It also times the kernel's JIT compile, cold and from cache, in
fresh processes. The reference is slow, so it runs a prefix; everything it runs is checked
to produce exactly the fast book's events.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import harness, probes
from benchmarks import workloads as wl
from matching import codes as c
from matching.api import OrderBook
from matching.codes import BookEventKind
from matching.reference import ReferenceBook

if TYPE_CHECKING:  # imported where it is used: its first import is part of a timed probe
    from matching.fast import FastBook

RATES = {"100k": 100_000, "1M": 1_000_000}
WORKLOADS = ("exchange_core", "insert_heavy", "many_instruments")


@dataclass(frozen=True)
class Sizes:
    """How many commands each part runs: --quick trades precision for a one-minute run."""

    exchange_core: int
    insert_heavy: int
    many_instruments: int
    books: int  # many_instruments: instruments ...
    per_book: int  # ... and resting orders each after the prefill
    reference: int  # prefix run on both books for the speedup and the event check
    single_call: int
    latency: dict[str, int]  # commands offered per rate label
    repeats: int  # batch runs per workload, best kept


QUICK = Sizes(
    exchange_core=200_000,
    insert_heavy=200_000,
    many_instruments=100_000,
    books=1_000,
    per_book=200,
    reference=20_000,
    single_call=20_000,
    latency={"100k": 50_000, "1M": 200_000},
    repeats=2,
)
FULL = Sizes(
    exchange_core=1_000_000,
    insert_heavy=1_000_000,
    many_instruments=500_000,
    books=1_000,
    per_book=1_000,
    reference=100_000,
    single_call=100_000,
    latency={"100k": 500_000, "1M": 1_000_000},
    repeats=3,
)


def _batch_run(book: OrderBook, cmds: np.ndarray, prefix: int, first_id: int) -> dict[str, Any]:
    """``prefix`` rows in one call (timed alone too), then the rest in 64k-row batches.
    Event statistics are gathered between the timed calls; orders from ``first_id`` on are
    the workload's own (ids below it came with the prefill)."""
    kinds = np.zeros(len(BookEventKind) + 1, dtype=np.int64)
    trade_cmds, traded_ids = 0, []
    total = 0.0
    prefix_s, prefix_events = 0.0, None
    bounds = [0, prefix, *range(prefix + wl.PROCESS_CHUNK, len(cmds), wl.PROCESS_CHUNK)]
    bounds.append(len(cmds))
    gc.collect()
    for a, b in itertools.pairwise(bounds):
        t = time.perf_counter()
        ev = book.process(cmds[a:b])
        dt = time.perf_counter() - t
        total += dt
        if a == 0:
            prefix_s, prefix_events = dt, ev
        kinds += np.bincount(ev[:, c.E_KIND], minlength=len(kinds))
        fills = ev[ev[:, c.E_KIND] == BookEventKind.ORDER_FILLED]
        trade_cmds += len(np.unique(fills[:, c.E_SEQ]))
        ids = fills[:, c.E_ORDER_ID]
        traded_ids.append(np.unique(ids[ids >= first_id]))
    n = len(cmds)
    rejects = int(kinds[BookEventKind.ORDER_REJECTED] + kinds[BookEventKind.COMMAND_REJECTED])
    return {
        "seconds": total,
        "prefix_seconds": prefix_s,
        "prefix_events": prefix_events,
        "events": int(kinds.sum()),
        "fills": int(kinds[BookEventKind.ORDER_FILLED]) // 2,
        "reject_share": round(rejects / n, 4),
        "trade_command_share": round(trade_cmds / n, 4),
        "traded_order_share": round(
            len(np.unique(np.concatenate(traded_ids))) / max(1, _new_orders(cmds)), 4
        ),
        "resting_orders_at_end": book.open_order_count(),
    }


def _new_orders(cmds: np.ndarray) -> int:
    return int(np.count_nonzero(cmds[:, c.C_KIND] == c.BookCommandKind.NEW_ORDER))


def _state_mb(book: OrderBook) -> float | None:
    state = getattr(book, "state", None)
    return None if state is None else round(sum(a.nbytes for a in state) / 2**20, 1)


def _run_batch_seconds(book: Any, cmds: np.ndarray) -> float:
    """All commands through the kernel entry point, events left in one reused 16k-row
    buffer and dropped when it fills, as an engine consumes them in place (no copy out)."""
    from matching import kernel

    ev = np.zeros((16_384, c.N_EVENT_FIELDS), dtype=np.int64)
    i, n = 0, len(cmds)
    t = time.perf_counter()
    while i < n:
        status, i, ev, _ = kernel.run_batch(book.state, cmds, i, n, ev, np.int64(0))
        if status not in (kernel.DONE, kernel.NEED_EVENT_ROOM):
            book.process(cmds[i : i + 1])  # a pool must grow: not expected, pools are sized
            i += 1
    return time.perf_counter() - t


def _measure_batches(w: wl.Workload, sizes: Sizes, fast: type[FastBook]) -> dict[str, Any]:
    """Throughput in large batches, best of a few runs, each from a fresh prefilled book."""
    n, prefix = len(w.commands), min(sizes.reference, len(w.commands))
    out: dict[str, Any] = {}
    runs = []
    for r in range(sizes.repeats):
        gc.collect()
        t = time.perf_counter()
        book = w.build(fast)
        if r == 0:
            out["fast_book_arrays_mb"] = _state_mb(book)
            if len(w.prefill) >= 10_000:
                prefill_s = time.perf_counter() - t
                out["prefill_s"] = round(prefill_s, 3)
                out["prefill_ops_per_s"] = round(len(w.prefill) / prefill_s)
        runs.append(_batch_run(book, w.commands, prefix, len(w.prefill) + 1))
        del book  # the next run's book is built on freed memory
    best = min(runs, key=lambda run: run["seconds"])
    out["kernel_ops_per_s"] = round(n / best["seconds"])
    if hasattr(fast, "state") or fast.__name__ == "FastBook":
        direct = [_run_batch_seconds(w.build(fast), w.commands) for _ in range(sizes.repeats)]
        out["run_batch_ops_per_s"] = round(n / min(direct))
    out["kernel_runs_ops_per_s"] = [round(n / run["seconds"]) for run in runs]
    out |= {k: v for k, v in best.items() if not k.startswith("prefix") and k != "seconds"}
    out["_prefix_seconds"] = min(run["prefix_seconds"] for run in runs)
    out["_prefix_events"] = runs[0]["prefix_events"]
    return out


def _measure_calls(w: wl.Workload, sizes: Sizes, fast: type[FastBook]) -> dict[str, Any]:
    """Single-call throughput of the fast book, and the reference on the prefix."""
    cmds, out = w.commands, dict[str, Any]()
    book = w.build(fast)
    ref: OrderBook
    if len(w.prefill) > 10_000:  # restoring beats replaying the prefill in Python
        t = time.perf_counter()
        ref = ReferenceBook.restore(book.snapshot(), w.config())
        out["reference_prefill"] = (
            f"ReferenceBook.restore of the fast book's snapshot, {time.perf_counter() - t:.1f} s"
        )
    else:
        ref = w.build(ReferenceBook)
    m = min(sizes.single_call, len(cmds))
    rows = [cmds[i : i + 1] for i in range(m)]
    process = book.process
    gc.collect()
    t = time.perf_counter()
    for row in rows:
        process(row)
    out["single_call_ops_per_s"] = round(m / (time.perf_counter() - t))
    out["single_call_commands"] = m
    del book, process

    prefix = min(sizes.reference, len(cmds))
    gc.collect()
    t = time.perf_counter()
    out["_reference_events"] = ref.process(cmds[:prefix])
    out["_reference_seconds"] = time.perf_counter() - t
    out["reference_commands"] = prefix
    out["reference_ops_per_s"] = round(prefix / out["_reference_seconds"])
    return out


def _measure_latency(
    w: wl.Workload, sizes: Sizes, fast: type[FastBook], kernel_ops_per_s: int
) -> dict[str, Any]:
    from benchmarks import latency

    out: dict[str, Any] = {"latency_us": {}}
    for label, rate in RATES.items():
        m = min(sizes.latency[label], len(w.commands))
        book = w.build(fast)
        gc.collect()
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        run = latency.run_open_loop(book, w.commands[:m], rate)
        summary = run.summary_us()
        # Preemptions of the spinning driver by other processes show up as tail latency.
        summary["involuntary_context_switches"] = (
            resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches
        )
        summary["offered_above_batch_throughput"] = rate > kernel_ops_per_s
        out["latency_us"][label] = summary
        if label == "100k":  # the driver must leave the book exactly as process() would
            check = w.build(fast)
            wl.process_in_chunks(check, w.commands[:m])
            out["latency_state_matches_process"] = check.state_hash() == book.state_hash()
    return out


def measure_workload(w: wl.Workload, sizes: Sizes, fast: type[FastBook]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": w.description,
        "instruments": len(w.specs),
        "prefill_commands": len(w.prefill),
        "commands": len(w.commands),
        **w.stats,
    }
    out |= _measure_batches(w, sizes, fast)
    out |= _measure_calls(w, sizes, fast)
    fast_s, ref_s = out.pop("_prefix_seconds"), out.pop("_reference_seconds")
    fast_events, ref_events = out.pop("_prefix_events"), out.pop("_reference_events")
    out["fast_ops_per_s_on_reference_prefix"] = round(out["reference_commands"] / fast_s)
    out["speedup_vs_reference"] = harness.ratio(ref_s, fast_s, 2)
    out["events_match_reference"] = bool(np.array_equal(ref_events, fast_events))
    out |= _measure_latency(w, sizes, fast, out["kernel_ops_per_s"])
    return out


def generate(name: str, sizes: Sizes, oracle: type[OrderBook]) -> wl.Workload:
    if name == "exchange_core":
        return wl.exchange_core(sizes.exchange_core, oracle=oracle)
    if name == "insert_heavy":
        return wl.insert_heavy(sizes.insert_heavy)
    return wl.many_instruments(
        sizes.many_instruments,
        instruments=sizes.books,
        per_instrument=sizes.per_book,
        oracle=oracle,
    )


NOTES = [
    "kernel_ops_per_s: FastBook.process over all commands, the first `reference_commands` in one "
    "call and the rest in 64k-row batches, best of `kernel_runs_ops_per_s`, each from a freshly "
    "prefilled book; pools pre-sized so nothing grows while timed.",
    "reference_ops_per_s: ReferenceBook.process on the first `reference_commands` commands only "
    "(it is slow); speedup_vs_reference compares it with the fast book's time on that same prefix "
    "(fast_ops_per_s_on_reference_prefix), and events_match_reference checks the event arrays "
    "are identical.",
    "run_batch_ops_per_s: the same commands through matching.kernel.run_batch with one reused "
    "16k-row event buffer whose events are dropped when it fills, as an engine consumes them in "
    "place; kernel_ops_per_s also pays for copying every event out to a fresh array.",
    "single_call_ops_per_s: one FastBook.process call per command from Python, on a prefix.",
    "latency_us: open loop at a constant offered rate, latency = completion - intended arrival, "
    "events dropped after each drained batch; see benchmarks/latency.py. Percentiles over "
    "`commands` (a prefix of the workload).",
    "many_instruments: the reference book is prefilled by ReferenceBook.restore from the fast "
    "book's snapshot, which is much faster than replaying the prefill through it.",
    "jit_cold_s / jit_cached_s: a fresh interpreter with an empty, then the same, NUMBA_CACHE_DIR, "
    "importing matching.fast and processing one command of each kind, numba's import excluded. "
    "The cold one runs while this process generates the workloads on the other core; the "
    "cached one runs alone. This process itself uses numba's usual cache.",
    "Shared 2-core machines are noisy: compare ratios, and read machine.load_average_* (other "
    "processes competing for the cores) and latency_us.*.involuntary_context_switches "
    "(preemptions of the spinning driver) before trusting a tail.",
    "many_instruments.prefill_memory: a fresh process that builds only the prefilled fast book "
    "(pool sized to the prefill); its peak includes the prefill's command rows, freed before "
    "rss_after_prefill_mb is read. peak_rss_mb at the top level is this whole benchmark "
    "process (all workloads are generated up front, and the reference book holds the "
    "many_instruments prefill too).",
    "Workloads are generated before any timing, with FastBook as the oracle that tells the "
    "generator which orders still rest; generation_* fields come from that pass.",
]


def run(
    names: list[str], sizes: Sizes, quick: bool, progress: Callable[[str], None]
) -> dict[str, Any]:
    result = harness.start(quick)
    with tempfile.TemporaryDirectory(prefix="cx-numba-cache-") as cache_dir:
        # The cold compile takes half a minute; generating the workloads (never timed) on
        # the other core meanwhile keeps --quick under a minute.
        progress("cold JIT compile in a fresh process; generating workloads meanwhile")
        sources = probes.matching_mtimes()
        cold = probes.start_probe(probes.JIT_PROBE, cache_dir)
        from benchmarks import latency
        from matching.fast import FastBook

        workloads, gen_s = {}, {}
        for name in names:
            t = time.perf_counter()
            workloads[name] = generate(name, sizes, FastBook)
            gen_s[name] = round(time.perf_counter() - t, 2)
        result["latency_driver_compile_s"] = round(latency.compile_driver(), 3)
        result |= probes.finish_jit_probe(cold, "cold")
        progress("cached JIT load in a fresh process")
        result |= probes.finish_jit_probe(probes.start_probe(probes.JIT_PROBE, cache_dir), "cached")
        # An edit to matching/ between the two probes makes the "cached" one compile again.
        result["jit_sources_changed_during_probe"] = probes.matching_mtimes() != sources
        result["workloads"] = {}
        for name in names:
            progress(f"{name}: measuring")
            w = workloads.pop(name)
            t = time.perf_counter()
            res = measure_workload(w, sizes, FastBook)
            res["generation_s"] = gen_s[name]
            res["measurement_s"] = round(time.perf_counter() - t, 2)
            del w
            gc.collect()
            if name == "many_instruments":
                progress("many_instruments: prefill memory in a fresh process")
                res["prefill_memory"] = probes.measure_prefill_memory(
                    cache_dir, sizes.books, sizes.per_book
                )
            result["workloads"][name] = res
    return harness.finish(result, notes=NOTES)


def print_table(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = harness.console(110)
    t = Table(title="Matching engine throughput (ops/s)")
    for col in (
        "workload",
        "run_batch",
        "process()",
        "single call",
        "reference",
        "speedup",
        "rejects",
        "events ok",
    ):
        t.add_column(col, justify="right" if col != "workload" else "left")
    for name, r in result["workloads"].items():
        t.add_row(
            name,
            f"{r['run_batch_ops_per_s']:,}",
            f"{r['kernel_ops_per_s']:,}",
            f"{r['single_call_ops_per_s']:,}",
            f"{r['reference_ops_per_s']:,}",
            f"{r['speedup_vs_reference']}x",
            f"{r['reject_share']:.2%}",
            str(r["events_match_reference"]),
        )
    console.print(t)
    t = Table(title="Open-loop latency per command (µs, from intended arrival)")
    for col in ("workload", "rate", "p50", "p99", "p99.9", "max", "mean batch", "commands"):
        t.add_column(col, justify="right" if col != "workload" else "left")
    for name, r in result["workloads"].items():
        for rate, s in r["latency_us"].items():
            t.add_row(
                name,
                rate,
                *(f"{s[k]:,.1f}" for k in ("p50", "p99", "p999", "max")),
                f"{s['mean_batch']}",
                f"{s['commands']:,}",
            )
    console.print(t)
    console.print(
        f"JIT cold {result['jit_cold_s']} s, cached {result['jit_cached_s']} s; "
        f"latency driver compile {result['latency_driver_compile_s']} s; "
        f"peak RSS {result['peak_rss_mb']} MB"
    )
    mem = result["workloads"].get("many_instruments", {}).get("prefill_memory")
    if mem and "error" not in mem:
        console.print(
            f"many_instruments prefill of {mem['orders']:,} orders in a fresh process: RSS "
            f"{mem['rss_before_mb']} -> {mem['rss_after_prefill_mb']} MB, peak "
            f"{mem['peak_rss_mb']} MB, book arrays {mem['book_arrays_mb']} MB"
        )


def _from_args(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    names = [args.workload] if args.workload else list(WORKLOADS)
    return run(names, QUICK if args.quick else FULL, args.quick, progress)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", choices=WORKLOADS, help="run only this workload")


def main(argv: list[str] | None = None) -> int:
    return harness.main(
        "matching", _from_args, print_table, description=__doc__, arguments=_arguments, argv=argv
    )


if __name__ == "__main__":
    sys.exit(main())
