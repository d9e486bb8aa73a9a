"""The engine: ack after journal, snapshots, recovery, crashes, exact replay."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from flow import T0, batches, order_rows, setup_rows

from exchange.core import ExchangeCore
from exchange.engine import Engine, EngineConfig, EngineHalted, replay
from exchange.journal import JournalCorrupt
from exchange.snapshots import list_snapshots
from matching import codes as mc
from risk.config import RiskConfig

HERE = Path(__file__).parent


def fixed_clock(step: int = 1_000_000):
    calls = iter(range(10**9))
    return lambda: T0 + next(calls) * step


def run_uninterrupted(rows_batches: list[np.ndarray]) -> tuple[str, str]:
    """State hash and event-stream hash of the same batches through a bare core."""
    core = ExchangeCore(EngineConfig().risk, EngineConfig().book_config())
    clock = fixed_clock()
    h = hashlib.sha256()  # the event-stream hash, computed here independently
    seq = 0
    for rows in rows_batches:
        rows = rows.copy()
        rows[:, 1] = clock()
        rows[:, 0] = np.arange(seq + 1, seq + 1 + len(rows))
        seq += len(rows)
        h.update(core.process(rows).tobytes())
    return core.state_hash(), h.hexdigest()


def flow_batches(n: int, seed: int, size: int) -> list[np.ndarray]:
    return [setup_rows(), *batches(order_rows(n, seed), size)]


def test_submit_journals_before_events_leave(tmp_path: Path) -> None:
    seen: list[int] = []
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        engine.subscribe(lambda ev: seen.append(engine.journal.last_seq))
        engine.submit(setup_rows())
        events = engine.submit(order_rows(100, seed=1))
        assert engine.journal.last_seq == engine.last_seq == len(setup_rows()) + 100
        assert seen == [len(setup_rows()), engine.last_seq]  # journaled before delivery
        assert set(events[:, 0]) <= set(range(len(setup_rows()) + 1, engine.last_seq + 1))
        stamped = np.concatenate(list(engine.journal.read_rows(1)))
        first = len(setup_rows())
        assert (stamped[:first, 1] == T0).all()  # one timestamp per batch, from the clock
        assert (stamped[first:, 1] == T0 + 1_000_000).all()
        assert stamped[:, 0].tolist() == list(range(1, engine.last_seq + 1))


def test_timestamps_never_go_back(tmp_path: Path) -> None:
    times = iter([T0 + 5, T0 + 3, T0 + 9])
    with Engine.open(tmp_path, clock=lambda: next(times)) as engine:
        for _ in range(3):
            engine.submit(setup_rows()[:1])
        stamps = np.concatenate(list(engine.journal.read_rows(1)))[:, 1]
    assert stamps.tolist() == [T0 + 5, T0 + 5, T0 + 9]


def test_bad_batches_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        for bad in (np.zeros((0, 15), np.int64), np.zeros((2, 14), np.int64)):
            with pytest.raises(ValueError):
                engine.submit(bad)
        assert engine.journal.last_seq == 0


def test_recovery_from_snapshot_and_journal_equals_uninterrupted_run(tmp_path: Path) -> None:
    all_batches = flow_batches(10_000, seed=2, size=700)
    config = EngineConfig(snapshot_every=2_000)
    with Engine.open(tmp_path, config, clock=fixed_clock()) as engine:
        for rows in all_batches:
            engine.submit(rows)
        live = engine.state_hash()
    assert len(list_snapshots(tmp_path / "snapshots")) == 3  # the newest three are kept
    with Engine.open(tmp_path) as engine:
        assert engine.recovery.snapshot_seq > 0
        assert 0 < engine.recovery.replayed < 2_000
        assert engine.state_hash() == live
    assert run_uninterrupted(all_batches)[0] == live


def test_damaged_snapshot_is_skipped(tmp_path: Path) -> None:
    all_batches = flow_batches(3_000, seed=3, size=500)
    with Engine.open(tmp_path, EngineConfig(snapshot_every=1_000), clock=fixed_clock()) as e:
        for rows in all_batches:
            e.submit(rows)
        live = e.state_hash()
    newest = list_snapshots(tmp_path / "snapshots")[-1][1]
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    with Engine.open(tmp_path) as engine:
        assert engine.recovery.snapshot_seq < int(newest.stem)
        assert engine.state_hash() == live


def test_configuration_cannot_change_under_a_journal(tmp_path: Path) -> None:
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        engine.submit(setup_rows())
    with pytest.raises(ValueError, match="different configuration"):
        Engine.open(tmp_path, EngineConfig(risk=RiskConfig(taker_fee_bps=50)))
    Engine.open(tmp_path, EngineConfig(snapshot_every=10)).close()  # not part of the meaning


def test_torn_tail_is_cut_and_middle_corruption_refuses(tmp_path: Path) -> None:
    all_batches = flow_batches(2_000, seed=4, size=400)
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        for rows in all_batches:
            engine.submit(rows)
    segment = sorted((tmp_path / "journal").glob("*.cxj"))[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[:-50])  # a torn last batch
    with Engine.open(tmp_path) as engine:
        assert engine.last_seq == sum(len(b) for b in all_batches[:-1])
        expected = run_uninterrupted(all_batches[:-1])[0]
        assert engine.state_hash() == expected
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0xFF  # damage in the middle of the history
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Engine.open(tmp_path)


def test_replay_reads_a_live_or_torn_journal_without_touching_it(tmp_path: Path) -> None:
    """Replay takes no lock and writes nothing: it runs beside an open engine, and on a
    torn tail it stops where recovery would cut, leaving the file as it found it."""
    all_batches = flow_batches(3_000, seed=7, size=500)
    journal = tmp_path / "journal"
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        for rows in all_batches:
            engine.submit(rows)
        live = replay(journal)  # the engine holds the journal's lock
        assert live.commands == engine.last_seq
        assert live.state_hash == engine.state_hash()
    segment = sorted(journal.glob("*.cxj"))[-1]
    torn = segment.read_bytes()[:-50]
    segment.write_bytes(torn)
    result = replay(journal)
    assert result.commands == sum(len(b) for b in all_batches[:-1])
    assert (result.state_hash, result.event_hash) == run_uninterrupted(all_batches[:-1])
    assert segment.read_bytes() == torn
    damaged = bytearray(torn)
    damaged[len(damaged) // 3] ^= 0xFF  # damage in the middle of the history
    segment.write_bytes(bytes(damaged))
    with pytest.raises(JournalCorrupt):
        replay(journal)


def test_malformed_order_commands_are_rejected_even_when_prefetched(tmp_path: Path) -> None:
    """The kernel looks ahead at later commands to prefetch what they will read; extreme
    account, instrument, side, price and order-id values must only be rejected."""
    extremes = [np.iinfo(np.int64).min, -1, 0, 1, 2, 3, 1 << 20, 1 << 40, np.iinfo(np.int64).max]
    rng = np.random.default_rng(3)
    rows = np.zeros((2_000, 15), np.int64)
    rows[:, mc.C_KIND] = rng.choice([1, 2, 3], size=len(rows))  # new, cancel, replace
    for col in (mc.C_INSTRUMENT, mc.C_ORDER_ID, mc.C_ACCOUNT, mc.C_SIDE, mc.C_PRICE, mc.C_QTY):
        rows[:, col] = rng.choice(extremes, size=len(rows))
    with Engine.open(tmp_path, clock=fixed_clock()) as engine:
        for batch in batches(setup_rows(), 500):
            engine.submit(batch)
        before = engine.core.open_orders()
        events = engine.submit(rows)
        assert len(events) >= len(rows)
        assert engine.core.open_orders() == before
    result = replay(tmp_path / "journal")
    assert result.state_hash == run_uninterrupted(batches(setup_rows(), 500) + [rows])[0]


def lines_of(child: subprocess.Popen[str], timeout: float) -> Iterator[str]:
    """The child's stdout lines as they come, each within ``timeout`` s of the one before
    (read by a thread: a blocked readline cannot have a deadline)."""
    assert child.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def read(out: IO[str]) -> None:
        for line in out:
            lines.put(line)
        lines.put("")  # end of stream

    threading.Thread(target=read, args=(child.stdout,), daemon=True).start()
    while line := lines.get(timeout=timeout).strip():
        yield line


@pytest.mark.timeout(600)  # the child loads the compiled engine, or compiles it when cold
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_sigkill_at_a_random_point_loses_nothing_acknowledged(tmp_path: Path, seed: int) -> None:
    n, size = 12_000, 500
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1])])}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "crash_child.py"), str(tmp_path), str(n), str(seed)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    stop_after = random.Random(seed).randint(3, 20)
    acked = 0
    try:  # a cold start compiles the engine: minutes on a slow machine
        for i, line in enumerate(lines_of(child, timeout=240), 1):
            if line == "done":
                break
            acked = int(line)
            if i == stop_after:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert acked > 0
    with Engine.open(tmp_path) as engine:
        recovered_seq = engine.last_seq
        recovered = engine.state_hash()
    assert recovered_seq >= acked  # nothing acknowledged is lost
    all_batches = flow_batches(n, seed, size)
    ends = np.cumsum([len(b) for b in all_batches])
    assert recovered_seq in ends  # whole batches only: nothing half-applied
    done = all_batches[: int(np.searchsorted(ends, recovered_seq)) + 1]
    state, events = run_uninterrupted(done)
    assert recovered == state
    result = replay(tmp_path / "journal")
    assert (result.state_hash, result.event_hash) == (state, events)
    # The event log that projections follow holds exactly the uninterrupted event stream.
    logged = (tmp_path / "events" / "events.bin").read_bytes()
    assert hashlib.sha256(logged).hexdigest() == events


def test_one_million_commands_replay_to_the_identical_event_stream(tmp_path: Path) -> None:
    config = EngineConfig(snapshot_every=10**7)
    with Engine.open(tmp_path, config, clock=fixed_clock(), track_event_hash=True) as engine:
        for rows in flow_batches(1_000_000, seed=5, size=8_192):
            engine.submit(rows)
        live_state, live_events = engine.state_hash(), engine.event_hash
        assert engine.last_seq >= 1_000_000
    first = replay(tmp_path / "journal")
    second = replay(tmp_path / "journal")
    assert first.commands == engine.last_seq
    assert first.event_hash == second.event_hash == live_events
    assert first.state_hash == second.state_hash == live_state


@pytest.mark.parametrize("size", [10, 600])  # journaled before the core / beside it
def test_a_failed_journal_write_halts_the_engine_and_nothing_leaves(
    tmp_path: Path, size: int
) -> None:
    seen: list[np.ndarray] = []
    all_batches = flow_batches(2_000, 4, size)
    engine = Engine.open(tmp_path, clock=fixed_clock())
    engine.subscribe(seen.append)
    engine.submit(all_batches[0])
    engine.submit(all_batches[1])
    good_seq, good_state, emitted = engine.last_seq, engine.state_hash(), len(seen)
    os.close(engine.journal._file.fileno())  # the disk goes away under the journal
    with pytest.raises(EngineHalted):
        engine.submit(all_batches[2])
    with pytest.raises(EngineHalted):
        engine.submit(all_batches[3])
    assert len(seen) == emitted and engine.last_seq == good_seq  # no ack, no event
    with contextlib.suppress(OSError):
        engine.close()
    with Engine.open(tmp_path) as recovered:
        assert (recovered.last_seq, recovered.state_hash()) == (good_seq, good_state)
