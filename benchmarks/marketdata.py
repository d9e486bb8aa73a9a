"""Market data benchmark: L2 updates built from engine events and published to Redis.

    python -m benchmarks.marketdata [--json] [--quick]

What it measures (DESIGN "The flow of one order": engine events -> market data -> Redis):

- ``updates_per_s``: book updates (one per command and instrument whose visible levels
  moved, each with its sequence number and Kraken checksum) built by ``MarketDataFeed``
  from engine event batches and published to Redis with one atomic script call per
  batch, with trades, tickers, candles and snapshots; best of ``repeats`` runs. The
  events come from a real engine run beforehand (untimed), so the engine's own time is
  not counted.
- ``unbatched_updates_per_s``: the baseline, in the same run: the same feed publishing a
  prefix of the same events one awaited command and one update per stream entry at a
  time. ``batched_vs_unbatched`` is the ratio.
- ``build_only_updates_per_s``: the builder alone, no Redis: where the time goes.
- ``publish_lag_p50_ms`` / ``publish_lag_p99_ms``: a live engine paced at ``lag_rate``
  book updates per second (open loop, one batch per millisecond tick); for every update,
  the time from the engine returning the batch's events to a subscriber in another
  process receiving it from the Redis stream (``XREAD BLOCK``), on the shared monotonic
  clock.

The redis server is the one ``feeds.redis_conn.resolve_url`` picks (``CX_REDIS_URL``, the
local 6379, else embedded); every key lives under a prefix of this run, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from redis.asyncio import Redis

from benchmarks import engine_workload as wl
from benchmarks import harness
from exchange.engine import Engine, EngineConfig
from feeds.marketdata.builder import MarketDataBuilder
from feeds.marketdata.feed import MarketDataFeed
from feeds.marketdata.keys import Keys
from feeds.redis_conn import resolve_url

TARGETS: dict[str, harness.Target] = {
    "updates_per_s": (">=", 50_000),
    "publish_lag_p99_ms": ("<=", 5.0),
}


@dataclass(frozen=True)
class Sizes:
    commands: int  # order flow for the throughput runs
    instruments: int
    accounts: int
    batch: int  # commands per Engine.submit
    baseline_commands: int  # prefix published one update at a time
    repeats: int  # throughput runs, best kept
    lag_seconds: float  # paced run
    lag_rate: int  # book updates per second in the paced run
    lag_prefill: int  # commands run before the paced part, so books are not empty


QUICK = Sizes(100_000, 16, 200, 1_024, 10_000, 2, 5.0, 5_000, 20_000)
FULL = Sizes(400_000, 16, 200, 1_024, 40_000, 3, 20.0, 5_000, 50_000)
TINY = Sizes(3_000, 4, 20, 256, 500, 1, 0.5, 2_000, 500)  # for the smoke test

# Runs in another process: read the book streams from the given ids and record, for each
# update, when it arrived. Stops when stdin closes; prints [[instrument, seq, t_ns], ...].
SUBSCRIBER = """
import sys, threading, time, orjson, redis
url, streams = sys.argv[1], orjson.loads(sys.argv[2])
client = redis.Redis.from_url(url)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
got = []
print("ready", flush=True)
while not stop.is_set():
    reply = client.xread(streams, block=50, count=10_000)
    now = time.monotonic_ns()
    for key, entries in reply:
        for entry_id, fields in entries:
            streams[key.decode()] = entry_id.decode()
            got += [(u["instrument"], u["seq"], now) for u in orjson.loads(fields[b"u"])]
