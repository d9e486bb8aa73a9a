"""Read-only answers about a core's state, as frozen values of plain integers.

What the gateway asks the engine between batches: an instrument's status, an account's
balances and reservations, its open orders, one order. An answer is a copy taken when it
was asked: it never aliases the core's arrays, so the next batch cannot change it under
the caller, and the caller cannot change the core through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from matching import codes as mc
from matching.codes import Side, STPMode, TimeInForce


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset of an account, in the asset's base units (micro-USDC for USDC).

    ``available`` is the most a withdrawal could take now (at the time of the last
    command: oracle prices age); ``reserved`` is the rest, held back as collateral for
    open buy orders. Other assets count as collateral at their oracle value less the
    haircut, so a reservation holds back a part of each.
    """

    asset: int
    total: int
    reserved: int
    available: int


@dataclass(frozen=True, slots=True)
class PositionReservation:
    """An account's standing in one instrument (units are lots)."""

    instrument: int
    position: int  # net traded: bought - sold
    inventory: int  # units it can sell: registered capacity + units bought
    inventory_reserved: int  # units held back for open sell orders
    open_buy: int  # leaves of open buy orders
    open_sell: int  # leaves of open sell orders
    receivable: int  # quote units owed to it from the instrument's escrow on delivery


@dataclass(frozen=True, slots=True)
class Reservations:
    """What an account's open orders hold back."""

    account: int
    quote_reserved: int  # quote units for open buys: price x leaves + taker fee, rounded up
    open_orders: int
    positions: tuple[PositionReservation, ...]  # instruments it ever held or ordered, by id


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """A resting order as the book holds it."""

    order_id: int
    account: int
    instrument: int
    side: Side
    price: int
    qty: int  # the order's quantity (a replace or a self-trade decrement changes it)
    filled: int
    leaves: int  # shown + hidden
    shown: int  # visible at its level now
    display_qty: int  # iceberg tip size, 0 for a fully visible order
    tif: TimeInForce
    stp: STPMode
    post_only: bool
    expire_ts: int  # ns, GTD only; 0 otherwise

    @classmethod
    def from_row(cls, row: np.ndarray) -> OpenOrder:
        """From a book snapshot row (``matching.codes.S_*`` columns)."""
        r = [int(x) for x in row]
        return cls(
            order_id=r[mc.S_ORDER_ID],
            account=r[mc.S_ACCOUNT],
            instrument=r[mc.S_INSTRUMENT],
            side=Side(r[mc.S_SIDE]),
            price=r[mc.S_PRICE],
            qty=r[mc.S_QTY],
            filled=r[mc.S_FILLED],
            leaves=r[mc.S_SHOWN] + r[mc.S_HIDDEN],
            shown=r[mc.S_SHOWN],
            display_qty=r[mc.S_DISPLAY],
            tif=TimeInForce(r[mc.S_TIF]),
            stp=STPMode(r[mc.S_STP]),
            post_only=bool(r[mc.S_POST_ONLY]),
            expire_ts=r[mc.S_EXPIRE_TS],
        )


class OrderSource(Protocol):
    """The two order queries both books answer (``FastBook``, ``ReferenceBook``)."""

    def order(self, order_id: int) -> np.ndarray | None: ...

    def account_orders(self, account: int, instrument: int = -1) -> np.ndarray: ...


def account_orders(
    book: OrderSource, account: int, instrument: int | None = None
) -> tuple[OpenOrder, ...]:
    """``account``'s resting orders, on ``instrument`` or on all, by order id."""
    if instrument is not None and instrument < 0:
        return ()
    rows = book.account_orders(account, -1 if instrument is None else instrument)
    return tuple(OpenOrder.from_row(row) for row in rows)


def order(book: OrderSource, order_id: int) -> OpenOrder | None:
    """The resting order ``order_id``; None if no order of that id rests (any more)."""
    row = book.order(order_id)
    return None if row is None else OpenOrder.from_row(row)
