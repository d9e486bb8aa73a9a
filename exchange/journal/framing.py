"""Framing and CRC-checking records in bulk, compiled: the path scan, replay and read take.

``frame_records`` cuts a buffer into records (``layout``) and checks every CRC in two
compiled passes, returning columns instead of a Python object per record, so opening a
journal of millions of records takes a fraction of a second. ``reference.frame`` and
``reference.first_bad_crc`` are the same rules record by record, the oracle this is tested
against. The small readers (``u32_at``, ``record_end``, ...) are also what the compiled
scan and tail check build on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from exchange.journal.crc32c import TABLES, crc_step, crc_update
from exchange.journal.layout import HEAD, HEADER_SIZE, KIND_DATA, KIND_TRAILER, MAGIC, VERSION

M0, M1 = MAGIC[0], MAGIC[1]
CRC_AT = HEAD.size  # offset of the CRC field inside a record
assert CRC_AT == 16, "record_crcs hashes the header as two 8-byte steps"


@njit(cache=True, nogil=True)
def u32_at(data: np.ndarray, p: int) -> int:
    """The little-endian u32 at ``p``."""
    return int(
        np.int64(data[p])
        | (np.int64(data[p + 1]) << 8)
        | (np.int64(data[p + 2]) << 16)
        | (np.int64(data[p + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def i64_at(data: np.ndarray, p: int) -> int:
    """A little-endian u64 read as int64 (a seq >= 2**63 shows as negative, hence invalid)."""
    return u32_at(data, p) | (u32_at(data, p + 4) << 32)


@njit(cache=True, nogil=True)
def record_end(data: np.ndarray, pos: int) -> int:
    """End offset of a well-framed record at ``pos``, or -1 (same rules as ``frame``)."""
    n = data.shape[0]
    if n - pos < HEADER_SIZE:
        return -1
    if data[pos] != M0 or data[pos + 1] != M1 or data[pos + 2] != VERSION:
        return -1
    if data[pos + 3] != KIND_DATA and data[pos + 3] != KIND_TRAILER:
        return -1
    end = pos + HEADER_SIZE + u32_at(data, pos + 4)
    return end if end <= n else -1


@njit(cache=True, nogil=True)
def record_crc_ok(tables: np.ndarray, data: np.ndarray, pos: int, end: int) -> bool:
    """Whether the record from ``pos`` to ``end`` carries the CRC of its header and payload."""
    c = crc_update(tables, data, pos, pos + CRC_AT, 0xFFFFFFFF)
    c = crc_update(tables, data, pos + HEADER_SIZE, end, c) ^ 0xFFFFFFFF
    return c == u32_at(data, pos + CRC_AT)


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
        c = crc_update(tables, data, p, p + CRC_AT, 0xFFFFFFFF)
        p += HEADER_SIZE
        out[n - 1] = crc_update(tables, data, p, p + lengths[n - 1], c) ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _count_frames(data: np.ndarray, start: int) -> tuple[int, int]:
    if start < 0:
        raise IndexError("negative start")
    count, pos = 0, start
    while True:
        end = record_end(data, pos)
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
        end = record_end(data, pos)
        offsets[i] = pos
        kinds[i] = data[pos + 3]
        lengths[i] = end - pos - HEADER_SIZE
        seqs[i] = i64_at(data, pos + 8)
        pos = end
    if not check_crc:
        crc_ok[:] = True
        return
    computed = np.empty(offsets.shape[0], dtype=np.int64)
    record_crcs(tables, data, offsets, lengths, computed)
    for i in range(offsets.shape[0]):
        crc_ok[i] = computed[i] == u32_at(data, offsets[i] + CRC_AT)


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
