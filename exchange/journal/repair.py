"""A damaged end of the journal: a torn tail to cut, or corruption to refuse.

A crash tears only the batch being written, so after a torn tail there can be at most
records of that same batch. ``find_later_record`` looks past the damage for proof that
good data follows (a valid TRAILER of another batch, or any valid record after the
damaged batch's own TRAILER); if there is none, the damage is a torn tail (``TailCut``)
that ``Journal.open`` cuts with ``cut_tail``, otherwise it is corruption in the middle of
the history and nobody may start on it. ``reference._find_later_batch`` is the same search
in plain Python, the oracle this is tested against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from exchange.journal.framing import M0, M1, i64_at, record_crc_ok, record_end, u32_at
from exchange.journal.layout import HEADER_SIZE, KIND_TRAILER, TRAILER, VERSION

_TRAILER_LEN = TRAILER.size


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


@njit(cache=True, nogil=True)
def find_later_record(tables: np.ndarray, data: np.ndarray, damage: int, batch_first: int) -> int:
    """Offset of a valid record proving that good data follows the damage at ``damage``
    (whose batch starts at seq ``batch_first``), or -1: then the damage is a torn tail."""
    n = data.shape[0]
    own_trailer_end = -1
    pos = damage + 1
    while pos + 3 <= n:
        if data[pos] != M0 or data[pos + 1] != M1 or data[pos + 2] != VERSION:
            pos += 1
            continue
        end = record_end(data, pos)
        if end < 0 or not record_crc_ok(tables, data, pos, end):
            pos += 1
            continue
        if own_trailer_end >= 0 and pos >= own_trailer_end:
            return pos
        if data[pos + 3] == KIND_TRAILER and end - pos - HEADER_SIZE == _TRAILER_LEN:
            if i64_at(data, pos + 8) - u32_at(data, pos + HEADER_SIZE) + 1 != batch_first:
                return pos
            own_trailer_end = end
        pos = end
    return -1


def cut_tail(tail: TailCut) -> None:
    """Cut the segment back to its last complete batch, durably."""
    with open(tail.path, "r+b") as f:
        f.truncate(tail.offset)
        os.fsync(f.fileno())
