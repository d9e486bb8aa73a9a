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
sequence order; ``events.head`` holds two int64s written after each append, the committed
row count and the last command sequence number whose events are all in the file (commands
that produce no event still advance it). Readers trust the head only, so they never see half
of a batch.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import numpy as np

from matching import codes as mc

log = logging.getLogger(__name__)

DATA = "events.bin"
HEAD = "events.head"
ROW_BYTES = mc.N_EVENT_FIELDS * 8
_HEAD = struct.Struct("<qq")


class EventLog:
    """One writer (the engine) and any number of readers, in or out of its process."""

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
            self._head = os.open(self.directory / HEAD, flags, 0o644)
            self._rows, self._last_seq = self._read_head()
            self._repair()
        else:
            self._data = os.open(self.directory / DATA, os.O_RDONLY)
            self._head = os.open(self.directory / HEAD, os.O_RDONLY)
            self._rows, self._last_seq = self._read_head()
        return self

    # -- reading ---------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The last command whose events are all committed (re-read from the head)."""
        if not self.writable:
            self._rows, self._last_seq = self._read_head()
        return self._last_seq

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
        lo, hi = 0, committed
        while lo < hi:
            mid = (lo + hi) // 2
            if self._seq_at(mid) <= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _seq_at(self, index: int) -> int:
        raw = os.pread(self._data, 8, index * ROW_BYTES + mc.E_SEQ * 8)
        return int.from_bytes(raw, "little", signed=True)

    def _read(self, start: int, end: int) -> np.ndarray:
        if end <= start:
            return np.empty((0, mc.N_EVENT_FIELDS), dtype=np.int64)
        raw = os.pread(self._data, (end - start) * ROW_BYTES, start * ROW_BYTES)
        return np.frombuffer(raw, dtype="<i8").reshape(-1, mc.N_EVENT_FIELDS).copy()

    def _read_head(self) -> tuple[int, int]:
        raw = os.pread(self._head, _HEAD.size, 0)
        if len(raw) < _HEAD.size:
            return 0, 0
        return _HEAD.unpack(raw)

    # -- writing (the engine) --------------------------------------------------------------

    def append(self, events: np.ndarray, last_seq: int) -> None:
        """Append one batch's events; ``last_seq`` is the batch's last command."""
        if not self.writable:
            raise PermissionError("this EventLog was opened for reading")
        if last_seq <= self._last_seq:
            raise ValueError(f"batch ending at seq {last_seq} is not after {self._last_seq}")
        rows = np.ascontiguousarray(events, dtype="<i8")
        if len(rows):
            if int(rows[0, mc.E_SEQ]) <= self._last_seq:
                raise ValueError("events must come after the log's last command")
            os.pwrite(self._data, rows.tobytes(), self._rows * ROW_BYTES)
        self._rows += len(rows)
        self._last_seq = last_seq
        os.pwrite(self._head, _HEAD.pack(self._rows, self._last_seq), 0)

    def truncate_after(self, seq: int) -> None:
        """Forget the events of commands after ``seq`` (the journal lost them)."""
        self._rows = self._first_after(seq, self._rows)
        self._last_seq = min(self._last_seq, seq)
        os.pwrite(self._head, _HEAD.pack(self._rows, self._last_seq), 0)
        os.ftruncate(self._data, self._rows * ROW_BYTES)

    def _repair(self) -> None:
        """Cut what the head does not cover; if the head claims more than the file holds
        (a lost write), keep only whole commands and say so."""
        have = os.fstat(self._data).st_size // ROW_BYTES
        if have < self._rows:
            rows = have
            last = self._seq_at(rows - 1) if rows else 0
            rows = self._first_after(last - 1, rows) if rows else 0  # drop the last command
            log.warning("event log %s: head beyond data; kept %d rows", self.directory, rows)
            self._rows = rows
            self._last_seq = self._seq_at(rows - 1) if rows else 0
            os.pwrite(self._head, _HEAD.pack(self._rows, self._last_seq), 0)
        os.ftruncate(self._data, self._rows * ROW_BYTES)

    def close(self) -> None:
        for fd in (self._data, self._head):
            os.close(fd)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
