"""Commands: typed, immutable, imperative names, each one row of the shared int64 layout.

The row (``matching.codes`` C_* columns) is what is sequenced, journaled and run by the
kernels; these classes are the Python edge. ``seq`` and ``ts`` are not fields: the
sequencer stamps them. Risk's commands reuse the book's columns; each class names its
columns once (``COLUMNS``) and ``exchange.records`` maps rows both ways. Fields are
keyword-only and ids typed (``exchange.ids``), so a swapped id cannot run silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from exchange.codes import CommandKind
from exchange.ids import AccountId, AssetId, InstrumentId, OrderId
from exchange.records import Record, Row, record_table
from matching import codes as mc
from matching.codes import OrderType, Side, STPMode, TimeInForce
from matching.spec import InstrumentSpec
from risk.codes import InstrumentState, Role

ACCOUNT_SCOPE = 1  # kill switch scope (column C_SIDE / E_SIDE): one account
GLOBAL_SCOPE = 2  # the exchange-wide switch


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Record):
    WIDTH = mc.N_COMMAND_FIELDS
    KIND_COLUMN = mc.C_KIND
    HEADER: ClassVar[dict[str, int]] = {}
    RESERVED = frozenset({mc.C_SEQ, mc.C_TS, mc.C_KIND})

    def to_row(self, seq: int = 0, ts: int = 0) -> np.ndarray:
        row = self._row()
        row[mc.C_SEQ] = seq
        row[mc.C_TS] = ts
        return row


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder(Command):
    KIND = int(CommandKind.NEW_ORDER)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "order_id": mc.C_ORDER_ID,
        "account": mc.C_ACCOUNT,
        "side": mc.C_SIDE,
        "price": mc.C_PRICE,
        "qty": mc.C_QTY,
        "order_type": mc.C_ORDER_TYPE,
        "tif": mc.C_TIF,
        "post_only": mc.C_POST_ONLY,
        "stp": mc.C_STP,
        "display_qty": mc.C_DISPLAY_QTY,
        "expire_ts": mc.C_EXPIRE_TS,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    side: Side
    price: int
    qty: int
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: STPMode = STPMode.CANCEL_NEWEST
    display_qty: int = 0
    expire_ts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Command):
    KIND = int(CommandKind.CANCEL_ORDER)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "order_id": mc.C_ORDER_ID,
        "account": mc.C_ACCOUNT,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceOrder(Command):
    KIND = int(CommandKind.REPLACE_ORDER)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "order_id": mc.C_ORDER_ID,
        "account": mc.C_ACCOUNT,
        "price": mc.C_PRICE,
        "qty": mc.C_QTY,
    }
    instrument: InstrumentId
    order_id: OrderId
    account: AccountId
    price: int
    qty: int  # new total quantity, filled part included


@dataclass(frozen=True, slots=True, kw_only=True)
class MassCancel(Command):
    KIND = int(CommandKind.MASS_CANCEL)
    COLUMNS: ClassVar[dict[str, int]] = {"instrument": mc.C_INSTRUMENT, "account": mc.C_ACCOUNT}
    instrument: InstrumentId
    account: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvanceClock(Command):
    """A sequenced clock tick: how time-driven behaviour (GTD expiry) reaches the core."""

    KIND = int(CommandKind.CLOCK_TICK)
    COLUMNS: ClassVar[dict[str, int]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAccount(Command):
    KIND = int(CommandKind.OPEN_ACCOUNT)
    COLUMNS: ClassVar[dict[str, int]] = {"account": mc.C_ACCOUNT, "role": mc.C_SIDE}
    account: AccountId
    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit(Command):
    KIND = int(CommandKind.DEPOSIT)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "asset": mc.C_INSTRUMENT,
        "amount": mc.C_QTY,
        "ref": mc.C_ORDER_ID,
    }
    account: AccountId
    asset: AssetId
    amount: int  # base units of the asset
    ref: int = 0  # the caller's reference (e.g. the chain transfer), echoed in the event


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdraw(Command):
    KIND = int(CommandKind.WITHDRAW)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "asset": mc.C_INSTRUMENT,
        "amount": mc.C_QTY,
        "ref": mc.C_ORDER_ID,
    }
    account: AccountId
    asset: AssetId
    amount: int
    ref: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SetOraclePrice(Command):
    """A Pyth price for a collateral asset: integer mantissa, confidence and exponent."""

    KIND = int(CommandKind.SET_ORACLE_PRICE)
    COLUMNS: ClassVar[dict[str, int]] = {
        "asset": mc.C_INSTRUMENT,
        "price": mc.C_PRICE,
        "conf": mc.C_QTY,
        "expo": mc.C_DISPLAY_QTY,
        "publish_time": mc.C_EXPIRE_TS,
        "status": mc.C_SIDE,
    }
    asset: AssetId
    price: int
    conf: int
    expo: int
    publish_time: int  # seconds
    status: int = 1  # Pyth TRADING


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterCapacity(Command):
    """A provider's GPUs for an instrument's window; ``gpu_hours`` = GPUs x window hours."""

    KIND = int(CommandKind.REGISTER_CAPACITY)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "instrument": mc.C_INSTRUMENT,
        "gpu_hours": mc.C_QTY,
    }
    account: AccountId
    instrument: InstrumentId
    gpu_hours: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLimits(Command):
    KIND = int(CommandKind.SET_LIMITS)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "max_order_qty": mc.C_QTY,
        "max_order_notional": mc.C_PRICE,
        "max_open_orders": mc.C_DISPLAY_QTY,
        "max_position": mc.C_EXPIRE_TS,
    }
    account: AccountId
    max_order_qty: int
    max_order_notional: int
    max_open_orders: int
    max_position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetKillSwitch(Command):
    """``account=None`` is the exchange-wide switch."""

    KIND = int(CommandKind.SET_KILL_SWITCH)
    COLUMNS: ClassVar[dict[str, int]] = {"on": mc.C_QTY, "account": mc.C_ACCOUNT}
    on: bool
    account: AccountId | None = None

    def to_row(self, seq: int = 0, ts: int = 0) -> np.ndarray:
        row = Command.to_row(self, seq, ts)
        row[mc.C_SIDE] = GLOBAL_SCOPE if self.account is None else ACCOUNT_SCOPE
        return row

    @classmethod
    def from_row(cls, row: Row) -> Self:
        scope = int(row[mc.C_SIDE])
        account = AccountId(int(row[mc.C_ACCOUNT])) if scope == ACCOUNT_SCOPE else None
        return cls(on=bool(row[mc.C_QTY]), account=account)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetInstrumentStatus(Command):
    KIND = int(CommandKind.SET_INSTRUMENT_STATUS)
    COLUMNS: ClassVar[dict[str, int]] = {"instrument": mc.C_INSTRUMENT, "status": mc.C_SIDE}
    instrument: InstrumentId
    status: InstrumentState


@dataclass(frozen=True, slots=True, kw_only=True)
class ListInstrument(Command):
    KIND = int(CommandKind.LIST_INSTRUMENT)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "tick_size": mc.C_ORDER_ID,
        "lot_size": mc.C_ACCOUNT,
        "min_price": mc.C_PRICE,
        "max_price": mc.C_EXPIRE_TS,
        "min_qty": mc.C_DISPLAY_QTY,
        "max_qty": mc.C_QTY,
        "status": mc.C_SIDE,
        "reference_price": mc.C_TIF,
        "cutoff_ts": mc.C_STP,
    }
    instrument: InstrumentId
    tick_size: int
    lot_size: int
    min_price: int
    max_price: int
    min_qty: int
    max_qty: int
    status: InstrumentState = InstrumentState.TRADING
    reference_price: int = 0
    cutoff_ts: int = 0  # ns; orders are refused from then on (the window's trading cut-off)

    @classmethod
    def of(
        cls,
        spec: InstrumentSpec,
        *,
        status: InstrumentState = InstrumentState.TRADING,
        reference_price: int = 0,
        cutoff_ts: int = 0,
    ) -> ListInstrument:
        """The command that lists the book parameters ``spec``."""
        return cls(
            instrument=InstrumentId(spec.instrument_id),
            tick_size=spec.tick_size,
            lot_size=spec.lot_size,
            min_price=spec.min_price,
            max_price=spec.max_price,
            min_qty=spec.min_qty,
            max_qty=spec.max_qty,
            status=status,
            reference_price=reference_price,
            cutoff_ts=cutoff_ts,
        )

    def spec(self) -> InstrumentSpec:
        """The book's parameters (``ValueError`` when they are inconsistent)."""
        return InstrumentSpec(
            self.instrument,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            min_price=self.min_price,
            max_price=self.max_price,
            min_qty=self.min_qty,
            max_qty=self.max_qty,
        )


COMMAND_TYPES: dict[int, type[Command]] = record_table(
    [
        SubmitOrder,
        CancelOrder,
        ReplaceOrder,
        MassCancel,
        AdvanceClock,
        OpenAccount,
        Deposit,
        Withdraw,
        SetOraclePrice,
        RegisterCapacity,
        SetLimits,
        SetKillSwitch,
        SetInstrumentStatus,
        ListInstrument,
    ]
)


def from_row(row: Row) -> Command:
    """The typed command a row holds (``ValueError`` for an unknown kind or value)."""
    kind = int(row[mc.C_KIND])
    cls = COMMAND_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown command kind {kind}")
    return cls.from_row(row)


def rows(commands: Sequence[Command], first_seq: int = 1, ts: int = 0) -> np.ndarray:
    """Stack commands into a batch, numbered from ``first_seq`` (tests and tools)."""
    out = np.zeros((len(commands), mc.N_COMMAND_FIELDS), dtype=np.int64)
    for i, command in enumerate(commands):
        out[i] = command.to_row(first_seq + i, ts)
    return out
