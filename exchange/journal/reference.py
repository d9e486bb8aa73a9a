"""The journal check record by record in plain Python: the oracle of the compiled scan.

``frame``/``first_bad_crc`` follow the same rules as ``framing.frame_records``,
``_find_later_batch`` as ``repair.find_later_record`` and ``scan_reference`` as
``scan.scan``, with a ``Frame`` and a struct unpack per record: slow, written to be
obviously right, and not used by the journal itself. The tests hold the two paths to the
same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exchange.journal.crc32c import crc32c_many
from exchange.journal.layout import (
    CRC,
    HEAD,
    HEADER_SIZE,
    KIND_DATA,
    KIND_TRAILER,
    MAGIC,
    TRAILER,
    VERSION,
    JournalCorrupt,
    batch_hash,
    list_segments,
)
from exchange.journal.repair import TailCut
from exchange.journal.scan import INDEX_EVERY, Scan, SegmentState

_RESYNC = MAGIC + bytes([VERSION])


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed record: where it is and what its header says."""

    offset: int
    kind: int
    length: int
    seq: int
    crc: int

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.length


def frame(buf: bytes, start: int = 0) -> tuple[list[Frame], int]:
    """Frame records from ``start`` until the end or the first unframeable header.

    Returns the frames and the offset where framing stopped (``len(buf)`` if clean).
    CRCs are not checked here, so that they can be checked in bulk.
    """
    frames = []
    pos, n = start, len(buf)
    while pos < n:
        if n - pos < HEADER_SIZE:
            break
        magic, version, kind, length, seq = HEAD.unpack_from(buf, pos)
        if magic != MAGIC or version != VERSION or kind not in (KIND_DATA, KIND_TRAILER):
            break
        if pos + HEADER_SIZE + length > n:
            break
        (crc,) = CRC.unpack_from(buf, pos + HEAD.size)
        frames.append(Frame(pos, kind, length, seq, crc))
        pos += HEADER_SIZE + length
    return frames, pos


def first_bad_crc(buf: bytes, frames: Sequence[Frame]) -> int | None:
    """Index of the first frame whose CRC does not match, or None."""
    bodies = [
        buf[f.offset : f.offset + HEAD.size] + buf[f.offset + HEADER_SIZE : f.end] for f in frames
    ]
    for i, (f, c) in enumerate(zip(frames, crc32c_many(bodies), strict=True)):
        if f.crc != c:
            return i
    return None


def payload(buf: bytes, f: Frame) -> bytes:
    return buf[f.offset + HEADER_SIZE : f.end]


def _find_later_batch(buf: bytes, damage: int, batch_first: int) -> int | None:
    """Offset of a valid record proving that good data follows the damage, or None.

    A crash tears only the batch being written, so after a torn tail there can be at most
    records of that same batch. A valid TRAILER of another batch, or any valid record after
    the damaged batch's own TRAILER, shows that the damage is in the middle of the history.
    """
    own_trailer_end = None
    pos = buf.find(_RESYNC, damage + 1)
    while pos != -1:
        rec = buf[pos : pos + HEADER_SIZE + _peek_length(buf, pos)]
        frames, _ = frame(rec)
        if not frames or first_bad_crc(rec, frames[:1]) is not None:
            pos = buf.find(_RESYNC, pos + 1)
            continue
        f = frames[0]
        if own_trailer_end is not None and pos >= own_trailer_end:
            return pos
        if f.kind == KIND_TRAILER and f.length == TRAILER.size:
            (count, _h) = TRAILER.unpack_from(rec, HEADER_SIZE)
            if f.seq - count + 1 != batch_first:
                return pos
            own_trailer_end = pos + f.end
        pos = buf.find(_RESYNC, pos + f.end)
    return None


def _peek_length(buf: bytes, pos: int) -> int:
    if len(buf) - pos < HEAD.size:
        return 0
    return HEAD.unpack_from(buf, pos)[3]


def scan_reference(directory: Path) -> Scan:
    """``scan`` record by record in plain Python: the oracle the compiled scan is tested against.

    Slow (a Frame and a struct unpack per record); not used by the journal itself.
    """
    result = Scan()
    segments = list_segments(directory)
    expected = 1
    for n, (first_seq, path) in enumerate(segments):
        is_last = n == len(segments) - 1
        if first_seq != expected:
            result.problem = JournalCorrupt(
                f"segment starts at seq {first_seq}, expected {expected}", path, 0
            )
            return result
        buf = path.read_bytes()
        seg = SegmentState(path, first_seq, 0)
        result.segments.append(seg)
        frames, stop = frame(buf)
        bad = first_bad_crc(buf, frames)
        damage = stop if bad is None else frames[bad].offset
        if bad is not None:
            frames = frames[:bad]
        batch_start = 0  # offset of the current batch's first DATA record
        batch_records = 0
        last_indexed = -INDEX_EVERY
        for f in frames:
            if f.kind == KIND_DATA:
                if f.seq != expected:
                    result.problem = JournalCorrupt(
                        f"record has seq {f.seq}, expected {expected}", path, f.offset
                    )
                    return result
                expected += 1
                batch_records += 1
                continue
            if f.length != TRAILER.size or batch_records == 0 or f.seq != expected - 1:
                result.problem = JournalCorrupt("malformed batch trailer", path, f.offset)
                return result
            count, stored = TRAILER.unpack_from(buf, f.offset + HEADER_SIZE)
            computed = batch_hash(result.head_hash, buf[batch_start : f.offset])
            if count != batch_records or stored != computed:
                result.problem = JournalCorrupt(
                    "hash chain broken: trailer hash does not match the batch", path, f.offset
                )
                return result
            if batch_start - last_indexed >= INDEX_EVERY:
                seg.index.append((expected - batch_records, batch_start))
                last_indexed = batch_start
            result.head_hash = computed
            result.records += batch_records
            result.batches += 1
            result.last_seq = expected - 1
            batch_start, batch_records = f.end, 0
        seg.size = batch_start
        expected = result.last_seq + 1
        if batch_start == len(buf):
            continue
        reason = "incomplete batch (no trailer)" if damage == len(buf) else "torn or corrupt record"
        later = _find_later_batch(buf, damage, expected) if damage < len(buf) else None
        if not is_last or later is not None:
            what = "valid records follow it" if later is not None else "it is not the last segment"
            result.problem = JournalCorrupt(
                f"{reason} before the tail ({what}); refusing to start", path, damage
            )
            return result
        result.tail = TailCut(path, batch_start, len(buf), reason)
    return result
