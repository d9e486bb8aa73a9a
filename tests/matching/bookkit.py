"""Shared helpers for the order book tests: instruments, books, event filters, diffs.

A plain module (not a fixture) so that the hypothesis state machine, which builds its
books outside pytest's fixture system, uses the very same instruments as the scenarios.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from matching import codes as c
from matching.api import OrderBook
from matching.codes import BookEventKind, Liquidity, Side
from matching.rows import BookEvent, decode_events
from matching.spec import BookConfig, InstrumentSpec

TICK = 1000  # 0.001 USDC in micro-USDC
MIN_PRICE = TICK
MAX_PRICE = 1_000_000_000
MAX_QTY = 1_000_000

# Accounts and instruments used by the scenarios.
A, B, C, D = 1, 2, 3, 4
I1, I2 = 1, 2  # lot size 1
LOT_INSTRUMENT = 3  # lot size 10
LOT = 10


def spec(instrument_id: int, *, lot_size: int = 1) -> InstrumentSpec:
    """The CX default instrument: tick 0.001 USDC, prices up to 1000 USDC."""
    return InstrumentSpec(
        instrument_id,
        tick_size=TICK,
        lot_size=lot_size,
        min_price=MIN_PRICE,
        max_price=MAX_PRICE,
        min_qty=lot_size,
        max_qty=MAX_QTY,
    )


def make_book(
    cls: type[OrderBook],
    instruments: Iterable[int] = (I1, I2),
    *,
    config: BookConfig | None = None,
) -> OrderBook:
    """A book listing ``instruments``; ``LOT_INSTRUMENT`` gets a lot size of ``LOT``."""
    book = cls(config)
    for iid in instruments:
        book.add_instrument(spec(iid, lot_size=LOT if iid == LOT_INSTRUMENT else 1))
    return book


def px(ticks: int) -> int:
    """Price of ``ticks`` ticks: ``px(100)`` is 0.1 USDC."""
    return ticks * TICK


def kinds(events: list[BookEvent]) -> list[BookEventKind]:
    return [e.kind for e in events]


def only(events: list[BookEvent], kind: BookEventKind) -> list[BookEvent]:
    return [e for e in events if e.kind == kind]


def fills(events: list[BookEvent]) -> list[tuple[int, Liquidity, int, int, int]]:
    """``(order id, liquidity, price, qty, leaves)`` of every fill, in event order."""
    return [
        (e.order_id, e.liquidity, e.price, e.qty, e.leaves)
        for e in events
        if e.kind == BookEventKind.ORDER_FILLED
    ]


def resting(book: OrderBook) -> dict[int, dict[str, int]]:
    """Snapshot rows keyed by order id, for readable assertions."""
    names = {
        "instrument": c.S_INSTRUMENT,
        "side": c.S_SIDE,
        "price": c.S_PRICE,
        "account": c.S_ACCOUNT,
        "qty": c.S_QTY,
        "filled": c.S_FILLED,
        "shown": c.S_SHOWN,
        "hidden": c.S_HIDDEN,
        "display": c.S_DISPLAY,
    }
    return {
        int(r[c.S_ORDER_ID]): {name: int(r[col]) for name, col in names.items()}
        for r in book.snapshot().orders
    }


def describe_events(rows: np.ndarray) -> str:
    return "\n".join(f"  {e}" for e in decode_events(rows)) or "  (none)"


def assert_same_events(expected: np.ndarray, actual: np.ndarray, context: str = "") -> None:
    """``np.array_equal`` with both event streams decoded in the failure message."""
    if not np.array_equal(expected, actual):
        raise AssertionError(
            f"event arrays differ {context}\n"
            f"reference ({expected.shape}):\n{describe_events(expected)}\n"
            f"other ({actual.shape}):\n{describe_events(actual)}"
        )


def level_view(book: OrderBook, instrument: int, side: Side) -> list[tuple[int, list[int]]]:
    """Every level of one side as ``(price, order ids in priority)``, best first."""
    bids, asks = book.depth(instrument, 1_000)
    levels = bids if side == Side.BUY else asks
    return [(int(p), book.level_orders(instrument, side, int(p))) for p in levels[:, 0]]
