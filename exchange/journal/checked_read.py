"""Reading a whole journal while checking it: what ``replay`` runs on.

``Journal.open`` checks every CRC and the whole hash chain before anything can be read,
and ``read_rows`` then frames and CRC-checks the segments a second time. For a replay that
is two passes over the journal before and during the run. ``checked_rows`` makes one: each
segment is read, checked as ``scan`` checks it (CRCs, sequence numbers, trailer counts,
the hash chain), and only the rows of batches that passed are handed out, a chunk at a
time as their batches' hashes check out, so the run starts once the first segment is
framed instead of after the whole journal has been checked.

It takes no lock and writes nothing, so it can read the journal of a running engine: a
batch still being written at the end is a torn tail, and reading stops before it, as
recovery would cut it. Damage anywhere else raises ``JournalCorrupt`` once the rows before
it have been handed out.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from exchange.journal.layout import KIND_DATA, list_segments
from exchange.journal.rows import decode_rows
from exchange.journal.scan import Scan, scan_segments

CHUNK_ROWS = 65536
PIECE_BYTES = 4 << 20  # read and checked this much at a time, so the first rows come out early


class _ReusedBuffer:
    """One buffer every segment is read into, sized once for the largest segment, and
    filled a piece at a time as the scan asks for it (``fill``), so checking starts
    before the whole segment is read (it may have to come from disk).

    Plain pages, not zeroed, faulted in as the reads fill them: a fresh 64 MiB allocation
    per segment, a zeroed one, or one on huge pages (which can stall while the kernel
    compacts memory) cost more than reading the file does."""

    def __init__(self, size: int) -> None:
        # not zeroed: the reads fill it
        self._buf = memoryview(np.empty(size, np.uint8))  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+
        self._file: io.FileIO | None = None
        self._view = self._buf[:0]
        self._filled = 0

    def read(self, path: Path, size: int) -> memoryview:
        """The segment's buffer, to be filled by ``fill``."""
        self.close()
        if len(self._buf) < size:  # the segment grew since it was listed
            self._buf = memoryview(np.empty(size, np.uint8))  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+
        self._file = io.FileIO(path, "rb")  # closed by fill/close
        self._view = self._buf[:size]
        self._filled = 0
        return self._view

    def fill(self, upto: int) -> None:
        """Read the segment up to byte ``upto``. Bytes a shorter file does not have read
        as zeros, which the scan then finds damaged (the file changed under the reader)."""
        upto = min(upto, len(self._view))
        while self._filled < upto and self._file is not None:
            n = self._file.readinto(self._view[self._filled : upto])
            if not n:  # one read() may return less than asked; none means the end
                self._view[self._filled :] = bytes(len(self._view) - self._filled)
                self._filled = len(self._view)
                break
            self._filled += n
        if self._filled == len(self._view):
            self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_ahead(paths: list[Path]) -> None:
    """Ask the kernel to start reading every segment now (a cold journal comes from disk
    while the first segment is checked and run)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            advise(f.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)


def checked_rows(
    directory: str | Path, chunk: int = CHUNK_ROWS, *, piece: int = PIECE_BYTES
) -> Iterator[np.ndarray]:
    """Every command row of the journal in ``directory`` from seq 1, as int64 arrays of at
    most ``chunk`` rows, each from a batch that passed every check.

    Rows are copied out of the segment buffer before the next segment is read, so a
    caller may keep them. A record that is not a command row raises ``ValueError``.
    """
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    result = Scan()
    paths = [path for _, path in list_segments(Path(directory))]
    _read_ahead(paths[1:])  # the first is read piece by piece now, not queued behind
    buffer = _ReusedBuffer(max((p.stat().st_size for p in paths), default=0))
    last = None  # the frames of the segment being read, and how many are handed out
    done = 0
    try:
        for data, frames, good in scan_segments(
            Path(directory), result, buffer.read, every=chunk, piece=piece, fill=buffer.fill
        ):
            if frames is not last:
                last, done = frames, 0
            pick = done + np.flatnonzero(frames.kind[done:good] == KIND_DATA)
            done = good
            for k in range(0, pick.shape[0], chunk):
                yield decode_rows(data, frames, pick[k : k + chunk])
    finally:
        buffer.close()
    if result.problem is not None:
        raise result.problem
