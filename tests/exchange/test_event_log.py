"""The event log projections follow: same rows as the engine returned, whole commands,
cut back safely after a crash and refilled by recovery."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from flow import T0, batches, order_rows, setup_rows

from exchange.engine import Engine, EngineConfig
from exchange.event_log import DATA, HEAD, ROW_BYTES, EventLog
from matching import codes as mc


def clock():
    calls = iter(range(10**9))
    return lambda: T0 + next(calls) * 1_000_000


STAMPS: dict[int, int] = {}  # seq -> the timestamp the sequencer gave it, in the last run()


def run(data_dir: Path, n: int = 3_000, config: EngineConfig | None = None) -> np.ndarray:
    """Submit a flow; returns every event the engine handed back, in order."""
    out = []
    STAMPS.clear()
    with Engine.open(data_dir, config, clock=clock()) as engine:
        for rows in [setup_rows(), *batches(order_rows(n, 5), 250)]:
            out.append(engine.submit(rows))
            STAMPS.update(zip(range(engine.last_seq - len(rows) + 1, engine.last_seq + 1),
                              [engine.sequencer.last_ts] * len(rows), strict=True))  # fmt: skip
    return np.concatenate(out)


def all_stamps(log: EventLog) -> dict[int, int | None]:
    return {seq: log.ts_of(seq) for seq in range(1, log.last_seq + 2)}


def read_all(log: EventLog, cursor: int = 0, max_rows: int = 1000) -> list[np.ndarray]:
    chunks = []
    while True:
        rows = log.read_after(cursor, max_rows)
        if not len(rows):
            return chunks
        chunks.append(rows)
        cursor = int(rows[-1, mc.E_SEQ])


def test_reader_sees_what_the_engine_returned_in_whole_commands(tmp_path: Path) -> None:
    live = run(tmp_path)
    with EventLog.open(tmp_path / "events") as log:
        chunks = read_all(log, max_rows=37)
        assert np.array_equal(np.concatenate(chunks), live)
        for a, b in itertools.pairwise(chunks):
            assert a[-1, mc.E_SEQ] < b[0, mc.E_SEQ]  # no command split across reads
        assert all(len(c) <= 37 or len(set(c[:, mc.E_SEQ])) == 1 for c in chunks)
        middle = int(live[len(live) // 2, mc.E_SEQ])
        after = np.concatenate(read_all(log, middle))
        assert np.array_equal(after, live[live[:, mc.E_SEQ] > middle])
        assert log.last_seq >= int(live[-1, mc.E_SEQ])
        assert len(log.read_after(log.last_seq)) == 0
        assert all_stamps(log) == {**STAMPS, log.last_seq + 1: None}  # every command's time
        with pytest.raises(PermissionError):
            log.append(live[:1], log.last_seq + 1)


def test_a_reader_never_sees_past_the_committed_head(tmp_path: Path) -> None:
    live = run(tmp_path, 500)
    directory = tmp_path / "events"
    with open(directory / DATA, "ab") as f:  # a write the head never covered
        f.write(b"\x01" * (ROW_BYTES * 3 + 5))
    with EventLog.open(directory) as log:
        assert np.array_equal(np.concatenate(read_all(log)), live)
    with EventLog.open(directory, writable=True) as log:  # the writer cuts it
        assert os.path.getsize(directory / DATA) == len(live) * ROW_BYTES
        assert np.array_equal(log.read_after(0, 10**9), live)


def test_head_beyond_data_keeps_whole_commands_only(tmp_path: Path) -> None:
    live = run(tmp_path, 500)
    directory = tmp_path / "events"
    cut = len(live) - 1  # the last command loses its last row
    os.truncate(directory / DATA, cut * ROW_BYTES)
    with EventLog.open(directory, writable=True) as log:
        kept = log.read_after(0, 10**9)
    last = live[-1, mc.E_SEQ]
    assert np.array_equal(kept, live[live[:, mc.E_SEQ] < last])
    assert (directory / HEAD).stat().st_size == 24


def test_recovery_refills_a_lost_event_log_tail(tmp_path: Path) -> None:
    config = EngineConfig(snapshot_every=1_000)
    live = run(tmp_path, 3_000, config)
    with EventLog.open(tmp_path / "events") as log:
        stamps = all_stamps(log)
    with EventLog.open(tmp_path / "events", writable=True) as log:
        log.truncate_after(int(live[len(live) // 3, mc.E_SEQ]))
    with Engine.open(tmp_path) as engine:
        assert engine.recovery.snapshot_seq <= int(live[len(live) // 3, mc.E_SEQ])
    with EventLog.open(tmp_path / "events") as log:
        assert np.array_equal(log.read_after(0, 10**9), live)
        assert all_stamps(log) == stamps  # recovery re-creates the timestamps too


def test_append_refuses_going_back(tmp_path: Path) -> None:
    with EventLog.open(tmp_path, writable=True) as log:
        row = np.zeros((1, mc.N_EVENT_FIELDS), dtype=np.int64)
        row[0, mc.E_SEQ] = 5
        log.append(row, 6)
        with pytest.raises(ValueError):
            log.append(row, 6)
        with pytest.raises(ValueError):
            log.append(row, 7)  # its rows are from seq 5, not after 6
        log.append(np.empty((0, mc.N_EVENT_FIELDS), dtype=np.int64), 9)  # no events, seq moves
        assert log.last_seq == 9
        with pytest.raises(ValueError):
            log.append(row, 12, [(11, 100), (10, 100)])  # runs must rise
        with pytest.raises(ValueError):
            log.append(row, 12, [(13, 100)])  # past the batch
        row[0, mc.E_SEQ] = 10
        log.append(row, 12, [(11, 100), (12, 200)])
        assert [log.ts_of(s) for s in (10, 11, 12, 13)] == [100, 100, 200, None]