sys.stdout.write(orjson.dumps(got).decode())
"""


@dataclass
class Recorded:
    """Engine output, batch by batch, produced before anything is timed."""

    batches: list[tuple[np.ndarray, int]]  # (event rows, batch timestamp)
    commands: int
    events: int


def record_flow(sizes: Sizes, flow: np.ndarray, setup: np.ndarray) -> Recorded:
    with tempfile.TemporaryDirectory(prefix="cx-bench-md-") as tmp:
        engine = Engine.open(Path(tmp), EngineConfig(snapshot_every=1 << 62))
        batches = [(engine.submit(setup), engine.sequencer.last_ts)]
        for a in range(0, len(flow), sizes.batch):
            batches.append((engine.submit(flow[a : a + sizes.batch]), engine.sequencer.last_ts))
        engine.close()
    return Recorded(batches, len(flow), sum(len(e) for e, _ in batches))


async def _clean(redis: Redis, keys: Keys) -> None:
    batch = [k async for k in redis.scan_iter(match=keys.pattern, count=1000)]
    for i in range(0, len(batch), 1000):
        await redis.delete(*batch[i : i + 1000])


async def publish_run(
    redis: Redis, prefix: str, batches: list[tuple[np.ndarray, int]], *, batched: bool
) -> dict[str, Any]:
    """Every batch through a fresh feed; seconds from the first batch to the last reply."""
    keys = Keys(f"{prefix}:{'batched' if batched else 'unbatched'}:{uuid.uuid4().hex[:6]}")
    feed = MarketDataFeed(redis, keys=keys, batched=batched)
    await feed.start()
    changes = trades = 0
    gc.collect()
    gc.freeze()  # what a long-running feed process does after start-up (see notes)
    try:
        t = time.perf_counter()
        for events, ts in batches:
            data = await feed.process(events, ts=ts, wait=False)
            trades += len(data.trades)
            changes += sum(len(u.bids) + len(u.asks) for u in data.updates)
        await feed.flush()
        seconds = time.perf_counter() - t
    finally:
        gc.unfreeze()
    await _clean(redis, keys)
    updates = feed.updates_published
    return {
        "updates": updates,
        "seconds": round(seconds, 3),
        "updates_per_s": round(updates / seconds),
        "level_changes_per_update": round(changes / max(updates, 1), 3),
        "trades": trades,
    }


def build_only(batches: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    builder = MarketDataBuilder()
    updates = 0
    gc.collect()
    gc.freeze()
    try:
        t = time.perf_counter()
        for events, ts in batches:
            updates += len(builder.apply(events, ts=ts).updates)
        seconds = time.perf_counter() - t
    finally:
        gc.unfreeze()
    return {"updates": updates, "updates_per_s": round(updates / seconds)}


async def measure_throughput(
    redis: Redis, prefix: str, sizes: Sizes, rec: Recorded, progress: Any
) -> dict[str, Any]:
    runs = []
    for i in range(sizes.repeats):
        progress(f"throughput run {i + 1}/{sizes.repeats}: batched pipeline")
        runs.append(await publish_run(redis, prefix, rec.batches, batched=True))
    best = max(runs, key=lambda r: r["updates_per_s"])
    n_base = 1 + -(-sizes.baseline_commands // sizes.batch)  # setup batch + whole batches
    progress(f"baseline: unbatched publish of the first {sizes.baseline_commands:,} commands")
    base = await publish_run(redis, prefix, rec.batches[:n_base], batched=False)
    progress("builder alone")
    build = build_only(rec.batches)
    return {
        "updates_per_s": best["updates_per_s"],
        "updates_per_s_runs": [r["updates_per_s"] for r in runs],
        "updates": best["updates"],
        "throughput_seconds": best["seconds"],
        "level_changes_per_update": best["level_changes_per_update"],
        "trades": best["trades"],
        "events": rec.events,
        "commands": rec.commands,
        "updates_per_command": round(best["updates"] / rec.commands, 3),
        "unbatched_updates_per_s": base["updates_per_s"],
        "unbatched_updates": base["updates"],
        "batched_vs_unbatched": harness.ratio(best["updates_per_s"], base["updates_per_s"], 2),
        "build_only_updates_per_s": build["updates_per_s"],
    }


def _start_subscriber(url: str, streams: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, url, orjson.dumps(streams).decode()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"subscriber failed: {proc.stderr.read() if proc.stderr else ''}")
    return proc


async def measure_lag(
    redis: Redis,
    url: str,
    prefix: str,
    sizes: Sizes,
    setup: np.ndarray,
    flow: np.ndarray,
    updates_per_command: float,
    progress: Any,
) -> dict[str, Any]:
    keys = Keys(f"{prefix}:lag")
    rate_commands = sizes.lag_rate / max(updates_per_command, 0.05)
    with tempfile.TemporaryDirectory(prefix="cx-bench-md-lag-") as tmp:
        engine = Engine.open(Path(tmp), EngineConfig(snapshot_every=1 << 62))
        feed = MarketDataFeed(redis, keys=keys)
        await feed.start()
        await feed.process(engine.submit(setup), ts=engine.sequencer.last_ts)
        pre = flow[: sizes.lag_prefill]
        for a in range(0, len(pre), sizes.batch):
            await feed.process(engine.submit(pre[a : a + sizes.batch]), ts=engine.sequencer.last_ts)
        paced = flow[sizes.lag_prefill :]
        streams = {keys.book(i): f"{book.seq}-0" for i, book in feed.builder.books.items()}
        proc = _start_subscriber(url, streams)
        try:
            progress(f"lag: {sizes.lag_seconds} s paced at {sizes.lag_rate:,} updates/s")
            sent_at, sent, seconds = await _paced(engine, feed, paced, sizes, rate_commands)
            await asyncio.sleep(0.2)  # let the subscriber read the tail
            out, err = proc.communicate(input="", timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.close()
    await _clean(redis, keys)
    received = {(i, s): t for i, s, t in orjson.loads(out)} if out else {}
    lags = (
        np.array([received[k] - t for k, t in sent_at.items() if k in received], dtype=np.float64)
        / 1e6
    )
    missing = sum(1 for k in sent_at if k not in received)
    if not len(lags):
        return {"publish_lag_error": err.strip().splitlines()[-3:]}
    return {
        "publish_lag_p50_ms": round(float(np.percentile(lags, 50)), 3),
        "publish_lag_p99_ms": round(float(np.percentile(lags, 99)), 3),
        "publish_lag_p999_ms": round(float(np.percentile(lags, 99.9)), 3),
        "publish_lag_max_ms": round(float(lags.max()), 3),
        "lag_updates": len(lags),
        "lag_updates_missing": missing,
        "lag_achieved_updates_per_s": round(len(sent_at) / seconds),
        "lag_commands": sent,
    }


async def _paced(
    engine: Engine, feed: MarketDataFeed, paced: np.ndarray, sizes: Sizes, rate_commands: float
) -> tuple[dict[tuple[int, int], int], int, float]:
    """Open loop: each 1 ms tick submits the commands due by then and publishes their
    events; returns when each update's events left the engine, commands sent, seconds."""
    sent_at: dict[tuple[int, int], int] = {}
    gc.collect()
    gc.freeze()
    try:
        start = next_tick = time.monotonic()
        sent = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= sizes.lag_seconds or sent >= len(paced):
                break
            due = min(int(elapsed * rate_commands) + 1, len(paced)) - sent
            if due > 0:
                events = engine.submit(paced[sent : sent + due])
                t_event = time.monotonic_ns()
                sent += due
                data = await feed.process(events, ts=engine.sequencer.last_ts)
                for u in data.updates:
                    sent_at[(u.instrument, u.seq)] = t_event
            next_tick += 0.001
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        return sent_at, sent, time.monotonic() - start
    finally:
        gc.unfreeze()


