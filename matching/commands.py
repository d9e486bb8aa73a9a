"""Building command rows and reading event rows at the edges (tools, tests, bots)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from matching import codes as c
from matching.codes import (
    CancelReason,
    CommandKind,
    EventKind,
    Liquidity,
    OrderType,
    RejectCode,
    Side,
    STPMode,
    TimeInForce,
)


def empty_commands(n: int) -> np.ndarray:
    return np.zeros((n, c.N_COMMAND_FIELDS), dtype=np.int64)


def new_order_row(
    order_id: int,
    account: int,
    instrument: int,
    side: Side,
    price: int,
    qty: int,
    *,
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
    row[c.C_KIND] = CommandKind.NEW_ORDER
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
    order_id: int, account: int, instrument: int, *, seq: int = 0, ts: int = 0
) -> np.ndarray:
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, CommandKind.CANCEL_ORDER
    row[c.C_ORDER_ID], row[c.C_ACCOUNT], row[c.C_INSTRUMENT] = order_id, account, instrument
    return row


def replace_row(
    order_id: int,
    account: int,
    instrument: int,
    price: int,
    qty: int,
    *,
    seq: int = 0,
    ts: int = 0,
) -> np.ndarray:
    """``qty`` is the new total order quantity, filled part included (FIX OrderQty)."""
    row = cancel_row(order_id, account, instrument, seq=seq, ts=ts)
    row[c.C_KIND] = CommandKind.REPLACE_ORDER
    row[c.C_PRICE], row[c.C_QTY] = price, qty
    return row


def mass_cancel_row(account: int, instrument: int = -1, *, seq: int = 0, ts: int = 0) -> np.ndarray:
    """``instrument=-1`` cancels the account's orders on every instrument."""
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, CommandKind.MASS_CANCEL
    row[c.C_ACCOUNT], row[c.C_INSTRUMENT] = account, instrument
    return row


def clock_tick_row(ts: int, *, seq: int = 0) -> np.ndarray:
    row = np.zeros(c.N_COMMAND_FIELDS, dtype=np.int64)
    row[c.C_SEQ], row[c.C_TS], row[c.C_KIND] = seq, ts, CommandKind.CLOCK_TICK
    return row


class Event(NamedTuple):
    """One event row, decoded for humans and tests."""

    seq: int
    kind: EventKind
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
    def reject_code(self) -> RejectCode:
        return RejectCode(self.reason)

    @property
    def cancel_reason(self) -> CancelReason:
        return CancelReason(self.reason)


def decode_events(rows: np.ndarray) -> list[Event]:
    out = []
    for r in rows.tolist():
        r[c.E_KIND] = EventKind(r[c.E_KIND])
        r[c.E_LIQUIDITY] = Liquidity(r[c.E_LIQUIDITY])
        out.append(Event(*r))
    return out
