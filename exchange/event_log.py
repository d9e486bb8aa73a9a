"""The engine's event stream on disk, for projections that follow it from a cursor.

DESIGN principle 4: Postgres, Redis and the chain are projections, each resuming from the
last command sequence number it applied. They need the events of every command after their
cursor, including those produced while they were down, so the engine appends each batch's
event rows here after running it.

The file is derived data: every row is a deterministic function of the journal, so it is
not fsynced and needs no checksums. On open, anything beyond the committed head is cut, and
the engine re-creates the events of every command after ``last_seq`` during recovery (see
``Engine._recover``), so a crash loses nothing here either.

Layout: ``events.bin`` holds int64 rows of ``matching.codes.N_EVENT_FIELDS`` columns in
sequence order; ``events.ts`` holds the commands' sequenced timestamps (which event rows do
not carry) as int64 pairs ``(last seq of a run of commands with one timestamp, ts)``;
``events.head`` holds three int64s written after each append: the committed row count, the
last command sequence number whose events are all in the file (commands that produce no
event still advance it) and the committed timestamp pairs. Readers trust the head only, so
they never see half of a batch.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from matching import codes as mc

log = logging.getLogger(__name__)

DATA = "events.bin"
HEAD = "events.head"
TIMES = "events.ts"
ROW_BYTES = mc.N_EVENT_FIELDS * 8
PAIR_BYTES = 16
_HEAD = struct.Struct("<qqq")
_PAIR = struct.Struct("<qq")


class EventLog:
    """One writer (the engine) and any number of readers, in or out of its process."""

    directory: Path
    writable: bool
    _data: int  # file descriptors
    _times: int
    _head: int
    _rows: int
    _last_seq: int
    _pairs: int

    def __init__(self) -> None:
        raise TypeError("use EventLog.open(directory)")

    @classmethod
    def open(cls, directory: str | Path, *, writable: bool = False) -> EventLog:
        self = object.__new__(cls)
        self.directory = Path(directory)
        self.writable = writable
        if writable:
            self.directory.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT
            self._data = os.open(self.directory / DATA, flags, 0o644)
            self._times = os.open(self.directory / TIMES, flags, 0o644)
            self._head = os.open(self.directory / HEAD, flags, 0o644)
            self._rows, self._last_seq, self._pairs = self._read_head()
            self._repair()
        else:
            self._data = os.open(self.directory / DATA, os.O_RDONLY)
            self._times = os.open(self.directory / TIMES, os.O_RDONLY)
            self._head = os.open(self.directory / HEAD, os.O_RDONLY)
            self._rows, self._last_seq, self._pairs = self._read_head()
        return self

    # -- reading ---------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The last command whose events are all committed (re-read from the head)."""
        if not self.writable:
            self._rows, self._last_seq, self._pairs = self._read_head()
        return self._last_seq

    def ts_of(self, seq: int) -> int | None:
        """The sequenced timestamp (ns) of command ``seq``; None if it is not logged."""
        count = self._pairs if self.writable else self._read_head()[2]
        run = self._run_reaching(seq, count)
        return self._pair_at(run)[1] if run < count and seq >= 1 else None

    def _run_reaching(self, seq: int, count: int) -> int:
        """Index of the first timestamp run whose last seq is at or after ``seq``."""
        return _first(count, lambda i: self._pair_at(i)[0] >= seq)

    def _pair_at(self, index: int) -> tuple[int, int]:
        return _PAIR.unpack(os.pread(self._times, PAIR_BYTES, index * PAIR_BYTES))

    def read_after(self, seq: int, max_rows: int = 65536) -> np.ndarray:
        """Event rows of the commands after ``seq``, whole commands only, at most about
        ``max_rows`` (more only when one command alone has more events than that)."""
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        committed = self._rows if self.writable else self._read_head()[0]
        start = self._first_after(seq, committed)
        end = min(committed, start + max_rows)
        rows = self._read(start, end)
        if end < committed and len(rows):
            # Do not split the last command: end before its first row, or, when the whole
            # slice is one command, read on to its end.
            tail = rows[-1, mc.E_SEQ]
            keep = int(np.searchsorted(rows[:, mc.E_SEQ], tail, side="left"))
            if keep:
                return rows[:keep]
            return self._read(start, self._first_after(int(tail), committed))
        return rows

    def _first_after(self, seq: int, committed: int) -> int:
        """Index of the first committed row with E_SEQ > seq (binary search on disk)."""
        return _first(committed, lambda i: self._seq_at(i) > seq)

    def _seq_at(self, index: int) -> int:
        raw = os.pread(self._data, 8, index * ROW_BYTES + mc.E_SEQ * 8)
        return int.from_bytes(raw, "little", signed=True)

    def _read(self, start: int, end: int) -> np.ndarray:
        if end <= start:
            return np.empty((0, mc.N_EVENT_FIELDS), dtype=np.int64)
        raw = os.pread(self._data, (end - start) * ROW_BYTES, start * ROW_BYTES)
        return np.frombuffer(raw, dtype="<i8").reshape(-1, mc.N_EVENT_FIELDS).copy()

    def _read_head(self) -> tuple[int, int, int]:
        raw = os.pread(self._head, _HEAD.size, 0)
        if len(raw) < _HEAD.size:
            return 0, 0, 0
        return _HEAD.unpack(raw)

    def _write_head(self) -> None:
        os.pwrite(self._head, _HEAD.pack(self._rows, self._last_seq, self._pairs), 0)

    # -- writing (the engine) --------------------------------------------------------------

    def append(
        self, events: np.ndarray, last_seq: int, times: Sequence[tuple[int, int]] = ()
    ) -> None:
        """Append one batch's events; ``last_seq`` is the batch's last command and
        ``times`` its ``(last seq, ts)`` runs (one for a batch the sequencer stamped)."""
        if not self.writable:
            raise PermissionError("this EventLog was opened for reading")
        if last_seq <= self._last_seq:
            raise ValueError(f"batch ending at seq {last_seq} is not after {self._last_seq}")
        rows = np.ascontiguousarray(events, dtype="<i8")
        if len(rows):
            if int(rows[0, mc.E_SEQ]) <= self._last_seq:
                raise ValueError("events must come after the log's last command")
            if int(rows[-1, mc.E_SEQ]) > last_seq:
                raise ValueError("events must not come after the batch's last command")
        previous = self._last_seq
        for run_last, _ in times:
            if not previous < run_last <= last_seq:
                raise ValueError("timestamp runs must rise within the batch")
            previous = run_last
        if len(rows):
            os.pwrite(self._data, rows.tobytes(), self._rows * ROW_BYTES)
        if times:
            packed = b"".join(_PAIR.pack(int(a), int(b)) for a, b in times)
            os.pwrite(self._times, packed, self._pairs * PAIR_BYTES)
        self._rows += len(rows)
        self._pairs += len(times)
        self._last_seq = last_seq
        self._write_head()

    def truncate_after(self, seq: int) -> None:
        """Forget the events of commands after ``seq`` (the journal lost them)."""
        self._rows = self._first_after(seq, self._rows)
        self._last_seq = min(self._last_seq, seq)
        self._cut_times()
        self._write_head()
        os.ftruncate(self._data, self._rows * ROW_BYTES)

    def _cut_times(self) -> None:
        """Keep the timestamp runs up to ``last_seq``, ending the last one there."""
        lo = self._run_reaching(self._last_seq, self._pairs)
        if lo < self._pairs and self._last_seq > 0:
            pair = _PAIR.pack(self._last_seq, self._pair_at(lo)[1])
            os.pwrite(self._times, pair, lo * PAIR_BYTES)
            lo += 1
        self._pairs = lo
        os.ftruncate(self._times, self._pairs * PAIR_BYTES)

    def _repair(self) -> None:
        """Cut what the head does not cover; if the head claims more than the file holds
        (a lost write), keep only whole commands and say so."""
        have = os.fstat(self._data).st_size // ROW_BYTES
        pairs = os.fstat(self._times).st_size // PAIR_BYTES
        if have < self._rows or pairs < self._pairs:
            rows = min(have, self._rows)
            last = self._seq_at(rows - 1) if rows else 0
            rows = self._first_after(last - 1, rows) if rows else 0  # drop the last command
            log.warning("event log %s: head beyond data; kept %d rows", self.directory, rows)
            self._rows = rows
            self._last_seq = self._seq_at(rows - 1) if rows else 0
            self._pairs = min(pairs, self._pairs)
            if self._pairs and self._pair_at(self._pairs - 1)[0] < self._last_seq:
                self._last_seq = self._pair_at(self._pairs - 1)[0]  # times must cover it
                self._rows = self._first_after(self._last_seq, self._rows)
        self._cut_times()
        self._write_head()
        os.ftruncate(self._data, self._rows * ROW_BYTES)

    def close(self) -> None:
        for fd in (self._data, self._times, self._head):
            os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first(count: int, reached: Callable[[int], bool]) -> int:
    """The first index in ``[0, count)`` where ``reached`` holds (it holds from there on),
    or ``count``: a binary search that reads one record of the file per step."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
