"""Engine benchmark: commands end to end through ``Engine.submit``, replay, snapshots.

    python -m benchmarks.engine [--json] [--quick]

Where ``benchmarks.matching`` measures the order book alone, this measures what a shard
does with each command (DESIGN "The flow of one order"): the sequencer stamps a batch,
the journal appends it (default group-commit fsync policy, in a temporary directory),
the exchange core runs risk and matching, and one subscriber encodes every batch of events
to bytes. Beside it, in the same process (these 2-core machines are shared and noisy, so
ratios are what compare across runs):

- the same commands through ``ExchangeCore.process`` with the same encoding and no
  journal, the baseline that ``journal_cost_ratio`` divides by;
- ``exchange.engine.replay`` of the journal just written, checked to reproduce the live
  run's event stream and state hashes exactly;
- a core holding a million resting orders: how long ``Engine.snapshot`` takes, how big
  the file is, and how long ``Engine.open`` takes to recover from it.

Command rows are generated with numpy before anything is timed (``engine_workload``);
listing, accounts, deposits and capacity are set up untimed, and every compiled path is
loaded on a small engine first, so numba's compile or cache load is never timed either.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import engine_workload as wl
from benchmarks import harness, probes
from exchange.codes import EventKind, RejectCode
from exchange.core import ExchangeCore
from exchange.engine import Engine, EngineConfig, replay
from exchange.journal import Journal
from exchange.snapshots import newest_valid
from matching import codes as mc
from matching.fast import FastBook
from matching.spec import InstrumentSpec

SETUP_BATCH = 65_536  # rows per submit while setting up (untimed)
NO_AUTO_SNAPSHOT = 1 << 62  # snapshot_every: the timed runs take no snapshot mid-flow

TARGETS: dict[str, harness.Target] = {
    "commands_per_s": (">=", 1_000_000),
    "replay_commands_per_s": (">=", 2_000_000),
    "recovery_s": ("<=", 2.0),
}


@dataclass(frozen=True)
class Sizes:
    """How much each part runs: --quick trades precision for a run of well under a minute."""

    commands: int  # order flow through each timed run
    instruments: int
    accounts: int
    batch: int  # commands per Engine.submit
    resting_orders: int  # in the core that is snapshotted and recovered
    repeats: int  # runs of the no-hash engine and of the baseline, best kept


QUICK = Sizes(
    commands=500_000,
    instruments=100,
    accounts=1_000,
    batch=4_096,
    resting_orders=100_000,
    repeats=1,
)
FULL = Sizes(
    commands=3_000_000,
    instruments=100,
    accounts=1_000,
    batch=4_096,
    resting_orders=1_000_000,
    repeats=2,
)
WARMUP = Sizes(  # every compiled path, on a tiny engine, before anything is timed
    commands=20_000,
    instruments=4,
    accounts=20,
    batch=4_096,
    resting_orders=5_000,
    repeats=1,
)


class EventSink:
    """The subscriber: encodes each batch of events to bytes, as a feed would, and counts.

    With ``tally`` it also counts event kinds and reject reasons (outside the headline
    run: it costs a pass over every batch).
    """

    def __init__(self, tally: bool = False) -> None:
        self.events = 0
        self.bytes = 0
        self.kinds: np.ndarray | None = np.zeros(128, np.int64) if tally else None
        self.rejects: dict[int, int] = {}

    def __call__(self, events: np.ndarray) -> None:
        encoded = events.tobytes()
        self.events += len(events)
        self.bytes += len(encoded)
        if self.kinds is not None:
            kinds = events[:, mc.E_KIND]
            self.kinds += np.bincount(kinds, minlength=len(self.kinds))
            refused = (kinds == EventKind.ORDER_REJECTED) | (kinds == EventKind.COMMAND_REJECTED)
            for reason in events[refused, mc.E_REASON].tolist():
                self.rejects[reason] = self.rejects.get(reason, 0) + 1

    def summary(self, commands: int) -> dict[str, Any]:
        """Event counts by kind, fills, reject and self-trade shares of ``commands``."""
        assert self.kinds is not None
        by_kind = {EventKind(k).name: int(v) for k, v in enumerate(self.kinds) if v}
        return {
            "events_by_kind": by_kind,
            "events_per_command": round(self.events / commands, 3),
            "trades": by_kind.get("ORDER_FILLED", 0) // 2,
            "reject_share": round(sum(self.rejects.values()) / commands, 5),
            "rejects_by_reason": {RejectCode(k).name: v for k, v in self.rejects.items()},
        }


class StageTimer:
    """Wraps bound methods of one engine instance to add up the seconds spent in each.

    Instance attributes shadow the class's methods, so ``Engine.submit`` calls the wrapped
    ones without any change to the engine; the cost is two clock reads per batch.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, obj: object, method: str, stage: str) -> None:
        inner = getattr(obj, method)
        self.seconds[stage] = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t

        setattr(obj, method, timed)


