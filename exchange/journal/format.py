"""The on-disk format of the journal, and the scan that checks it.

A record is ``header | crc | payload``: header = magic ``b"CJ"``, version, kind, payload
length (u32), sequence number (u64), little-endian, 16 bytes; then the CRC32C (u32) of the
header and payload. Every record carries its own length so a reader can frame the file
without an index, and its own sequence number so a gap or a duplicate is visible.

A batch is one or more DATA records followed by a TRAILER record whose ``seq`` is the last
sequence number of the batch and whose payload is ``count (u32) | hash (32 bytes)``, where
hash = SHA-256(previous batch hash || bytes of the batch's DATA records). The genesis
"previous hash" is 32 zero bytes. Chaining batches rather than records keeps the hashing
cost per group commit, and the head hash is what settlement anchors on chain. SHA-256
because anyone verifying an anchored head has it everywhere (Solana included), and CPUs
with SHA extensions hash it about twice as fast as blake2b (``chain_hasher``).

The scan is shared by ``Journal.open`` (which repairs a torn tail) and ``verify`` (which
only reports), so both agree on what is good, what is a torn tail and what is corruption.
It frames and CRC-checks whole segments in numba (``frame_records``) and hashes once per
batch, so opening a journal of millions of records takes a fraction of a second;
``frame``/``first_bad_crc``/``scan_reference`` are the same logic record by record in plain
Python, kept as the oracle the compiled path is tested against.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from exchange.journal.crc32c import TABLES, crc32c, crc32c_many, crc_step, crc_update

MAGIC = b"CJ"
VERSION = 1
KIND_DATA = 0
KIND_TRAILER = 1
HEAD = struct.Struct("<2sBBIQ")  # magic, version, kind, payload length, seq
CRC = struct.Struct("<I")
TRAILER = struct.Struct("<I32s")  # record count, batch hash
HEADER_SIZE = HEAD.size + CRC.size  # 20
HASH_SIZE = 32
GENESIS_HASH = bytes(HASH_SIZE)
SEGMENT_SUFFIX = ".cxj"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.cxj$")
_RESYNC = MAGIC + bytes([VERSION])


class JournalCorrupt(Exception):
    """The journal is damaged somewhere other than its tail; it must not be started on.

    Silently dropping good-looking data after a damaged record would rewrite history that
    was acknowledged, so the operator has to look (``cx verify``) and decide.
    """

    def __init__(self, message: str, path: Path | None = None, offset: int | None = None):
        where = f"{path} at offset {offset}: " if path is not None else ""
        super().__init__(where + message)
        self.path = path
        self.offset = offset


def segment_name(first_seq: int) -> str:
    """Segments are named by their first sequence number, so they sort by name."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first sequence number, path) of every segment file in ``directory``, in order."""
    found = []
    for entry in os.scandir(directory):
        m = _SEGMENT_NAME.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def chain_hasher(prev_hash: bytes) -> hashlib._Hash:
    """The running hash of one batch: feed it the batch's DATA record bytes."""
    return hashlib.sha256(prev_hash)


def batch_hash(prev_hash: bytes, data_records: bytes) -> bytes:
    h = chain_hasher(prev_hash)
    h.update(data_records)
    return h.digest()


def encode_batch(
    first_seq: int, payloads: Sequence[bytes], prev_hash: bytes
) -> tuple[bytes, bytes]:
    """The bytes of one batch (DATA records then TRAILER) and its chained hash."""
    heads = [
        HEAD.pack(MAGIC, VERSION, KIND_DATA, len(p), first_seq + i) for i, p in enumerate(payloads)
    ]
    crcs = crc32c_many([h + p for h, p in zip(heads, payloads, strict=True)])
    data = b"".join(h + CRC.pack(c) + p for h, c, p in zip(heads, crcs, payloads, strict=True))
    new_hash = batch_hash(prev_hash, data)
    last_seq = first_seq + len(payloads) - 1
    body = TRAILER.pack(len(payloads), new_hash)
    head = HEAD.pack(MAGIC, VERSION, KIND_TRAILER, len(body), last_seq)
    return data + head + CRC.pack(crc32c(head + body)) + body, new_hash


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


# -- bulk framing in numba (the path scan, read and read_rows take) ----------------------------

_M0, _M1 = MAGIC[0], MAGIC[1]
_TRAILER_LEN = TRAILER.size
_CRC_AT = HEAD.size  # offset of the CRC field inside a record
assert _CRC_AT == 16, "record_crcs hashes the header as two 8-byte steps"


