"""Ledger benchmark: fills from a real engine projected into Postgres, bulk vs row by row.

    python -m benchmarks.settlement_ledger [--json] [--quick]

``benchmarks.settlement`` merges ``run(quick)`` into its report. Everything is real: an
``Engine`` (in a temporary directory) produces the fills and writes its event log; the
``LedgerProjector`` reads that log and writes Postgres (``CX_DATABASE_URL``, else the local
server, else an embedded one), into a database created for the run and dropped after it.

- ``ledger_fills_per_s``: the whole backlog of fills projected by the projector's bulk path
  (binary COPY built by numpy, set-based updates), one transaction per batch of event rows.
- ``ledger_row_inserts_fills_per_s``: the first fills of the same event log written with one
  statement per row (``RowWriter``), into another database, in the same run; the bulk path
  is run on that same prefix too, and the two ledgers are checked to be identical.
- ``ledger_lag_p99_ms``: the engine submits a batch every 10 ms (about 10k fills/s) in a
  thread while the projector follows the event log; for every fill, the time from its
  batch's ``Engine.submit`` returning to the commit of the transaction holding it.

A fill is a trade (two ORDER_FILLED events, one trade row, three ledger entries). Order
flow: each round, providers post a few small asks at and just above the reference price
and one buyer sweeps them with a single buy: every round trades, as a busy market does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

TARGET_FILLS_PER_S = 100_000
BUYERS = (1, 2, 3, 4)
PROVIDERS = tuple(range(5, 13))
INSTRUMENTS = (1, 2, 3, 4)
REF, TICK = 2_000_000, 1_000
ASKS_PER_ROUND = 8
LAG_FILLS_PER_S = 10_000
LAG_TICK_S = 0.01


@dataclass(frozen=True)
class Sizes:
    fills: int  # the backlog projected in bulk
    row_fills: int  # the prefix written row by row (and in bulk, to compare)
    lag_seconds: float
    repeats: int  # bulk runs, best kept


QUICK = Sizes(fills=200_000, row_fills=4_000, lag_seconds=3.0, repeats=2)
FULL = Sizes(fills=500_000, row_fills=20_000, lag_seconds=6.0, repeats=3)
WARMUP = Sizes(fills=3_000, row_fills=200, lag_seconds=0.3, repeats=1)


# -- the order flow --------------------------------------------------------------------------------


def setup_rows() -> np.ndarray:
    from exchange import commands as C
    from exchange.ids import AccountId, AssetId, InstrumentId
    from risk.codes import Role

    cmds: list[C.Command] = [
        C.ListInstrument(
            instrument=InstrumentId(i),
            tick_size=TICK,
            lot_size=1,
            min_price=TICK,
            max_price=1_000_000 * TICK,
            min_qty=1,
            max_qty=100_000,
            reference_price=REF,
        )
        for i in INSTRUMENTS
    ]
    cmds += [C.OpenAccount(account=AccountId(a), role=Role.MARKET_MAKER) for a in BUYERS]
    cmds += [C.OpenAccount(account=AccountId(a), role=Role.PROVIDER) for a in PROVIDERS]
    cmds += [
        C.Deposit(account=AccountId(a), asset=AssetId(0), amount=10**16, ref=a) for a in BUYERS
    ]
    cmds += [
        C.RegisterCapacity(account=AccountId(a), instrument=InstrumentId(i), gpu_hours=10**12)
        for a in PROVIDERS
        for i in INSTRUMENTS
    ]
    return C.rows(cmds)


def round_rows(rounds: int, seed: int, first_order_id: int = 1) -> np.ndarray:
    """``rounds`` x (ASKS_PER_ROUND asks, then one buy that takes them all)."""
    from matching import codes as mc

    rng = np.random.default_rng(seed)
    per = ASKS_PER_ROUND + 1
    rows = np.zeros((rounds * per, mc.N_COMMAND_FIELDS), np.int64)
    rows[:, mc.C_KIND] = 1  # NEW_ORDER
    rows[:, mc.C_ORDER_TYPE] = 1  # LIMIT
    rows[:, mc.C_TIF] = 1  # GTC
    rows[:, mc.C_ORDER_ID] = first_order_id + np.arange(len(rows))
    instrument = np.repeat(rng.choice(INSTRUMENTS, rounds), per)
    rows[:, mc.C_INSTRUMENT] = instrument
    asks = rows.reshape(rounds, per, -1)[:, :ASKS_PER_ROUND]
    buys = rows.reshape(rounds, per, -1)[:, ASKS_PER_ROUND]
    qty = rng.integers(1, 11, (rounds, ASKS_PER_ROUND))
    asks[:, :, mc.C_ACCOUNT] = rng.choice(PROVIDERS, (rounds, ASKS_PER_ROUND))
    asks[:, :, mc.C_SIDE] = 2
    asks[:, :, mc.C_PRICE] = REF + rng.integers(0, 4, (rounds, ASKS_PER_ROUND)) * TICK
    asks[:, :, mc.C_QTY] = qty
    buys[:, mc.C_ACCOUNT] = rng.choice(BUYERS, rounds)
    buys[:, mc.C_SIDE] = 1
    buys[:, mc.C_PRICE] = REF + 3 * TICK
    buys[:, mc.C_QTY] = qty.sum(axis=1)
    return rows


def produce(root: Path, fills: int, batch_rounds: int = 512) -> dict[str, Any]:
    """An engine under ``root`` with ``fills`` trades in its event log (closed on return)."""
    from exchange.engine import Engine

    rounds = -(-fills // ASKS_PER_ROUND)
    rows = round_rows(rounds, seed=11)
    per = (ASKS_PER_ROUND + 1) * batch_rounds
    t = time.perf_counter()
    with Engine.open(root) as engine:
        engine.submit(setup_rows())
        for a in range(0, len(rows), per):
            engine.submit(rows[a : a + per])
        trades = int(engine.core.book.snapshot().trade_id)
        last_seq = int(engine.last_seq)
    return {
        "fills": trades,
        "commands": len(rows),
        "last_seq": last_seq,
        "engine_s": round(time.perf_counter() - t, 2),
    }


# -- the measurements ------------------------------------------------------------------------------


class Prefix:
    """The event log up to (and including) command ``last_seq``."""

    def __init__(self, log, last_seq: int) -> None:
        self.log, self.last_seq = log, last_seq

    def read_after(self, seq: int, max_rows: int = 65_536) -> np.ndarray:
        from matching import codes as mc

        rows = self.log.read_after(seq, max_rows)
        return rows[rows[:, mc.E_SEQ] <= self.last_seq] if len(rows) else rows


async def _project(source, url: str, writer=None) -> dict[str, Any]:
    from settlement.projector import LedgerProjector

    projector = LedgerProjector(source, url, writer=writer)
    await projector.connect()  # connection set-up is not part of the throughput
    gc.collect()
    t = time.perf_counter()
    await projector.catch_up()
    seconds = time.perf_counter() - t
    s = projector.stats
    return {
        "seconds": round(seconds, 3),
        "fills": s.fills,
        "fills_per_s": round(s.fills / seconds),
        "events_per_s": round(s.events / seconds),
        "rows_written_per_s": round(s.rows / seconds),
        "batches": s.batches,
    }


def _fill_seq(events_dir: Path, fills: int) -> int:
    """The command of the ``fills``-th trade in the log."""
    from exchange.codes import EventKind
    from exchange.event_log import EventLog
    from matching import codes as mc

    seen, seq = 0, 0
    with EventLog.open(events_dir) as log:
        while len(rows := log.read_after(seq, 1 << 20)):
            filled = rows[rows[:, mc.E_KIND] == EventKind.ORDER_FILLED, mc.E_SEQ]
            if seen + len(filled) >= 2 * fills:
                return int(filled[2 * fills - seen - 1])
            seen += len(filled)
            seq = int(rows[-1, mc.E_SEQ])
    return seq


async def measure_backlog(events_dir: Path, server: str, sizes: Sizes) -> dict[str, Any]:
    from exchange.event_log import EventLog
    from settlement import db
    from settlement.ledger_writer import RowWriter
    from settlement.migrate import migrate

    out: dict[str, Any] = {}
    with EventLog.open(events_dir) as log:
        bulk = []
        for _ in range(sizes.repeats):
            url = await db.create_database(server, "cx_bench")
            try:
                await migrate(url)
                bulk.append(await _project(log, url))
            finally:
                await db.drop_database(url)
        best = max(bulk, key=lambda r: r["fills_per_s"])
        out["bulk"] = best | {"runs_fills_per_s": [r["fills_per_s"] for r in bulk]}

        prefix = Prefix(log, _fill_seq(events_dir, sizes.row_fills))
        row_url = await db.create_database(server, "cx_bench")
        bulk_url = await db.create_database(server, "cx_bench")
        try:
            await migrate(row_url)
            await migrate(bulk_url)
            out["row_inserts"] = await _project(prefix, row_url, RowWriter())
            out["bulk_same_prefix"] = await _project(prefix, bulk_url)
            out["row_and_bulk_ledgers_identical"] = await _same_tables(row_url, bulk_url)
        finally:
            await db.drop_database(row_url)
            await db.drop_database(bulk_url)
    return out


async def _same_tables(a: str, b: str) -> bool:
    import asyncpg

    tables = {
        "orders": "order_id, accepted_seq",
        "trades": "trade_id",
        "ledger_entries": "movement_id, leg",
        "balances": "ledger_kind, account_id, instrument_id, asset_id",
        "deposits": "seq",
        "accounts": "account_id",
        "instruments": "instrument_id",
    }
    dumps = []
    for url in (a, b):
        conn = await asyncpg.connect(url)
        try:
            dumps.append(
                [await conn.fetch(f"SELECT * FROM {t} ORDER BY {k}") for t, k in tables.items()]
            )
        finally:
            await conn.close()
    return dumps[0] == dumps[1]


async def measure_lag(root: Path, server: str, seconds: float) -> dict[str, Any]:
    """The engine at ~LAG_FILLS_PER_S in a thread, the projector following its log."""
    from exchange.codes import EventKind
    from exchange.engine import Engine
    from exchange.event_log import EventLog
    from matching import codes as mc
    from settlement import db
    from settlement.migrate import migrate
    from settlement.projector import LedgerProjector

    rounds_per_tick = max(1, round(LAG_FILLS_PER_S * LAG_TICK_S / ASKS_PER_ROUND))
    ticks = int(seconds / LAG_TICK_S)
    per = rounds_per_tick * (ASKS_PER_ROUND + 1)
    rows = round_rows(rounds_per_tick * ticks, seed=12)
    submitted: list[tuple[int, float, int]] = []  # (last seq, submit returned, fills)
    committed: list[tuple[int, float]] = []  # (cursor, commit time)
    url = await db.create_database(server, "cx_bench")
    try:
        await migrate(url)
        engine = Engine.open(root)
        engine.submit(setup_rows())
        log = EventLog.open(engine.events_dir)
        projector = LedgerProjector(
            log,
            url,
            poll_interval=0.002,
            on_commit=lambda batch, at: committed.append((batch.last_seq, at)),
        )
        await projector.catch_up()  # setup projected; the projector keeps its connection
        stop = asyncio.Event()
        follower = asyncio.create_task(projector.run(stop))

        def producer() -> None:
            start = time.perf_counter()
            for k in range(ticks):
                time.sleep(max(0.0, start + k * LAG_TICK_S - time.perf_counter()))
                events = engine.submit(rows[k * per : (k + 1) * per])
                done = time.perf_counter()
                kinds = events[:, mc.E_KIND]
                fills = int(np.count_nonzero(kinds == EventKind.ORDER_FILLED)) // 2
                submitted.append((int(engine.last_seq), done, fills))

        thread = threading.Thread(target=producer, name="cx-bench-producer")
        started = time.perf_counter()
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
        produced_s = time.perf_counter() - started
        last = int(engine.last_seq)
        deadline = time.perf_counter() + 60
        while projector.stats.cursor < last and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        stop.set()
        await follower
        engine.close()
        log.close()
    finally:
        await db.drop_database(url)
    return _lag_figures(submitted, committed, produced_s)


def _lag_figures(
    submitted: list[tuple[int, float, int]], committed: list[tuple[int, float]], seconds: float
) -> dict[str, Any]:
    cursors = np.array([c for c, _ in committed], np.int64)
    times = np.array([t for _, t in committed])
    lat, weight = [], []
    for seq, at, fills in submitted:
        i = int(np.searchsorted(cursors, seq, side="left"))  # first commit covering seq
        if i < len(cursors) and fills:
            lat.append(times[i] - at)
            weight.append(fills)
    lat_ms = np.repeat(np.array(lat) * 1e3, weight)
    fills = int(sum(f for _, _, f in submitted))
    return {
        "fills": fills,
        "fills_per_s_produced": round(fills / seconds),
        "engine_batches": len(submitted),
        "projector_commits": len(committed),
        "lag_p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "lag_p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
        "lag_max_ms": round(float(lat_ms.max()), 2),
        "fills_measured": len(lat_ms),
    }


def _server_kind(server: str) -> str:
    from settlement import db

    if os.environ.get(db.ENV_URL):
        return "CX_DATABASE_URL"
    return "embedded (pgserver)" if "host=/" in server else "local 127.0.0.1:5432"


NOTES = [
    "ledger_fills_per_s: LedgerProjector.catch_up over the whole event log (fills = trades), "
    "connection already open, default batches of 65,536 event rows, each batch one "
    "transaction (the next batch is read, mapped and encoded while Postgres writes): binary "
    "COPY of trades, ledger entries (3 per fill), new orders; UPDATE ... FROM unnest for orders "
    "accepted in an earlier batch; balances upsert; cursor update. Timed from the first read "
    "to the last commit, best of `repeats` runs into fresh databases.",
    "ledger_row_inserts_fills_per_s: the first row_fills fills of the same log, RowWriter: "
    "one statement per trade, order, balance, transfer, and per movement for ledger entries "
    "(their balance is checked per statement). ledger_speedup_vs_row_inserts = "
    "ledger_fills_per_s / ledger_row_inserts_fills_per_s; bulk_same_prefix is the bulk path on "
    "that same prefix (one batch, so per-batch costs weigh more).",
    "ledger_lag_p99_ms: an engine thread submits a batch every 10 ms (about 10k fills/s) while "
    "the projector (poll interval 2 ms) follows the on-disk event log; per fill, from its "
    "batch's Engine.submit returning to the commit of the projector transaction holding it.",
    "Postgres: see ledger_postgres; synchronous_commit as the server has it (on by default). "
    "Shared 2-core machine: the projector, Postgres and the engine share the cores; compare "
    "the ratio and read ledger_load_average_at_end.",
]


def run(quick: bool = False, *, sizes: Sizes | None = None, warmup: bool = True) -> dict[str, Any]:
    """The ledger figures as one JSON-ready dict (``sizes``/``warmup`` for tests)."""
    from settlement import db

    sizes = sizes or (QUICK if quick else FULL)
    server = db.resolve_url(url=os.environ.get(db.ENV_URL))  # the test server, if set
    result: dict[str, Any] = {"ledger_postgres": _server_kind(server)}
    with tempfile.TemporaryDirectory(prefix="cx-bench-ledger-") as tmp:
        root = Path(tmp)
        if warmup:
            t = time.perf_counter()
            produce(root / "warm", WARMUP.fills)
            asyncio.run(measure_backlog(root / "warm" / "events", server, WARMUP))
            result["ledger_warmup_s"] = round(time.perf_counter() - t, 2)
        result["ledger_workload"] = produce(root / "engine", sizes.fills)
        backlog = asyncio.run(measure_backlog(root / "engine" / "events", server, sizes))
        lag = asyncio.run(measure_lag(root / "lag", server, sizes.lag_seconds))
    bulk, rows = backlog["bulk"], backlog["row_inserts"]
    result |= {
        "ledger_fills_per_s": bulk["fills_per_s"],
        "ledger_row_inserts_fills_per_s": rows["fills_per_s"],
        "ledger_speedup_vs_row_inserts": harness.ratio(bulk["fills_per_s"], rows["fills_per_s"], 1),
        "ledger_lag_p99_ms": lag["lag_p99_ms"],
        "ledger_lag_p50_ms": lag["lag_p50_ms"],
        "ledger_bulk": bulk,
        "ledger_row_inserts": rows,
        "ledger_bulk_same_prefix": backlog["bulk_same_prefix"],
        "ledger_row_and_bulk_identical": backlog["row_and_bulk_ledgers_identical"],
        "ledger_lag": lag,
        "ledger_target": {
            "metric": "ledger_fills_per_s",
            **harness.verdict((">=", TARGET_FILLS_PER_S), bulk["fills_per_s"]),
        },
        "ledger_load_average_at_end": harness.load_average(),
        "ledger_notes": NOTES,
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    harness.print_measures(
        f"Ledger projection ({result['ledger_workload']['fills']:,} fills)",
        [
            ("bulk projector, fills/s", f"{result['ledger_fills_per_s']:,}"),
            ("row-at-a-time, fills/s", f"{result['ledger_row_inserts_fills_per_s']:,}"),
            ("speedup", f"{result['ledger_speedup_vs_row_inserts']}x"),
            ("same ledger both ways", str(result["ledger_row_and_bulk_identical"])),
            (
                "lag p50 / p99 at ~10k fills/s, ms",
                f"{result['ledger_lag_p50_ms']} / {result['ledger_lag_p99_ms']}",
            ),
            ("target >= 100k fills/s met", "yes" if result["ledger_target"]["met"] else "NO"),
            ("postgres", result["ledger_postgres"]),
        ],
    )


def _from_args(args: argparse.Namespace, _progress: Callable[[str], None]) -> dict[str, Any]:
    return run(args.quick)


def main(argv: list[str] | None = None) -> int:
    return harness.main(
        "settlement_ledger", _from_args, print_table, description=__doc__, argv=argv
    )


if __name__ == "__main__":
    sys.exit(main())
