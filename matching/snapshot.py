"""A canonical, implementation-neutral picture of every book.

Both books write the same snapshot for the same state (orders listed per instrument,
bids then asks, best level first, FIFO within a level), so a snapshot taken from one
implementation restores into the other and the state hash compares them directly.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from matching import codes as c
from matching.spec import InstrumentSpec

SPEC_FIELDS = 7  # instrument_id, tick, lot, min_price, max_price, min_qty, max_qty


def spec_row(spec: InstrumentSpec) -> list[int]:
    return [
        spec.instrument_id,
        spec.tick_size,
        spec.lot_size,
        spec.min_price,
        spec.max_price,
        spec.min_qty,
        spec.max_qty,
    ]


def spec_from_row(row: np.ndarray) -> InstrumentSpec:
    return InstrumentSpec(*(int(v) for v in row[:SPEC_FIELDS]))


@dataclass(frozen=True)
class BookSnapshot:
    specs: np.ndarray  # (instruments, SPEC_FIELDS) int64, ascending instrument id
    orders: np.ndarray  # (resting orders, N_SNAPSHOT_FIELDS) int64, canonical order
    trade_id: int  # last trade id handed out
    now: int  # latest command timestamp seen

    def state_hash(self) -> str:
        """Equal states give equal hashes, whichever implementation wrote them."""
        h = hashlib.blake2b(digest_size=16)
        h.update(np.array([self.trade_id, self.now], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.specs, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.orders, dtype=np.int64).tobytes())
        return h.hexdigest()

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            specs=self.specs,
            orders=self.orders,
            counters=np.array([self.trade_id, self.now], dtype=np.int64),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> BookSnapshot:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            specs, orders, counters = z["specs"], z["orders"], z["counters"]
        if specs.ndim != 2 or specs.shape[1] != SPEC_FIELDS:
            raise ValueError("snapshot specs have the wrong shape")
        if orders.ndim != 2 or orders.shape[1] != c.N_SNAPSHOT_FIELDS:
            raise ValueError("snapshot orders have the wrong shape")
        return cls(specs, orders, int(counters[0]), int(counters[1]))
