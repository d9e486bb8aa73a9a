"""The check of a whole journal, shared by ``Journal.open``, ``verify`` and replay.

``Journal.open`` (which repairs a torn tail), ``verify`` (which only reports) and
``checked_rows`` (replay) all run this scan, so they agree on what is good, what is a torn
tail and what is corruption. It frames and CRC-checks whole segments, or pieces of them,
in numba (``framing.frame_records``), checks sequence numbers and trailer counts in a
compiled pass (``_check_batches``) and hashes in Python once per batch.
``reference.scan_reference`` is the same check record by record, and the tests hold the two
to the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from exchange.journal.crc32c import TABLES
from exchange.journal.framing import Frames, as_u8, frame_records, u32_at
from exchange.journal.layout import (
    GENESIS_HASH,
    HASH_SIZE,
    HEAD,
    HEADER_SIZE,
    KIND_DATA,
    KIND_TRAILER,
    MAGIC,
    TRAILER,
    VERSION,
    JournalCorrupt,
    chain_hasher,
    list_segments,
)
from exchange.journal.repair import TailCut, find_later_record

INDEX_EVERY = 256 * 1024  # bytes between sparse index entries
WHOLE_SEGMENT = 1 << 62  # a piece size that takes every segment in one piece
_TRAILER_LEN = TRAILER.size


@dataclass(slots=True)
class SegmentState:
    """What the scan learned about one segment; the writer keeps it up to date."""

    path: Path
    first_seq: int
    size: int  # bytes of complete, valid batches
    index: list[tuple[int, int]] = field(default_factory=list)  # sparse (batch first seq, offset)


@dataclass(slots=True)
class Scan:
    segments: list[SegmentState] = field(default_factory=list)
    records: int = 0
    batches: int = 0
    last_seq: int = 0
    head_hash: bytes = GENESIS_HASH
    problem: JournalCorrupt | None = None
    tail: TailCut | None = None


# problems found by _check_batches, in the order the reference scan would report them
_OK, _BAD_SEQ, _BAD_TRAILER, _BAD_COUNT = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _check_batches(
    data: np.ndarray,
    offsets: np.ndarray,
    kinds: np.ndarray,
    lengths: np.ndarray,
    seqs: np.ndarray,
    count: int,
    start: int,
    expected: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int, int]:
    """Group the first ``count`` frames into batches and check everything but the hashes.

    Returns per batch (first DATA offset, trailer offset, first seq, record count), the
    number of batches, and the first problem (code, frame index, expected seq there).
    Batches after a problem are not returned, so hash checks of the returned batches come
    first, as in the record-by-record scan.
    """
    starts = np.empty(count, dtype=np.int64)
    trailers = np.empty(count, dtype=np.int64)
    firsts = np.empty(count, dtype=np.int64)
    counts = np.empty(count, dtype=np.int64)
    nb = 0
    batch_start, batch_records = start, 0
    for i in range(count):
        if kinds[i] == KIND_DATA:
            if seqs[i] != expected:
                return starts, trailers, firsts, counts, nb, _BAD_SEQ, i, expected
            expected += 1
            batch_records += 1
            continue
        if lengths[i] != _TRAILER_LEN or batch_records == 0 or seqs[i] != expected - 1:
            return starts, trailers, firsts, counts, nb, _BAD_TRAILER, i, expected
        if u32_at(data, offsets[i] + HEADER_SIZE) != batch_records:
            return starts, trailers, firsts, counts, nb, _BAD_COUNT, i, expected
        starts[nb] = batch_start
        trailers[nb] = offsets[i]
        firsts[nb] = expected - batch_records
        counts[nb] = batch_records
        nb += 1
        batch_start, batch_records = offsets[i] + HEADER_SIZE + lengths[i], 0
    return starts, trailers, firsts, counts, nb, _OK, count, expected


def _whole_record_at(data: np.ndarray, pos: int) -> bool:
    """Whether a well-framed record starts at ``pos`` and ends inside ``data`` (what
    ``record_end`` says, in Python: called once per piece, it is not worth a compiled
    call, which a fresh process would first have to load)."""
    if len(data) - pos < HEADER_SIZE:
        return False
    magic, version, kind, length, _seq = HEAD.unpack_from(data, pos)  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+
    if magic != MAGIC or version != VERSION or kind not in (KIND_DATA, KIND_TRAILER):
        return False
    return pos + HEADER_SIZE + length <= len(data)


Reader = Callable[[Path, int], "bytes | bytearray | memoryview"]


def scan(directory: Path, *, piece: int = WHOLE_SEGMENT) -> Scan:
    """Check every segment's framing, CRCs, sequence numbers and hash chain.

    Never modifies anything. A damaged or incomplete final batch of the last segment is
    reported as ``tail``; any other damage as ``problem`` (scanning stops there).

    Framing, CRCs, sequence numbers and trailer counts are checked by compiled passes over
    the whole segment; Python only hashes, once per batch. ``scan_reference`` is the same
    check record by record, and the tests hold the two to the same answers.
    """
    result = Scan()
    read: Reader = lambda path, _size: path.read_bytes()  # noqa: E731
    for _ in scan_segments(directory, result, read, piece=piece):
        pass  # the generator fills ``result`` as it goes; the rows are not needed here
    return result


def scan_segments(
    directory: Path,
    result: Scan,
    read: Reader,
    *,
    every: int = 1 << 62,
    piece: int = WHOLE_SEGMENT,
    fill: Callable[[int], None] | None = None,
) -> Iterator[tuple[np.ndarray, Frames, int]]:
    """``scan`` one segment at a time, filling ``result`` as it goes.

    Yields ``(data, frames, good)``: a segment's bytes as read by ``read(path, size)``,
    frames of the part checked last (about ``piece`` bytes: a segment can be framed and
    checked a piece at a time; ``scan`` takes it whole), and how many of those frames
    belong to batches that passed every check (CRC, sequence, count, hash chain). A yield
    comes after about ``every`` more records are hashed and after each piece, so a caller
    (``replay``) can start on the first rows long before the segment is checked to its
    end. The bytes stay valid until the next segment is read, so a reader may hand out
    the same buffer again. Frames past a problem are never counted as good; scanning
    stops at the segment where ``result.problem`` or ``result.tail`` is set.

    With ``fill``, ``read`` may return the buffer before its bytes are in: ``fill(n)`` is
    called before the first ``n`` bytes are looked at, so a piece is checked as soon as it
    has been read rather than after the whole segment.
    """
    segments = list_segments(directory)
    expected = 1
    for n, (first_seq, path) in enumerate(segments):
        if first_seq != expected:
            result.problem = JournalCorrupt(
                f"segment starts at seq {first_seq}, expected {expected}", path, 0
            )
            return
        buf = read(path, path.stat().st_size)
        is_last = n == len(segments) - 1
        yield from _scan_segment(result, path, first_seq, buf, is_last, every, piece, fill)
        if result.problem is not None or result.tail is not None:
            return
        expected = result.last_seq + 1


def _scan_segment(
    result: Scan,
    path: Path,
    first_seq: int,
    buf: bytes | bytearray | memoryview,
    is_last: bool,
    every: int,
    piece: int,
    fill: Callable[[int], None] | None,
) -> Iterator[tuple[np.ndarray, Frames, int]]:
    """Check one segment into ``result``, a piece at a time, yielding as ``scan_segments``
    describes. A piece ends at ``piece`` bytes; a record cut by that boundary is not
    damage, and the batch it belongs to is checked again with the next piece."""
    seg = SegmentState(path, first_seq, 0)
    result.segments.append(seg)
    data = as_u8(buf)
    size = len(data)
    pos = 0  # where the first batch not yet checked starts
    last_indexed = -INDEX_EVERY
    step = piece
    while True:
        limit = size if size - pos <= step else pos + step
        if fill is not None:
            fill(limit)
        frames = frame_records(data[:limit], pos)
        bad = frames.first_bad_crc()
        good = len(frames) if bad is None else bad
        expected = result.last_seq + 1
        starts, trailers, firsts, counts, nb, code, at, at_expected = _check_batches(
            data, frames.offset, frames.kind, frames.length, frames.seq, good, pos, expected
        )
        view = memoryview(data)  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+
        head = result.head_hash
        hashed = 0
        unreported = 0  # records hashed since the last yield
        for k in range(nb):
            start, trailer = int(starts[k]), int(trailers[k])
            h = chain_hasher(head)
            h.update(view[start:trailer])
            computed = h.digest()
            if view[trailer + HEADER_SIZE + 4 : trailer + HEADER_SIZE + 4 + HASH_SIZE] != computed:
                break
            if start - last_indexed >= INDEX_EVERY:
                seg.index.append((int(firsts[k]), start))
                last_indexed = start
            head = computed
            hashed += 1
            unreported += int(counts[k])
            if unreported >= every and k + 1 < nb:
                unreported = 0
                yield data, frames, int(np.searchsorted(frames.offset, trailer)) + 1
        if hashed:
            result.head_hash = head
            result.records += int(counts[:hashed].sum())
            result.batches += hashed
            result.last_seq = int(firsts[hashed - 1] + counts[hashed - 1]) - 1
            pos = int(trailers[hashed - 1]) + HEADER_SIZE + TRAILER.size
        yield data, frames, int(np.searchsorted(frames.offset, pos))
        if hashed < nb or code == _BAD_COUNT:
            offset = int(trailers[hashed]) if hashed < nb else int(frames.offset[at])
            result.problem = JournalCorrupt(
                "hash chain broken: trailer hash does not match the batch", path, offset
            )
            return
        if code == _BAD_SEQ:
            got = int(frames.seq[at]) & 0xFFFF_FFFF_FFFF_FFFF
            result.problem = JournalCorrupt(
                f"record has seq {got}, expected {at_expected}", path, int(frames.offset[at])
            )
            return
        if code == _BAD_TRAILER:
            result.problem = JournalCorrupt("malformed batch trailer", path, int(frames.offset[at]))
            return
        cut_by_boundary = limit < size and bad is None
        if cut_by_boundary and fill is not None:
            fill(frames.stop + HEADER_SIZE)  # the header of the record the piece cut
        if cut_by_boundary and (frames.stop == limit or _whole_record_at(data, frames.stop)):
            step = piece if hashed else 2 * step  # a batch larger than a piece: widen
            continue
        damage = frames.stop if bad is None else int(frames.offset[bad])
        break
    seg.size = pos
    if pos == size:
        return
    if fill is not None:
        fill(size)  # what follows the damage decides between a torn tail and corruption
    reason = "incomplete batch (no trailer)" if damage == size else "torn or corrupt record"
    later = find_later_record(TABLES, data, damage, result.last_seq + 1) if damage < size else -1
    if not is_last or later >= 0:
        what = "valid records follow it" if later >= 0 else "it is not the last segment"
        result.problem = JournalCorrupt(
            f"{reason} before the tail ({what}); refusing to start", path, damage
        )
        return
    result.tail = TailCut(path, pos, size, reason)
