"""Row builders: command rows built and event rows read at the edges (tools, tests, demos).

Ids are keyword-only, in the row's column order (instrument, order id, account), so two
ids cannot be swapped silently.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from matching import codes as c
from matching.codes import (
    BookCommandKind,
    BookEventKind,
    BookReject,
    CancelReason,
    Liquidity,
    OrderType,
    Side,
    STPMode,
    TimeInForce,
)


def empty_commands(n: int) -> np.ndarray:
    return np.zeros((n, c.N_COMMAND_FIELDS), dtype=np.int64)


def new_order_row(
    *,
    instrument: int,
    order_id: int,
    account: int,
    side: Side,
    price: int,
    qty: int,
    order_type: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.GTC,
    post_only: bool = False,
    stp: STPMode = STPMode.CANCEL_NEWEST,
    display_qty: int = 0,
    expire_ts: int = 0,
    seq: int = 0,
    ts: int = 0,
) -> np.ndarray:
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ] = seq
    row[c.C_TS] = ts
    row[c.C_KIND] = BookCommandKind.NEW_ORDER
    row[c.C_INSTRUMENT] = instrument
    row[c.C_ORDER_ID] = order_id
    row[c.C_ACCOUNT] = account
    row[c.C_SIDE] = side
    row[c.C_PRICE] = price
    row[c.C_QTY] = qty
    row[c.C_ORDER_TYPE] = order_type
    row[c.C_TIF] = tif
    row[c.C_POST_ONLY] = int(post_only)
    row[c.C_STP] = stp
    row[c.C_DISPLAY_QTY] = display_qty
    row[c.C_EXPIRE_TS] = expire_ts
    return row


def cancel_row(
    *, instrument: int, order_id: int, account: int, seq: int = 0, ts: int = 0
) -> np.ndarray:
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, BookCommandKind.CANCEL_ORDER
    row[c.C_ORDER_ID], row[c.C_ACCOUNT], row[c.C_INSTRUMENT] = order_id, account, instrument
    return row


def replace_row(
    *,
    instrument: int,
    order_id: int,
    account: int,
    price: int,
    qty: int,
    seq: int = 0,
    ts: int = 0,
) -> np.ndarray:
    """``qty`` is the new total order quantity, filled part included (FIX OrderQty)."""
    row = cancel_row(instrument=instrument, order_id=order_id, account=account, seq=seq, ts=ts)
    row[c.C_KIND] = BookCommandKind.REPLACE_ORDER
    row[c.C_PRICE], row[c.C_QTY] = price, qty
    return row


def mass_cancel_row(*, account: int, instrument: int = -1, seq: int = 0, ts: int = 0) -> np.ndarray:
    """``instrument=-1`` cancels the account's orders on every instrument."""
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, BookCommandKind.MASS_CANCEL
    row[c.C_ACCOUNT], row[c.C_INSTRUMENT] = account, instrument
    return row


def clock_tick_row(ts: int, *, seq: int = 0) -> np.ndarray:
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, BookCommandKind.CLOCK_TICK
    return row


class BookEvent(NamedTuple):
    """One event row of the bare book, decoded for humans and tests.

    The engine's typed events (risk's included) are ``exchange.events``.
    """

    seq: int
    kind: BookEventKind
    instrument: int
    order_id: int
    account: int
    side: int
    price: int
    qty: int
    leaves: int
    shown: int
    trade_id: int
    liquidity: Liquidity
    reason: int
    contra_order_id: int
    contra_account: int

    @property
    def reject_code(self) -> BookReject:
        return BookReject(self.reason)

    @property
    def cancel_reason(self) -> CancelReason:
        return CancelReason(self.reason)


def decode_events(rows: np.ndarray) -> list[BookEvent]:
    out = []
    for r in rows.tolist():
        r[c.E_KIND] = BookEventKind(r[c.E_KIND])
        r[c.E_LIQUIDITY] = Liquidity(r[c.E_LIQUIDITY])
        out.append(BookEvent(*r))
    return out