def _config() -> EngineConfig:
    return EngineConfig(snapshot_every=NO_AUTO_SNAPSHOT)


def _setup_engine(engine: Engine, setup: np.ndarray) -> None:
    for a in range(0, len(setup), SETUP_BATCH):
        engine.submit(setup[a : a + SETUP_BATCH])


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run_engine(
    sizes: Sizes,
    setup: np.ndarray,
    flow: np.ndarray,
    *,
    hashed: bool,
    after: Callable[[Path, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The flow through ``Engine.submit`` in ``sizes.batch``-row batches, then one fsync.

    ``hashed`` opens the engine with the event-stream hash, tallies events and times the
    stages (journal append, core, hash, subscriber); ``after`` runs on the closed data
    directory before it is deleted (the replay).
    """
    with tempfile.TemporaryDirectory(prefix="cx-bench-engine-") as tmp:
        root = Path(tmp)
        engine = Engine.open(root, _config(), time.time_ns, track_event_hash=hashed)
        sink = EventSink(tally=hashed)
        _setup_engine(engine, setup)
        stages = StageTimer()
        subscriber: Callable[[np.ndarray], None] = sink
        if hashed:
            stages.wrap(engine.journal, "append_rows", "journal_append_rows")
            stages.wrap(engine.core, "process", "core_process")
            if hasattr(engine, "_absorb"):  # the engine's private hashing step
                stages.wrap(engine, "_absorb", "event_hash")
            stages.wrap(sink, "__call__", "subscriber_encode")
            subscriber = sink.__call__  # the wrapped one: calling sink() would bypass it
        engine.subscribe(subscriber)
        n, batch, submit = len(flow), sizes.batch, engine.submit
        gc.collect()
        t = time.perf_counter()
        for a in range(0, n, batch):
            submit(flow[a : a + batch])
        engine.journal.sync()  # every command durable before the clock stops
        seconds = time.perf_counter() - t
        out: dict[str, Any] = {
            "seconds": seconds,
            "commands_per_s": round(n / seconds),
            "events": sink.events,
            "event_mb": round(sink.bytes / 2**20, 1),
            "resting_orders_at_end": engine.core.open_orders(),
            "state_hash": engine.state_hash(),
        }
        if hashed:
            out["event_hash"] = engine.event_hash
            out |= sink.summary(n)
            other = seconds - sum(stages.seconds.values())
            out["stage_seconds"] = {
                **{k: round(v, 3) for k, v in stages.seconds.items()},
                "other": round(other, 3),
            }
        engine.close()
        out["journal_mb"] = round(_dir_mb(root / "journal"), 1)
        out["journal_bytes_per_command"] = round(
            _dir_mb(root / "journal") * 2**20 / (n + len(setup)), 1
        )
        if after is not None:
            after(root / "journal", out)
        return out


def run_core(sizes: Sizes, setup: np.ndarray, flow: np.ndarray) -> dict[str, Any]:
    """The baseline: what ``Engine.submit`` does minus the journal. Each batch is copied
    and stamped (sequence numbers, one clock read) as the sequencer does, run through
    ``ExchangeCore.process`` and handed to the same encoding subscriber."""
    config = _config()
    core = ExchangeCore(config.risk, config.book_config())
    rows = setup.copy()
    rows[:, mc.C_SEQ] = np.arange(1, len(rows) + 1)
    rows[:, mc.C_TS] = time.time_ns()
    core.process(rows)
    sink = EventSink()
    seq, n, batch = len(rows) + 1, len(flow), sizes.batch
    gc.collect()
    t = time.perf_counter()
    for a in range(0, n, batch):
        rows = np.array(flow[a : a + batch], dtype=np.int64)
        rows[:, mc.C_SEQ] = np.arange(seq, seq + len(rows))
        rows[:, mc.C_TS] = time.time_ns()
        seq += len(rows)
        sink(core.process(rows))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "commands_per_s": round(n / seconds), "events": sink.events}


def run_matching_only(sizes: Sizes, flow: np.ndarray) -> int:
    """Commands per second of the bare order book (no risk, journal or encoding) on the
    same flow: how much of the core's time is matching."""
    book = FastBook(_config().book_config())
    for i in range(sizes.instruments):
        book.add_instrument(InstrumentSpec(i, wl.TICK, 1, wl.TICK, 1_000_000_000, 1, 100_000))
    batches = []
    for a in range(0, len(flow), sizes.batch):
        rows = flow[a : a + sizes.batch].copy()
        rows[:, mc.C_SEQ] = np.arange(a + 1, a + 1 + len(rows))
        rows[:, mc.C_TS] = 1
        batches.append(rows)
    gc.collect()
    t = time.perf_counter()
    for rows in batches:
        book.process(rows)
    return round(len(flow) / (time.perf_counter() - t))


def measure_flow(sizes: Sizes, progress: Callable[[str], None]) -> dict[str, Any]:
    """Live engine (with and without the event hash), baseline, replay, matching alone."""
    t = time.perf_counter()
    setup = wl.setup_rows(sizes.instruments, sizes.accounts)
    flow = wl.flow(sizes.commands, instruments=sizes.instruments, accounts=sizes.accounts)
    out: dict[str, Any] = {
        "commands": sizes.commands,
        "batch": sizes.batch,
        "instruments": sizes.instruments,
        "accounts": sizes.accounts,
        "setup_commands": len(setup),
        **flow.stats,
        "generation_s": round(time.perf_counter() - t, 2),
    }
    rows = flow.commands
    live, base = [], []
    for r in range(sizes.repeats):  # interleaved, so a noisy spell hits both
        progress(f"engine run {r + 1}/{sizes.repeats} (no event hash)")
        live.append(run_engine(sizes, setup, rows, hashed=False))
        progress(f"ExchangeCore baseline run {r + 1}/{sizes.repeats}")
        base.append(run_core(sizes, setup, rows))

    def check_replay(journal_dir: Path, res: dict[str, Any]) -> None:
        progress("replaying the journal")
        rep = replay(journal_dir)
        res["replay"] = {
            "commands": rep.commands,
            "seconds": round(rep.seconds, 3),
            "commands_per_s": round(rep.commands / rep.seconds),
            "event_hash_equal": rep.event_hash == res["event_hash"],
            "state_hash_equal": rep.state_hash == res["state_hash"],
            "events": rep.events,
        }
        # The journal side of replay alone: open (scan + CRC + hash chain), then decode.
        t = time.perf_counter()
        journal = Journal.open(journal_dir)
        opened = time.perf_counter()
        decoded = sum(len(rows) for rows in journal.read_rows(1))
        done = time.perf_counter()
        journal.close()
        res["replay"]["journal_open_s"] = round(opened - t, 3)
        res["replay"]["journal_read_rows_per_s"] = round(decoded / (done - opened))

    progress("engine run with the event hash, stage timers and a replay of its journal")
    hashed = run_engine(sizes, setup, rows, hashed=True, after=check_replay)
    progress("matching only")
    matching_rate = run_matching_only(sizes, rows)

    best = max(live, key=lambda x: x["commands_per_s"])
    best_base = max(base, key=lambda x: x["commands_per_s"])
    rep = hashed.pop("replay")
    out |= {
        "commands_per_s": best["commands_per_s"],
        "commands_per_s_source": (
            f"Engine.submit without the event hash, best of {len(live)} run(s); "
            "commands_per_s_with_event_hash is the hashed run"
        ),
        "commands_per_s_runs": [x["commands_per_s"] for x in live],
        "commands_per_s_with_event_hash": hashed["commands_per_s"],
        "commands_per_s_no_journal": best_base["commands_per_s"],
        "commands_per_s_no_journal_runs": [x["commands_per_s"] for x in base],
        "journal_cost_ratio": harness.ratio(best_base["commands_per_s"], best["commands_per_s"], 3),
        "event_hash_cost_ratio": harness.ratio(best["commands_per_s"], hashed["commands_per_s"], 3),
        "matching_only_commands_per_s": matching_rate,
        "replay_commands_per_s": rep["commands_per_s"],
        "replay_commands": rep["commands"],
        "replay_seconds": rep["seconds"],
        "replay_journal_open_s": rep["journal_open_s"],
        "replay_journal_read_rows_per_s": rep["journal_read_rows_per_s"],
        "replay_identical": bool(rep["event_hash_equal"] and rep["state_hash_equal"]),
        "replay_event_hash_equal": rep["event_hash_equal"],
        "replay_state_hash_equal": rep["state_hash_equal"],
        "stage_seconds_hashed_run": hashed["stage_seconds"],
        "events_per_command": hashed["events_per_command"],
        "trades": hashed["trades"],
        "reject_share": hashed["reject_share"],
        "rejects_by_reason": hashed["rejects_by_reason"],
        "events_by_kind": hashed["events_by_kind"],
        "resting_orders_at_end": best["resting_orders_at_end"],
        "journal_mb": best["journal_mb"],
        "journal_bytes_per_command": best["journal_bytes_per_command"],
        "event_mb": best["event_mb"],
    }
    flow_events = {x["events"] for x in (*live, *base)} | {hashed["events"]}
    out["events_equal_across_runs"] = len(flow_events) == 1
    return out


def measure_snapshot(sizes: Sizes, progress: Callable[[str], None]) -> dict[str, Any]:
    """Fill an engine with resting orders (untimed), then time snapshot write, snapshot
    load and a full ``Engine.open`` recovery (journal scan beside the snapshot load, then the
    empty tail)."""
    setup = wl.setup_rows(sizes.instruments, sizes.accounts)
    resting = wl.resting_rows(
        sizes.resting_orders, instruments=sizes.instruments, accounts=sizes.accounts
    )
    with tempfile.TemporaryDirectory(prefix="cx-bench-snapshot-") as tmp:
        root = Path(tmp)
        progress(f"filling an engine with {sizes.resting_orders:,} resting orders")
        gc.collect()
        rss_before = probes.rss_mb()
        engine = Engine.open(root, _config())
        _setup_engine(engine, setup)
        _setup_engine(engine, resting)
        del resting
        gc.collect()
        engine_rss_mb = probes.rss_mb() - rss_before
        open_orders = engine.core.open_orders()
        state = engine.state_hash()
        progress("snapshot write")
        gc.collect()
        t = time.perf_counter()
        path = engine.snapshot()
        write_s = time.perf_counter() - t
        t = time.perf_counter()
        encoded = engine.core.to_bytes()
        encode_s = time.perf_counter() - t
        del encoded
        engine.close()
        del engine
        gc.collect()
        progress("recovery (Engine.open)")
        t = time.perf_counter()
        recovered = Engine.open(root)
        recovery_s = time.perf_counter() - t
        rec = recovered.recovery
        same = recovered.state_hash() == state
        recovered.close()
        del recovered
        gc.collect()
        config = _config()
        t = time.perf_counter()
        found = newest_valid(root / "snapshots")
        read_s = time.perf_counter() - t
        assert found is not None
        core = ExchangeCore.from_bytes(found[1], config.risk, config.book_config())
        load_s = time.perf_counter() - t
        loaded_same = core.state_hash() == state
        del core, found
        return {
            "resting_orders": open_orders,
            "resting_orders_requested": sizes.resting_orders,
            "instruments": sizes.instruments,
            "accounts": sizes.accounts,
            "snapshot_write_s": round(write_s, 3),
            "snapshot_encode_s": round(encode_s, 3),
            "snapshot_load_s": round(load_s, 3),
            "snapshot_load_read_and_check_s": round(read_s, 3),
            "snapshot_load_decode_s": round(load_s - read_s, 3),
            "snapshot_mb": round(path.stat().st_size / 2**20, 1),
            "recovery_s": round(recovery_s, 3),
            "recovery_snapshot_and_tail_s": round(rec.seconds, 3),
            "recovery_journal_open_s": round(recovery_s - rec.seconds, 3),
            "recovery_replayed_commands": rec.replayed,
            "recovery_snapshot_seq": rec.snapshot_seq,
            "journal_mb": round(_dir_mb(root / "journal"), 1),
            "engine_rss_mb": round(engine_rss_mb, 1),
            "recovered_state_identical": same,
            "loaded_state_identical": loaded_same,
        }


def warm_up() -> float:
    """Load (or compile) every kernel the timed parts use, on a tiny engine."""
    t = time.perf_counter()
    quiet: Callable[[str], None] = lambda _msg: None  # noqa: E731
    measure_flow(WARMUP, quiet)
    measure_snapshot(WARMUP, quiet)
    return round(time.perf_counter() - t, 2)


NOTES = [
    "commands_per_s: the order flow (not the untimed setup) through Engine.submit in "
    "`batch`-row batches: sequencer, journal append (FsyncPolicy.BATCH, temp dir on this "
    "machine's disk), risk + matching in ExchangeCore, and one subscriber that encodes each "
    "batch of events with ndarray.tobytes() and counts them; the clock stops after a final "
    "journal fsync. Engine opened without the event-stream hash; best of "
    "commands_per_s_runs. Automatic snapshots are off in the timed runs (snapshot_every "
    "huge): their cost is snapshot_write_s per snapshot_every commands (default 1,000,000).",
    "commands_per_s_with_event_hash: one run with track_event_hash=True (SHA-256 over every "
    "event), whose journal is replayed; stage_seconds_hashed_run splits that run's time by "
    "wrapping journal.append_rows, core.process, the hash and the subscriber.",
    "commands_per_s_no_journal: the same batches copied, stamped and run through "
    "ExchangeCore.process with the same subscriber; journal_cost_ratio = no_journal / "
    "commands_per_s.",
    "matching_only_commands_per_s: the same flow through a bare FastBook (no risk, journal or "
    "encoding): the core's time beyond it is risk and the engine kernel.",
    "replay_commands_per_s: exchange.engine.replay over the hashed run's whole journal "
    "(setup commands included, replay_commands); replay_identical: its event-stream and "
    "state hashes equal the live run's. replay_journal_open_s and "
    "replay_journal_read_rows_per_s time the journal side alone (Journal.open, then "
    "read_rows decoding every command without running it).",
    "Snapshot: an engine filled with `resting_orders` non-crossing GTC orders (bids below the "
    "reference, asks above) on the same instruments and accounts. snapshot_write_s times "
    "Engine.snapshot() (journal fsync, encode, write, fsync, rename); snapshot_load_s reads, "
    "checks and decodes the newest snapshot into an ExchangeCore (file in the page cache); "
    "recovery_s times Engine.open on the closed directory: the journal open (every record's "
    "CRC and the hash chain of the whole journal that filled the book are checked) runs while "
    "a second thread reads, checks and decodes the newest snapshot; then the empty tail. "
    "recovery_journal_open_s is the time until the journal was open and "
    "recovery_snapshot_and_tail_s the rest (waiting for the snapshot, then the tail).",
    "Workload (benchmarks/engine_workload.py): passive GTC orders rest at least 10 ticks "
    "from the reference and are later replaced and cancelled by their own account; zone GTC "
    "orders within 5 ticks cross and trade or rest to be hit; IOC orders take what they can. "
    "Setup lists the instruments, opens provider accounts, deposits USDC and registers "
    "capacity on every instrument, so risk refuses nothing; reject_share counts refusals.",
    "snapshot.engine_rss_mb: growth of this process's RSS while the engine was opened, set "
    "up and filled with the resting orders (their rows freed): about what such an engine "
    "holds. peak_rss_mb is the whole benchmark process: it includes the prebuilt command "
    "rows (120 bytes per command) and their generation's temporaries.",
    "Shared 2-core machines are noisy: compare ratios and read machine.load_average_*.",
]


def run(
    sizes: Sizes, quick: bool, progress: Callable[[str], None], *, warmup: bool = True
) -> dict[str, Any]:
    """Everything, as one JSON-ready dict; ``warmup=False`` only for tests at tiny sizes."""
    result = harness.start(quick)
    if warmup:
        progress("warm-up: every compiled path on a small engine")
        result["warmup_s"] = warm_up()
    t = time.perf_counter()
    result |= measure_flow(sizes, progress)
    result["flow_measurement_s"] = round(time.perf_counter() - t, 1)
    gc.collect()
    t = time.perf_counter()
    snap = measure_snapshot(sizes, progress)
    snap["measurement_s"] = round(time.perf_counter() - t, 1)
    if quick:
        snap["note"] = (
            f"--quick: {sizes.resting_orders:,} resting orders, not the full run's "
            f"{FULL.resting_orders:,}"
        )
    result["snapshot"] = snap
    for key in ("resting_orders", "snapshot_write_s", "snapshot_load_s", "snapshot_mb"):
        result[key] = snap[key]
    result["recovery_s"] = snap["recovery_s"]
    return harness.finish(result, targets=TARGETS, notes=NOTES)


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("Engine.submit, commands/s", f"{result['commands_per_s']:,}"),
        ("  ... with event hash", f"{result['commands_per_s_with_event_hash']:,}"),
        ("ExchangeCore.process (no journal)", f"{result['commands_per_s_no_journal']:,}"),
        ("journal cost ratio", f"{result['journal_cost_ratio']}x"),
        ("matching only (FastBook)", f"{result['matching_only_commands_per_s']:,}"),
        ("replay, commands/s", f"{result['replay_commands_per_s']:,}"),
        ("replay identical", str(result["replay_identical"])),
        ("events per command", str(result["events_per_command"])),
        ("reject share", f"{result['reject_share']:.3%}"),
        ("resting orders (snapshot)", f"{result['resting_orders']:,}"),
        ("snapshot write / load, s", f"{result['snapshot_write_s']} / {result['snapshot_load_s']}"),
        ("snapshot size, MB", str(result["snapshot_mb"])),
        ("recovery (Engine.open), s", str(result["recovery_s"])),
        ("peak RSS, MB", str(result["peak_rss_mb"])),
    ]
    harness.print_measures(
        f"Engine throughput ({result['commands']:,} commands, quick={result['quick']})", rows
    )
    stages = ", ".join(f"{k} {v} s" for k, v in result["stage_seconds_hashed_run"].items())
    harness.console().print(f"hashed run by stage: {stages}")


def _from_args(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    return run(QUICK if args.quick else FULL, args.quick, progress)


def main(argv: list[str] | None = None) -> int:
    return harness.main("engine", _from_args, print_table, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
