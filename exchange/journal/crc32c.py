"""CRC32C (Castagnoli), the checksum of every journal record.

CRC32C rather than zlib's CRC32 because it is what storage systems use for the same job
(iSCSI, ext4 metadata, LevelDB/RocksDB logs) and has better error detection for the burst
errors a torn write produces. No CRC32C package is pinned in the project, so this is a
256-entry table implementation in Python, made usable by vectorising *across records*:
a journal batch is many records of the same length (one engine command row each), so
``crc32c_many`` stacks them into a numpy matrix and advances all their CRCs one byte
column at a time. Measured on the development machine (2 vCPU, CPython 3.11, numpy 2.4):
about 11 MB/s for one buffer (``crc32c``, one Python step per byte), about 150 MB/s for a
batch of 1,000 136-byte records and 240 MB/s for 10,000 (``crc32c_many``); see
``throughput()``. Single large payloads stay at the slow rate: the engine's are 120 bytes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

POLY = 0x82F63B78  # Castagnoli polynomial 0x1EDC6F41, bit-reflected
_MASK = 0xFFFFFFFF
_MIN_VECTOR = 8  # below this many same-length buffers the numpy set-up costs more than it saves


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


TABLE = _make_table()
_NP_TABLE = np.array(TABLE, dtype=np.uint32)


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of ``data``; pass a previous result as ``crc`` to continue over more bytes."""
    c = crc ^ _MASK
    t = TABLE
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ _MASK


def crc32c_many(buffers: Sequence[bytes]) -> list[int]:
    """CRC32C of each buffer, vectorised across buffers of equal length."""
    out = [0] * len(buffers)
    groups: dict[int, list[int]] = {}
    for i, buf in enumerate(buffers):
        groups.setdefault(len(buf), []).append(i)
    for length, idx in groups.items():
        if len(idx) < _MIN_VECTOR or length == 0:
            for i in idx:
                out[i] = crc32c(buffers[i])
            continue
        joined = b"".join(buffers[i] for i in idx)
        # Transpose so that byte column j of every buffer is one contiguous row.
        cols = np.ascontiguousarray(
            np.frombuffer(joined, dtype=np.uint8).reshape(len(idx), length).T
        ).astype(np.uint32)
        crc = np.full(len(idx), _MASK, dtype=np.uint32)
        for j in range(length):
            crc = _NP_TABLE[(crc ^ cols[j]) & 0xFF] ^ (crc >> 8)
        crc ^= np.uint32(_MASK)
        for i, value in zip(idx, crc.tolist(), strict=True):
            out[i] = value
    return out


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
