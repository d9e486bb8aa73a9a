"""Enumerations and array layouts shared by every order book implementation.

Commands and events travel as rows of 2-D ``int64`` arrays so that the numba
kernel, the reference book and the engine exchange them without a Python object
per order. The column constants below are the one definition of those layouts.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2  # carries a protection price: never trades beyond it


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    GTD = 4  # expires when a command's timestamp reaches ``expire_ts``


class STPMode(IntEnum):
    """Self-trade prevention, chosen per order; the taker's mode applies."""

    CANCEL_NEWEST = 0  # default: the incoming order's remainder is cancelled
    CANCEL_OLDEST = 1  # the resting order is cancelled, the taker goes on
    CANCEL_BOTH = 2
    DECREMENT_AND_CANCEL = 3  # both shrink by the smaller size; the smaller is cancelled


class BookCommandKind(IntEnum):
    """The book's command kinds (0-15); ``exchange.codes.CommandKind`` is every stage's."""

    NEW_ORDER = 1
    CANCEL_ORDER = 2
    REPLACE_ORDER = 3
    MASS_CANCEL = 4
    CLOCK_TICK = 5  # advances time; GTD orders whose time has come expire


class BookEventKind(IntEnum):
    """The book's event kinds (0-15); ``exchange.codes.EventKind`` is every stage's."""

    ORDER_ACCEPTED = 1
    ORDER_REJECTED = 2
    ORDER_FILLED = 3
    ORDER_CANCELLED = 4  # qty = amount cancelled, leaves > 0 means a partial (STP decrement)
    ORDER_REPLACED = 5
    ORDER_EXPIRED = 6
    MASS_CANCEL_DONE = 7  # qty = number of orders cancelled
    COMMAND_REJECTED = 8  # cancel / replace / mass cancel refused; reason = a reject code


class BookReject(IntEnum):
    """Why the book refused a command (0-31). Values are stable: they go on the wire.

    ``exchange.codes.RejectCode`` is the union with risk's codes, the name that packages
    above ``matching`` use.
    """

    OK = 0
    INVALID_COMMAND = 1
    UNKNOWN_INSTRUMENT = 2
    INVALID_ACCOUNT = 3
    INVALID_ORDER_ID = 4
    INVALID_SIDE = 5
    INVALID_ORDER_TYPE = 6
    INVALID_TIME_IN_FORCE = 7
    INVALID_STP_MODE = 8
    INVALID_POST_ONLY = 9
    PRICE_OUT_OF_RANGE = 10
    PRICE_OFF_TICK = 11
    QUANTITY_OUT_OF_RANGE = 12
    QUANTITY_OFF_LOT = 13
    INVALID_DISPLAY_QUANTITY = 14
    INVALID_EXPIRE_TIME = 15
    DUPLICATE_ORDER_ID = 16
    ORDER_POOL_FULL = 17
    POST_ONLY_WOULD_TAKE = 18
    UNKNOWN_ORDER = 19
    REPLACE_BELOW_FILLED = 20


BOOK_REJECT_REASONS: dict[BookReject, str] = {
    BookReject.OK: "accepted",
    BookReject.INVALID_COMMAND: "unknown command kind",
    BookReject.UNKNOWN_INSTRUMENT: "no such instrument in this book",
    BookReject.INVALID_ACCOUNT: "account id outside the configured range",
    BookReject.INVALID_ORDER_ID: "order id must be a positive integer",
    BookReject.INVALID_SIDE: "side must be BUY or SELL",
    BookReject.INVALID_ORDER_TYPE: "order type must be LIMIT or MARKET",
    BookReject.INVALID_TIME_IN_FORCE: "time in force not allowed for this order type",
    BookReject.INVALID_STP_MODE: "unknown self-trade prevention mode",
    BookReject.INVALID_POST_ONLY: "post-only needs a resting limit order (GTC or GTD)",
    BookReject.PRICE_OUT_OF_RANGE: "price outside the instrument's price range",
    BookReject.PRICE_OFF_TICK: "price is not a multiple of the tick size",
    BookReject.QUANTITY_OUT_OF_RANGE: "quantity outside the instrument's quantity limits",
    BookReject.QUANTITY_OFF_LOT: "quantity is not a multiple of the lot size",
    BookReject.INVALID_DISPLAY_QUANTITY: (
        "display quantity must be a lot multiple no larger than the quantity, on a resting order"
    ),
    BookReject.INVALID_EXPIRE_TIME: "GTD needs an expiry after now; other orders take none",
    BookReject.DUPLICATE_ORDER_ID: "an open order already has this id",
    BookReject.ORDER_POOL_FULL: "the book holds its configured maximum of resting orders",
    BookReject.POST_ONLY_WOULD_TAKE: "post-only order would trade on arrival",
    BookReject.UNKNOWN_ORDER: "no open order with this id for this account and instrument",
    BookReject.REPLACE_BELOW_FILLED: "new quantity must exceed the quantity already filled",
}


class CancelReason(IntEnum):
    USER = 1
    IMMEDIATE_OR_CANCEL = 2  # remainder of an IOC or market order
    FILL_OR_KILL = 3  # FOK that could not fill completely
    SELF_TRADE = 4
    MASS_CANCEL = 5


class Liquidity(IntEnum):
    NONE = 0
    MAKER = 1
    TAKER = 2


# Command row layout (int64 columns).
C_SEQ = 0
C_TS = 1
C_KIND = 2
C_INSTRUMENT = 3
C_ORDER_ID = 4
C_ACCOUNT = 5
C_SIDE = 6
C_PRICE = 7  # limit price; protection price for market orders; new price for replace
C_QTY = 8  # order quantity; new total quantity for replace
C_ORDER_TYPE = 9
C_TIF = 10
C_POST_ONLY = 11
C_STP = 12
C_DISPLAY_QTY = 13
C_EXPIRE_TS = 14
N_COMMAND_FIELDS = 15

# Event row layout (int64 columns).
E_SEQ = 0  # sequence number of the command that caused the event
E_KIND = 1
E_INSTRUMENT = 2
E_ORDER_ID = 3
E_ACCOUNT = 4
E_SIDE = 5
E_PRICE = 6
E_QTY = 7
E_LEAVES = 8
E_SHOWN = 9  # visible quantity of the order after the event (ACCEPTED: once it rests)
E_TRADE_ID = 10
E_LIQUIDITY = 11
E_REASON = 12  # a reject code for rejects, CancelReason for cancels
E_CONTRA_ORDER_ID = 13
E_CONTRA_ACCOUNT = 14
N_EVENT_FIELDS = 15

# Canonical snapshot row layout: one resting order, books in priority order.
S_INSTRUMENT = 0
S_SIDE = 1
S_PRICE = 2
S_ORDER_ID = 3
S_ACCOUNT = 4
S_QTY = 5
S_FILLED = 6
S_SHOWN = 7
S_HIDDEN = 8
S_DISPLAY = 9
S_TIF = 10
S_STP = 11
S_POST_ONLY = 12
S_EXPIRE_TS = 13
N_SNAPSHOT_FIELDS = 14
