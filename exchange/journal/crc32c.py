"""CRC32C (Castagnoli), the checksum of every journal record.

CRC32C rather than zlib's CRC32 because it is what storage systems use for the same job
(iSCSI, ext4 metadata, LevelDB/RocksDB logs) and has better error detection for the burst
errors a torn write produces. No CRC32C package is pinned in the project, so this is
slicing-by-8 (eight 256-entry tables, eight bytes per step instead of one) compiled with
numba; ``crc32c_many`` checks a whole batch of records in one compiled call, so the journal
pays one call per batch, not per record. ``crc_update`` is the kernel the journal's own
numba code (record framing and encoding) calls directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)

POLY = 0x82F63B78  # Castagnoli polynomial 0x1EDC6F41, bit-reflected
_MASK = 0xFFFFFFFF


def _make_tables() -> np.ndarray:
    """``t[0]`` is the classic byte table; ``t[k][b]`` is the CRC of byte b followed by k zeros."""
    tables = np.zeros((8, 256), dtype=np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        tables[0, i] = c
    for k in range(1, 8):
        for i in range(256):
            c = int(tables[k - 1, i])
            tables[k, i] = (c >> 8) ^ int(tables[0, c & 0xFF])
    return tables


TABLES = _make_tables()
TABLE = TABLES[0].copy()  # the one-byte table, kept for callers of the old layout


@njit(cache=True, inline="always")
def crc_step(tables: np.ndarray, data: np.ndarray, i: int, c: int) -> int:
    """Eight bytes ``data[i:i+8]`` into raw state ``c``: eight table lookups, no loop."""
    lo = c ^ (
        np.int64(data[i])
        | (np.int64(data[i + 1]) << 8)
        | (np.int64(data[i + 2]) << 16)
        | (np.int64(data[i + 3]) << 24)
    )
    return (
        tables[7, lo & 0xFF]
        ^ tables[6, (lo >> 8) & 0xFF]
        ^ tables[5, (lo >> 16) & 0xFF]
        ^ tables[4, (lo >> 24) & 0xFF]
        ^ tables[3, data[i + 4]]
        ^ tables[2, data[i + 5]]
        ^ tables[1, data[i + 6]]
        ^ tables[0, data[i + 7]]
    )


@njit(cache=True, nogil=True)
def crc_update(tables: np.ndarray, data: np.ndarray, start: int, end: int, state: int) -> int:
    """Advance a raw (pre-inverted) CRC state over ``data[start:end]``, eight bytes a step.

    Working on the raw state lets callers chain ranges, e.g. a record's header and payload
    around its CRC field, without inverting in between.
    """
    if start < 0:  # also tells LLVM the indices are >= 0, dropping numba's wraparound checks
        raise IndexError("negative start")
    c = state
    i = start
    while i + 8 <= end:
        c = crc_step(tables, data, i, c)
        i += 8
    while i < end:
        c = tables[0, (c ^ data[i]) & 0xFF] ^ (c >> 8)
        i += 1
    return c


@njit(cache=True, inline="always")
def crc_update2(
    tables: np.ndarray,
    data: np.ndarray,
    start_a: int,
    end_a: int,
    state_a: int,
    start_b: int,
    end_b: int,
    state_b: int,
) -> tuple[int, int]:
    """``crc_update`` over two independent ranges at once.

    One CRC is a chain of dependent table lookups, so a core mostly waits on it;
    interleaving two records' chains keeps it busy and nearly doubles throughput.
    """
    if start_a < 0 or start_b < 0:  # see crc_update
        raise IndexError("negative start")
    a, b = state_a, state_b
    common = min(end_a - start_a, end_b - start_b)
    i = 0
    while i + 8 <= common:
        a = crc_step(tables, data, start_a + i, a)
        b = crc_step(tables, data, start_b + i, b)
        i += 8
    return crc_update(tables, data, start_a + i, end_a, a), crc_update(
        tables, data, start_b + i, end_b, b
    )


@njit(cache=True, nogil=True)
def _crc(tables: np.ndarray, data: np.ndarray, start: int, end: int, crc: int) -> int:
    return crc_update(tables, data, start, end, crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _crc_each(tables: np.ndarray, data: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    out = np.empty(bounds.shape[0] - 1, dtype=np.int64)
    n = out.shape[0]
    for k in range(0, n - 1, 2):
        a, b = crc_update2(
            tables, data, bounds[k], bounds[k + 1], _MASK, bounds[k + 1], bounds[k + 2], _MASK
        )
        out[k], out[k + 1] = a ^ _MASK, b ^ _MASK
    if n % 2:
        out[n - 1] = _crc(tables, data, bounds[n - 1], bounds[n], 0)
    return out


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of ``data``; pass a previous result as ``crc`` to continue over more bytes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    return int(_crc(TABLES, buf, 0, buf.shape[0], crc & _MASK))


def crc32c_many(buffers: Sequence[bytes]) -> list[int]:
    """CRC32C of each buffer, all in one compiled call."""
    if not buffers:
        return []
    bounds = np.zeros(len(buffers) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in buffers], out=bounds[1:])
    joined = np.frombuffer(b"".join(buffers), dtype=np.uint8)
    return _crc_each(TABLES, joined, bounds).tolist()


def throughput(records: int = 1000, size: int = 136, repeat: int = 3) -> tuple[float, float]:
    """Measured MB/s of ``crc32c`` on one buffer and of ``crc32c_many`` on a batch."""
    bufs = [bytes([(i * 7 + j) & 0xFF for j in range(size)]) for i in range(records)]
    one = b"".join(bufs)
    best_one = best_many = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        crc32c(one)
        t1 = time.perf_counter()
        crc32c_many(bufs)
        t2 = time.perf_counter()
        best_one, best_many = min(best_one, t1 - t0), min(best_many, t2 - t1)
    return len(one) / best_one / 1e6, len(one) / best_many / 1e6
