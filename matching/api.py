"""The interface both order books implement, and the one-command helpers on top of it.

Implementations provide the batch call (``process``) and the queries; everything a tool
or a test calls one order at a time is written once here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np

from matching import rows
from matching.codes import Side
from matching.rows import BookEvent
from matching.snapshot import BookSnapshot, spec_from_row
from matching.spec import BookConfig, InstrumentSpec


class OrderBook(ABC):
    """Price-time priority limit order books for many instruments, one writer."""

    def __init__(self, config: BookConfig | None = None) -> None:
        self.config = config or BookConfig()

    # --- what each implementation provides -------------------------------------------
    @abstractmethod
    def add_instrument(self, spec: InstrumentSpec) -> None:
        """List an instrument; its id must be new."""

    @abstractmethod
    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a batch of command rows in order; return the event rows they caused."""

    @abstractmethod
    def snapshot(self) -> BookSnapshot:
        """The canonical picture of every book (see ``matching.snapshot``)."""

    @abstractmethod
    def _load_orders(self, snapshot: BookSnapshot) -> None:
        """Place a snapshot's resting orders, in its order, into empty books."""

    @abstractmethod
    def depth(self, instrument: int, levels: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top ``levels`` per side as ``(price, visible qty, orders)`` rows, best first."""

    @abstractmethod
    def level_orders(self, instrument: int, side: Side, price: int) -> list[int]:
        """Order ids resting at one price, in time priority."""

    @abstractmethod
    def open_order_count(self) -> int:
        """Resting orders across all instruments."""

    @abstractmethod
    def order(self, order_id: int) -> np.ndarray | None:
        """The resting order ``order_id`` as a snapshot row (``S_*`` columns), or None."""

    @abstractmethod
    def account_orders(self, account: int, instrument: int = -1) -> np.ndarray:
        """``account``'s resting orders (on ``instrument``, or all for -1) as snapshot rows,
        in ascending order id."""

    # --- written once for both -------------------------------------------------------
    @classmethod
    def restore(cls, snapshot: BookSnapshot, config: BookConfig | None = None) -> Self:
        book = cls(config)
        for row in snapshot.specs:
            book.add_instrument(spec_from_row(row))
        book._load_orders(snapshot)
        return book

    def state_hash(self) -> str:
        return self.snapshot().state_hash()

    def best_bid_offer(self, instrument: int) -> tuple[int, int, int, int]:
        """``(bid price, bid qty, ask price, ask qty)``; zeros for an empty side."""
        bids, asks = self.depth(instrument, 1)
        bid = (int(bids[0, 0]), int(bids[0, 1])) if len(bids) else (0, 0)
        ask = (int(asks[0, 0]), int(asks[0, 1])) if len(asks) else (0, 0)
        return (*bid, *ask)

    def submit(self, row: np.ndarray) -> list[BookEvent]:
        return rows.decode_events(self.process(row.reshape(1, -1)))

    # Ids are keyword-only, in the row's column order: a swapped id cannot run silently.
    def new_order(
        self,
        *,
        instrument: int,
        order_id: int,
        account: int,
        side: Side,
        price: int,
        qty: int,
        **options: Any,
    ) -> list[BookEvent]:
        """Options as ``rows.new_order_row``: order_type, tif, post_only, stp,
        display_qty, expire_ts, seq, ts."""
        return self.submit(
            rows.new_order_row(
                instrument=instrument,
                order_id=order_id,
                account=account,
                side=side,
                price=price,
                qty=qty,
                **options,
            )
        )

    def cancel(
        self, *, instrument: int, order_id: int, account: int, seq: int = 0, ts: int = 0
    ) -> list[BookEvent]:
        return self.submit(
            rows.cancel_row(
                instrument=instrument, order_id=order_id, account=account, seq=seq, ts=ts
            )
        )

    def replace(
        self,
        *,
        instrument: int,
        order_id: int,
        account: int,
        price: int,
        qty: int,
        seq: int = 0,
        ts: int = 0,
    ) -> list[BookEvent]:
        """``qty`` is the new total order quantity, filled part included (FIX OrderQty)."""
        return self.submit(
            rows.replace_row(
                instrument=instrument,
                order_id=order_id,
                account=account,
                price=price,
                qty=qty,
                seq=seq,
                ts=ts,
            )
        )

    def mass_cancel(
        self, *, account: int, instrument: int = -1, seq: int = 0, ts: int = 0
    ) -> list[BookEvent]:
        """``instrument=-1`` cancels the account's orders on every instrument."""
        return self.submit(
            rows.mass_cancel_row(account=account, instrument=instrument, seq=seq, ts=ts)
        )

    def clock_tick(self, ts: int, *, seq: int = 0) -> list[BookEvent]:
        return self.submit(rows.clock_tick_row(ts, seq=seq))