@njit(cache=True, nogil=True)
def _u32(data: np.ndarray, p: int) -> int:
    return (
        np.int64(data[p])
        | (np.int64(data[p + 1]) << 8)
        | (np.int64(data[p + 2]) << 16)
        | (np.int64(data[p + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def _i64(data: np.ndarray, p: int) -> int:
    """A little-endian u64 read as int64 (a seq >= 2**63 shows as negative, hence invalid)."""
    return _u32(data, p) | (_u32(data, p + 4) << 32)


@njit(cache=True, nogil=True)
def _record_end(data: np.ndarray, pos: int) -> int:
    """End offset of a well-framed record at ``pos``, or -1 (same rules as ``frame``)."""
    n = data.shape[0]
    if n - pos < HEADER_SIZE:
        return -1
    if data[pos] != _M0 or data[pos + 1] != _M1 or data[pos + 2] != VERSION:
        return -1
    if data[pos + 3] != KIND_DATA and data[pos + 3] != KIND_TRAILER:
        return -1
    end = pos + HEADER_SIZE + _u32(data, pos + 4)
    return end if end <= n else -1


@njit(cache=True, nogil=True)
def _record_crc_ok(tables: np.ndarray, data: np.ndarray, pos: int, end: int) -> bool:
    c = crc_update(tables, data, pos, pos + _CRC_AT, 0xFFFFFFFF)
    c = crc_update(tables, data, pos + HEADER_SIZE, end, c) ^ 0xFFFFFFFF
    return c == _u32(data, pos + _CRC_AT)


@njit(cache=True, nogil=True)
def record_crcs(
    tables: np.ndarray, data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, out: np.ndarray
) -> None:
    """The CRC each record at ``offsets`` should carry (header then payload, skipping the field).

    Two records at a time: one CRC is a chain of dependent lookups, two chains keep a core
    busy (about 2x). The ``< 0`` guards let LLVM drop numba's negative-index wraparound.
    """
    n = offsets.shape[0]
    for k in range(0, n - 1, 2):
        p, q = offsets[k], offsets[k + 1]
        if p < 0 or q < 0:
            raise IndexError("negative record offset")
        a = crc_step(tables, data, p, 0xFFFFFFFF)  # the 16-byte header is two steps
        b = crc_step(tables, data, q, 0xFFFFFFFF)
        a = crc_step(tables, data, p + 8, a)
        b = crc_step(tables, data, q + 8, b)
        len_a, len_b = lengths[k], lengths[k + 1]
        common = min(len_a, len_b)
        i = 0
        while i + 8 <= common:
            a = crc_step(tables, data, p + HEADER_SIZE + i, a)
            b = crc_step(tables, data, q + HEADER_SIZE + i, b)
            i += 8
        a = crc_update(tables, data, p + HEADER_SIZE + i, p + HEADER_SIZE + len_a, a)
        b = crc_update(tables, data, q + HEADER_SIZE + i, q + HEADER_SIZE + len_b, b)
        out[k] = a ^ 0xFFFFFFFF
        out[k + 1] = b ^ 0xFFFFFFFF
    if n % 2:
        p = offsets[n - 1]
        c = crc_update(tables, data, p, p + _CRC_AT, 0xFFFFFFFF)
        p += HEADER_SIZE
        out[n - 1] = crc_update(tables, data, p, p + lengths[n - 1], c) ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _count_frames(data: np.ndarray, start: int) -> tuple[int, int]:
    if start < 0:
        raise IndexError("negative start")
    count, pos = 0, start
    while True:
        end = _record_end(data, pos)
        if end < 0:
            return count, pos
        count += 1
        pos = end


@njit(cache=True, nogil=True)
def _fill_frames(
    tables: np.ndarray,
    data: np.ndarray,
    start: int,
    check_crc: bool,
    offsets: np.ndarray,
    kinds: np.ndarray,
    lengths: np.ndarray,
    seqs: np.ndarray,
    crc_ok: np.ndarray,
) -> None:
    if start < 0:
        raise IndexError("negative start")
    pos = start
    for i in range(offsets.shape[0]):
        end = _record_end(data, pos)
        offsets[i] = pos
        kinds[i] = data[pos + 3]
        lengths[i] = end - pos - HEADER_SIZE
        seqs[i] = _i64(data, pos + 8)
        pos = end
    if not check_crc:
        crc_ok[:] = True
        return
    computed = np.empty(offsets.shape[0], dtype=np.int64)
    record_crcs(tables, data, offsets, lengths, computed)
    for i in range(offsets.shape[0]):
        crc_ok[i] = computed[i] == _u32(data, offsets[i] + _CRC_AT)


@dataclass(frozen=True, slots=True, eq=False)
class Frames:
    """Columns of the records framed from a buffer: what ``frame`` returns, as arrays.

    ``seq`` is the header's u64 read as int64. ``stop`` is where framing stopped (the
    buffer's length if it framed cleanly); ``crc_ok`` is all True if CRCs were not checked.
    """

    offset: np.ndarray  # int64, record start
    kind: np.ndarray  # uint8
    length: np.ndarray  # int64, payload bytes
    seq: np.ndarray  # int64
    crc_ok: np.ndarray  # bool
    stop: int

    def __len__(self) -> int:
        return self.offset.shape[0]

    def first_bad_crc(self) -> int | None:
        """Index of the first record whose CRC does not match, or None."""
        bad = np.flatnonzero(~self.crc_ok)
        return int(bad[0]) if bad.size else None


def as_u8(buf: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """A uint8 view of ``buf`` (no copy unless it is a non-contiguous array): what kernels take."""
    if isinstance(buf, np.ndarray):
        return buf if buf.dtype == np.uint8 and buf.ndim == 1 else buf.reshape(-1).view(np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)


def frame_records(
    buf: bytes | bytearray | memoryview | np.ndarray, start: int = 0, *, check_crc: bool = True
) -> Frames:
    """Frame (and CRC-check) every record from ``start`` in two compiled passes.

    The same framing as ``frame`` + ``first_bad_crc``, without a Python object per record:
    one pass counts the records so the second can fill exactly sized arrays.
    """
    if start < 0:
        raise ValueError("start must be >= 0")
    data = as_u8(buf)
    count, stop = _count_frames(data, start)
    offsets = np.empty(count, dtype=np.int64)
    kinds = np.empty(count, dtype=np.uint8)
    lengths = np.empty(count, dtype=np.int64)
    seqs = np.empty(count, dtype=np.int64)
    crc_ok = np.empty(count, dtype=np.bool_)
    _fill_frames(TABLES, data, start, check_crc, offsets, kinds, lengths, seqs, crc_ok)
    return Frames(offsets, kinds, lengths, seqs, crc_ok, int(stop))


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
        if _u32(data, offsets[i] + HEADER_SIZE) != batch_records:
            return starts, trailers, firsts, counts, nb, _BAD_COUNT, i, expected
        starts[nb] = batch_start
        trailers[nb] = offsets[i]
        firsts[nb] = expected - batch_records
        counts[nb] = batch_records
        nb += 1
        batch_start, batch_records = offsets[i] + HEADER_SIZE + lengths[i], 0
    return starts, trailers, firsts, counts, nb, _OK, count, expected


@njit(cache=True, nogil=True)
def _find_later(tables: np.ndarray, data: np.ndarray, damage: int, batch_first: int) -> int:
    """Compiled ``_find_later_batch``: offset of a record proving good data follows, or -1."""
    n = data.shape[0]
    own_trailer_end = -1
    pos = damage + 1
    while pos + 3 <= n:
        if data[pos] != _M0 or data[pos + 1] != _M1 or data[pos + 2] != VERSION:
            pos += 1
            continue
        end = _record_end(data, pos)
        if end < 0 or not _record_crc_ok(tables, data, pos, end):
            pos += 1
            continue
        if own_trailer_end >= 0 and pos >= own_trailer_end:
            return pos
        if data[pos + 3] == KIND_TRAILER and end - pos - HEADER_SIZE == _TRAILER_LEN:
            if _i64(data, pos + 8) - _u32(data, pos + HEADER_SIZE) + 1 != batch_first:
                return pos
            own_trailer_end = end
        pos = end
    return -1


@dataclass(slots=True)
class SegmentState:
    """What the scan learned about one segment; the writer keeps it up to date."""

    path: Path
    first_seq: int
    size: int  # bytes of complete, valid batches
    index: list[tuple[int, int]] = field(default_factory=list)  # sparse (batch first seq, offset)


INDEX_EVERY = 256 * 1024  # bytes between sparse index entries


@dataclass(frozen=True, slots=True)
class TailCut:
    """A torn or corrupt tail of the last segment: bytes from ``offset`` to ``size``."""

    path: Path
    offset: int
    size: int
    reason: str

    @property
    def cut_bytes(self) -> int:
        return self.size - self.offset


@dataclass(slots=True)
class Scan:
    segments: list[SegmentState] = field(default_factory=list)
    records: int = 0
    batches: int = 0
    last_seq: int = 0
    head_hash: bytes = GENESIS_HASH
    problem: JournalCorrupt | None = None
    tail: TailCut | None = None


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


def _whole_record_at(data: np.ndarray, pos: int) -> bool:
    """Whether a well-framed record starts at ``pos`` and ends inside ``data`` (what
    ``_record_end`` says, in Python: called once per piece, it is not worth a compiled
    call, which a fresh process would first have to load)."""
    if len(data) - pos < HEADER_SIZE:
        return False
    magic, version, kind, length, _seq = HEAD.unpack_from(data, pos)
    if magic != MAGIC or version != VERSION or kind not in (KIND_DATA, KIND_TRAILER):
        return False
    return pos + HEADER_SIZE + length <= len(data)


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


WHOLE_SEGMENT = 1 << 62  # a piece size that takes every segment in one piece


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
        pass
    return result


Reader = Callable[[Path, int], "bytes | bytearray | memoryview"]


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
        view = memoryview(data)
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
    later = _find_later(TABLES, data, damage, result.last_seq + 1) if damage < size else -1
    if not is_last or later >= 0:
        what = "valid records follow it" if later >= 0 else "it is not the last segment"
        result.problem = JournalCorrupt(
            f"{reason} before the tail ({what}); refusing to start", path, damage
        )
        return
    result.tail = TailCut(path, pos, size, reason)
