"""The journal writer: the single appender of one shard's command log.

Principle 5 (ack after journal): a command is acknowledged only after ``append_batch``
returned. What "in the journal" means is the fsync policy: under ``STRICT`` the batch is on
stable storage before ``append_batch`` returns; under ``BATCH`` (the default, group commit)
it has been written to the OS (it survives the process crashing) and is fsynced within a
few milliseconds or records, so one fsync is shared by many batches.

Not thread-safe: the sequencer is the one writer. Readers (projections) call ``read`` and
get their own file handles, so they may run between appends.
"""

from __future__ import annotations

import bisect
import enum
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from exchange.journal.format import (
    INDEX_EVERY,
    KIND_DATA,
    JournalCorrupt,
    SegmentState,
    encode_batch,
    first_bad_crc,
    frame,
    payload,
    scan,
    segment_name,
)

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
LOCK_NAME = "LOCK"


class FsyncPolicy(enum.Enum):
    """When appended batches reach stable storage."""

    BATCH = "batch"  # group commit: fsync every ``sync_interval_ms`` or ``sync_records``
    STRICT = "strict"  # fsync before ``append_batch`` returns


def _fsync_dir(directory: Path) -> None:
    """A new segment's directory entry must be durable too, or the file can vanish."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Append-only, hash-chained, segmented log of opaque payloads with sequence numbers."""

    def __init__(self) -> None:
        raise TypeError("use Journal.open(directory)")

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        policy: FsyncPolicy = FsyncPolicy.BATCH,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        sync_interval_ms: float = 5.0,
        sync_records: int = 1000,
    ) -> Journal:
        """Open (creating if needed) the journal in ``directory`` and recover its tail.

        Every record's CRC and the whole hash chain are checked. A torn or corrupt final
        batch of the last segment is cut back to the last complete batch (logged as a
        warning); damage anywhere else raises ``JournalCorrupt``.
        """
        if segment_bytes <= 0 or sync_records <= 0 or sync_interval_ms < 0:
            raise ValueError("segment_bytes and sync_records must be > 0, interval >= 0")
        self = object.__new__(cls)
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._policy = FsyncPolicy(policy)
        self._segment_bytes = segment_bytes
        self._sync_interval = sync_interval_ms / 1000.0
        self._sync_records = sync_records
        self._lock_fd = os.open(self._dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"journal {self._dir} is already open for writing") from None
        try:
            self._recover()
        except BaseException:
            os.close(self._lock_fd)
            raise
        return self

    def _recover(self) -> None:
        result = scan(self._dir)
        if result.problem is not None:
            raise result.problem
        if result.tail is not None:
            tail = result.tail
            log.warning(
                "journal %s: %s; cut %d bytes at offset %d (back to seq %d)",
                tail.path,
                tail.reason,
                tail.cut_bytes,
                tail.offset,
                result.last_seq,
            )
            with open(tail.path, "r+b") as f:
                f.truncate(tail.offset)
                os.fsync(f.fileno())
        self._segments: list[SegmentState] = result.segments
        self._last_seq = result.last_seq
        self._head_hash = result.head_hash
        self._records = result.records
        self._batches = result.batches
        self._file = None
        if not self._segments:
            self._new_segment()
        else:
            self._file = open(self._segments[-1].path, "ab", buffering=0)  # noqa: SIM115
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self._last_indexed = self._segments[-1].index[-1][1] if self._segments[-1].index else None

    def _new_segment(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())  # never leave an unsynced tail in a non-last segment
            self._file.close()
        first = self._last_seq + 1
        path = self._dir / segment_name(first)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115
        _fsync_dir(self._dir)
        self._segments.append(SegmentState(path, first, 0))
        self._last_indexed = None

    # -- appending ---------------------------------------------------------------------------

    @property
    def head_hash(self) -> bytes:
        """Hash of the last complete batch; settlement anchors it on chain."""
        return self._head_hash

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record of the last complete batch (0 if empty)."""
        return self._last_seq

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def policy(self) -> FsyncPolicy:
        return self._policy

    @property
    def unsynced_records(self) -> int:
        """Records written to the OS but not yet fsynced."""
        return self._unsynced

    def append_batch(self, payloads: Sequence[bytes]) -> tuple[int, int]:
        """Append one batch; returns its (first_seq, last_seq).

        The batch is written with a single write, so a crash leaves at most this batch
        torn, which is exactly what recovery cuts.
        """
        if self._file is None:
            raise ValueError("journal is closed")
        if not payloads:
            raise ValueError("a batch needs at least one record")
        first = self._last_seq + 1
        data, new_hash = encode_batch(first, [bytes(p) for p in payloads], self._head_hash)
        seg = self._segments[-1]
        if seg.size > 0 and seg.size + len(data) > self._segment_bytes:
            self._new_segment()
            seg = self._segments[-1]
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]
        if self._last_indexed is None or seg.size - self._last_indexed >= INDEX_EVERY:
            seg.index.append((first, seg.size))
            self._last_indexed = seg.size
        seg.size += len(data)
        self._last_seq = first + len(payloads) - 1
        self._head_hash = new_hash
        self._records += len(payloads)
        self._batches += 1
        self._unsynced += len(payloads)
        if self._policy is FsyncPolicy.STRICT or self._unsynced >= self._sync_records:
            self.sync()
        else:
            self.tick()
        return first, self._last_seq

    def tick(self) -> bool:
        """Fsync if unsynced records are older than the group-commit interval.

        The journal owns no thread; the engine loop calls this when idle so that the last
        batch before a quiet period is still synced within the interval. Returns whether
        it synced.
        """
        if self._unsynced and time.monotonic() - self._last_sync >= self._sync_interval:
            self.sync()
            return True
        return False

    def sync(self) -> None:
        """Force everything appended so far onto stable storage."""
        if self._file is None:
            raise ValueError("journal is closed")
        os.fsync(self._file.fileno())
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Sync and release the journal (idempotent)."""
        if self._file is None:
            return
        self.sync()
        self._file.close()
        self._file = None
        os.close(self._lock_fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def read(self, from_seq: int = 1) -> Iterator[tuple[int, bytes]]:
        """(seq, payload) of every record from ``from_seq``, complete batches only.

        A projection resumes from its cursor with ``read(cursor + 1)``. The end is fixed
        when ``read`` is called: batches appended later are seen by the next call.
        """
        if from_seq < 1:
            raise ValueError("sequence numbers start at 1")
        snapshot = [(s.path, s.first_seq, s.size, list(s.index)) for s in self._segments]
        return _read(snapshot, from_seq, self._last_seq)


def _read(
    snapshot: list[tuple[Path, int, int, list[tuple[int, int]]]], from_seq: int, last_seq: int
) -> Iterator[tuple[int, bytes]]:
    if from_seq > last_seq:
        return
    starts = [first for _, first, _, _ in snapshot]
    for path, _first, size, index in snapshot[max(bisect.bisect_right(starts, from_seq) - 1, 0) :]:
        if size == 0:
            continue
        i = bisect.bisect_right([s for s, _ in index], from_seq) - 1
        offset = index[i][1] if i >= 0 else 0
        with open(path, "rb") as f:
            f.seek(offset)
            buf = f.read(size - offset)
        frames, stop = frame(buf)
        bad = first_bad_crc(buf, frames)
        if stop != len(buf) or bad is not None:
            at = offset + (stop if bad is None else frames[bad].offset)
            raise JournalCorrupt("record fails its check while reading", path, at)
        for fr in frames:
            if fr.kind == KIND_DATA and fr.seq >= from_seq:
                yield fr.seq, payload(buf, fr)