NOTES = [
    "Workload: benchmarks/engine_workload.py order flow (passive GTC orders resting 10-300 "
    "ticks from the reference and later replaced or cancelled, zone orders that trade or "
    "rest, IOCs) on `instruments` instruments, run through a real Engine in "
    "`batch`-command batches before timing; the feed gets each batch's event rows and the "
    "batch timestamp (no command rows: this flow has no icebergs).",
    "An update is one command's changes to one instrument's visible levels, with its "
    "per-instrument sequence number and Kraken CRC32 of the top 10 levels each side. The "
    "batched publish writes, per engine batch, one stream entry per instrument holding its "
    "updates (id = last seq), trades, tickers, candle history and any due snapshots (after 200 "
    "updates, or as many updates as the book has levels if more), all applied by one Lua "
    "script call (atomic); with wait=False the next batch is built while Redis applies it.",
    "unbatched_updates_per_s: the same feed awaiting every Redis command separately, one "
    "update per stream entry, over the first `baseline_commands` commands of the same events.",
    "gc.freeze() is called before each timed part, as a long-running feed process would after "
    "start-up: this process also holds the engine's compiled kernels, and full collections "
    "scanning them would otherwise be measured.",
    "Lag: open loop, one engine batch per 1 ms tick sized to `lag_rate` updates/s; "
    "t_event = when Engine.submit returned the batch's events; the subscriber is a separate "
    "process doing XREAD BLOCK on every instrument's book stream; both sides read "
    "CLOCK_MONOTONIC.",
    "Shared 2-core machines are noisy: compare ratios and read machine.load_average_*.",
]


async def run_async(sizes: Sizes, quick: bool, progress: Any) -> dict[str, Any]:
    result = harness.start(quick)
    url = resolve_url(url=os.environ.get("CX_REDIS_URL"))  # the test server, if one is set
    result["redis"] = "configured" if os.environ.get("CX_REDIS_URL") else url.split(":")[0]
    prefix = f"cx-bench:{uuid.uuid4().hex[:12]}"
    progress("recording engine events (untimed)")
    setup = wl.setup_rows(sizes.instruments, sizes.accounts)
    flow = wl.flow(sizes.commands, instruments=sizes.instruments, accounts=sizes.accounts)
    rec = record_flow(sizes, flow.commands, setup)
    redis = Redis.from_url(url)
    try:
        result |= await measure_throughput(redis, prefix, sizes, rec, progress)
        lag_flow = wl.flow(
            sizes.lag_prefill + int(sizes.lag_seconds * sizes.lag_rate * 3) + 1_000,
            instruments=sizes.instruments,
            accounts=sizes.accounts,
            seed=8,
        )
        result |= await measure_lag(
            redis,
            url,
            prefix,
            sizes,
            setup,
            lag_flow.commands,
            result["updates_per_command"],
            progress,
        )
    finally:
        await _clean(redis, Keys(prefix))
        await redis.aclose()
    return harness.finish(result, targets=TARGETS, notes=NOTES)


def run(sizes: Sizes, quick: bool, progress: Any) -> dict[str, Any]:
    return asyncio.run(run_async(sizes, quick, progress))


def print_table(result: dict[str, Any]) -> None:
    keys = (
        "updates_per_s",
        "unbatched_updates_per_s",
        "batched_vs_unbatched",
        "build_only_updates_per_s",
        "publish_lag_p50_ms",
        "publish_lag_p99_ms",
        "publish_lag_max_ms",
        "lag_achieved_updates_per_s",
    )
    harness.print_measures("Market data", [(key, harness.fmt(result.get(key))) for key in keys])


def _from_args(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    return run(QUICK if args.quick else FULL, args.quick, progress)


def main(argv: list[str] | None = None) -> int:
    return harness.main("marketdata", _from_args, print_table, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
