"""Events: typed, immutable, past-tense names, each one row of the shared int64 layout.

The kernels write event rows (``matching.codes`` E_* columns); these classes are how
Python reads them at the edges (projections, gateway, tools, tests). Each class names the
columns its kind uses once (``COLUMNS``) and ``exchange.records`` maps rows both ways:
decoding is one table lookup per row and ``to_row`` is its exact inverse. A column no field
names is zero in every row the cores write, which the tests check against real output.

Column use follows the writers: ``matching.kernel._put`` for the book's events,
``risk.kernel.run_command``/``reject_command`` for risk's, ``exchange.listing`` for
INSTRUMENT_LISTED. Two columns are reused: an ORDER_FILLED row carries the fee charged to
its side in E_REASON (negative: a maker rebate), and a COMMAND_REJECTED row carries the
refused command's kind in E_TRADE_ID (zero when the book refused it, as the book does not
record it). DEPOSITED/WITHDRAWN rows carry the command's ``ref`` in E_TRADE_ID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from exchange.codes import CommandKind, EventKind, RejectCode
from exchange.commands import ACCOUNT_SCOPE, GLOBAL_SCOPE
from exchange.ids import AccountId, AssetId, InstrumentId, OrderId, TradeId
from exchange.records import Record, Row, record_table
from matching import codes as mc
from matching.codes import CancelReason, Liquidity, Side
from risk.codes import InstrumentState, Role


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Record):
    """``seq`` is the sequence number of the command that caused the event."""

    WIDTH = mc.N_EVENT_FIELDS
    KIND_COLUMN = mc.E_KIND
    HEADER: ClassVar[dict[str, int]] = {"seq": mc.E_SEQ}
    RESERVED = frozenset({mc.E_SEQ, mc.E_KIND})
    seq: int

    def to_row(self) -> np.ndarray:
        return self._row()


# -- the book's events ------------------------------------------------------------------------
_ORDER = {
    "instrument": mc.E_INSTRUMENT,
    "order_id": mc.E_ORDER_ID,
    "account": mc.E_ACCOUNT,
    "side": mc.E_SIDE,
    "price": mc.E_PRICE,
    "qty": mc.E_QTY,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    KIND = int(EventKind.ORDER_ACCEPTED)
    COLUMNS: ClassVar[dict[str, int]] = {**_ORDER, "leaves": mc.E_LEAVES, "shown": mc.E_SHOWN}
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int
    leaves: int
    shown: int = 0  # the visible part if it rests: the display quantity of an iceberg


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Event):
    """A new order refused by the book or by risk; the fields echo the command as sent."""

    KIND = int(EventKind.ORDER_REJECTED)
    COLUMNS: ClassVar[dict[str, int]] = {**_ORDER, "reason": mc.E_REASON}
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side | int  # not a Side when the side itself was invalid
    price: int
    qty: int
    reason: RejectCode


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Event):
    """One side of a trade; a trade is two of these with the same ``trade_id``."""

    KIND = int(EventKind.ORDER_FILLED)
    COLUMNS: ClassVar[dict[str, int]] = {
        **_ORDER,
        "leaves": mc.E_LEAVES,
        "shown": mc.E_SHOWN,
        "trade_id": mc.E_TRADE_ID,
        "liquidity": mc.E_LIQUIDITY,
        "fee": mc.E_REASON,
        "contra_order_id": mc.E_CONTRA_ORDER_ID,
        "contra_account": mc.E_CONTRA_ACCOUNT,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int  # filled by this trade
    leaves: int
    shown: int
    trade_id: TradeId
    liquidity: Liquidity
    fee: int  # quote base units charged to this side; negative is a maker rebate
    contra_order_id: OrderId
    contra_account: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    """``qty`` was cancelled; ``leaves > 0`` means the order lives on (STP decrement)."""

    KIND = int(EventKind.ORDER_CANCELLED)
    COLUMNS: ClassVar[dict[str, int]] = {
        **_ORDER,
        "leaves": mc.E_LEAVES,
        "shown": mc.E_SHOWN,
        "reason": mc.E_REASON,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int
    leaves: int
    shown: int
    reason: CancelReason


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(Event):
    KIND = int(EventKind.ORDER_REPLACED)
    COLUMNS: ClassVar[dict[str, int]] = {**_ORDER, "leaves": mc.E_LEAVES, "shown": mc.E_SHOWN}
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int  # new total quantity, filled part included
    leaves: int
    shown: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Event):
    """A GTD order whose time came; ``qty`` is what was still open."""

    KIND = int(EventKind.ORDER_EXPIRED)
    COLUMNS: ClassVar[dict[str, int]] = _ORDER
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MassCancelDone(Event):
    KIND = int(EventKind.MASS_CANCEL_DONE)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.E_INSTRUMENT,
        "account": mc.E_ACCOUNT,
        "count": mc.E_QTY,
    }
    instrument: InstrumentId  # -1: every instrument
    account: AccountId
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRejected(Event):
    """A command other than a new order refused; the fields echo what identifies it."""

    KIND = int(EventKind.COMMAND_REJECTED)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.E_INSTRUMENT,
        "order_id": mc.E_ORDER_ID,
        "account": mc.E_ACCOUNT,
        "price": mc.E_PRICE,
        "qty": mc.E_QTY,
        "command": mc.E_TRADE_ID,
        "reason": mc.E_REASON,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    price: int
    qty: int
    command: CommandKind | int | None  # None: refused by the book; int: an unknown kind
    reason: RejectCode


# -- risk's events -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class AccountOpened(Event):
    KIND = int(EventKind.ACCOUNT_OPENED)
    COLUMNS: ClassVar[dict[str, int]] = {"account": mc.E_ACCOUNT, "role": mc.E_SIDE}
    account: AccountId
    role: Role


_TRANSFER = {
    "account": mc.E_ACCOUNT,
    "asset": mc.E_INSTRUMENT,
    "amount": mc.E_QTY,
    "balance": mc.E_LEAVES,
    "ref": mc.E_TRADE_ID,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposited(Event):
    KIND = int(EventKind.DEPOSITED)
    COLUMNS: ClassVar[dict[str, int]] = _TRANSFER
    account: AccountId
    asset: AssetId
    amount: int  # base units of the asset
    balance: int  # after the deposit
    ref: int = 0  # the command's reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdrawn(Event):
    KIND = int(EventKind.WITHDRAWN)
    COLUMNS: ClassVar[dict[str, int]] = _TRANSFER
    account: AccountId
    asset: AssetId
    amount: int
    balance: int  # after the withdrawal
    ref: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OraclePriceSet(Event):
    """A Pyth price accepted, with the collateral value risk derived from it."""

    KIND = int(EventKind.ORACLE_PRICE_SET)
    COLUMNS: ClassVar[dict[str, int]] = {
        "asset": mc.E_INSTRUMENT,
        "price": mc.E_PRICE,
        "conf": mc.E_QTY,
        "expo": mc.E_SHOWN,
        "publish_time": mc.E_TRADE_ID,
        "status": mc.E_SIDE,
        "unit_value": mc.E_LEAVES,
    }
    asset: AssetId
    price: int  # Pyth mantissa
    conf: int
    expo: int
    publish_time: int  # seconds
    status: int  # Pyth price status
    unit_value: int  # quote base units per whole token, after confidence and haircut


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityRegistered(Event):
    KIND = int(EventKind.CAPACITY_REGISTERED)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.E_ACCOUNT,
        "instrument": mc.E_INSTRUMENT,
        "gpu_hours": mc.E_QTY,
        "inventory": mc.E_LEAVES,
    }
    account: AccountId
    instrument: InstrumentId
    gpu_hours: int
    inventory: int  # sellable units after the registration


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsSet(Event):
    KIND = int(EventKind.LIMITS_SET)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.E_ACCOUNT,
        "max_order_qty": mc.E_QTY,
        "max_order_notional": mc.E_PRICE,
        "max_open_orders": mc.E_SHOWN,
        "max_position": mc.E_LEAVES,
    }
    account: AccountId
    max_order_qty: int
    max_order_notional: int
    max_open_orders: int
    max_position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KillSwitchSet(Event):
    """``account=None`` is the exchange-wide switch (as in ``SetKillSwitch``)."""

    KIND = int(EventKind.KILL_SWITCH_SET)
    COLUMNS: ClassVar[dict[str, int]] = {"on": mc.E_QTY, "account": mc.E_ACCOUNT}
    on: bool
    account: AccountId | None = None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        scope = int(row[mc.E_SIDE])
        if scope not in (ACCOUNT_SCOPE, GLOBAL_SCOPE):
            raise ValueError(f"kill switch scope {scope}")
        account = AccountId(int(row[mc.E_ACCOUNT])) if scope == ACCOUNT_SCOPE else None
        return cls(seq=int(row[mc.E_SEQ]), on=bool(row[mc.E_QTY]), account=account)

    def to_row(self) -> np.ndarray:
        row = Event.to_row(self)
        row[mc.E_SIDE] = GLOBAL_SCOPE if self.account is None else ACCOUNT_SCOPE
        return row


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentStatusChanged(Event):
    KIND = int(EventKind.INSTRUMENT_STATUS_CHANGED)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.E_INSTRUMENT,
        "status": mc.E_SIDE,
        "previous": mc.E_QTY,
    }
    instrument: InstrumentId
    status: InstrumentState
    previous: InstrumentState


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentListed(Event):
    KIND = int(EventKind.INSTRUMENT_LISTED)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.E_INSTRUMENT,
        "status": mc.E_SIDE,
        "reference_price": mc.E_PRICE,
        "max_qty": mc.E_QTY,
        "tick_size": mc.E_LEAVES,
        "lot_size": mc.E_SHOWN,
        "cutoff_ts": mc.E_TRADE_ID,
    }
    instrument: InstrumentId
    status: InstrumentState
    reference_price: int  # 0: none given
    max_qty: int
    tick_size: int = 0  # micro-USDC
    lot_size: int = 0
    cutoff_ts: int = 0  # ns; 0: none


EVENT_TYPES: dict[int, type[Event]] = record_table(
    [
        OrderAccepted,
        OrderRejected,
        OrderFilled,
        OrderCancelled,
        OrderReplaced,
        OrderExpired,
        MassCancelDone,
        CommandRejected,
        AccountOpened,
        Deposited,
        Withdrawn,
        OraclePriceSet,
        CapacityRegistered,
        LimitsSet,
        KillSwitchSet,
        InstrumentStatusChanged,
        InstrumentListed,
    ]
)


def from_row(row: Row) -> Event:
    """The typed event a row holds (``ValueError`` for an unknown kind or value)."""
    kind = int(row[mc.E_KIND])
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind}")
    return cls.from_row(row)


def decode(events: np.ndarray) -> list[Event]:
    """Every row of an event batch, in order."""
    return [from_row(row) for row in events.tolist()]


def to_wire(event: Event) -> dict[str, Any]:
    """The event as plain values for orjson (enums by name, ``type`` = class name)."""
    return event.to_wire()
