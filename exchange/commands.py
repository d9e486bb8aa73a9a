"""Commands: typed, immutable, imperative names, each one row of the shared int64 layout.

The row (``matching.codes`` C_* columns) is what is sequenced, journaled and run by the
kernels; these classes are the Python edge. ``seq`` and ``ts`` are not fields: the
sequencer stamps them. Risk's commands reuse the book's columns; the mapping is written
once here (``_COLUMNS``), so ``to_row``/``from_row`` are exact inverses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from matching import codes as mc
from matching.codes import CommandKind, OrderType, Side, STPMode, TimeInForce
from risk.codes import InstrumentState, RiskCommandKind, Role


@dataclass(frozen=True, slots=True)
class Command:
    KIND: ClassVar[int]
    COLUMNS: ClassVar[dict[str, int]]

    def to_row(self, seq: int = 0, ts: int = 0) -> np.ndarray:
        row = np.zeros(mc.N_COMMAND_FIELDS, dtype=np.int64)
        row[mc.C_SEQ] = seq
        row[mc.C_TS] = ts
        row[mc.C_KIND] = self.KIND
        for name, col in self.COLUMNS.items():
            row[col] = int(getattr(self, name))
        return row

    def to_wire(self) -> dict:
        """Plain values for orjson: enums by name."""
        out = {"type": type(self).__name__}
        for k, v in asdict(self).items():
            out[k] = v.name if hasattr(v, "name") else v
        return out


@dataclass(frozen=True, slots=True)
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
    instrument: int
    order_id: int
    account: int
    side: Side
    price: int
    qty: int
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: STPMode = STPMode.CANCEL_NEWEST
    display_qty: int = 0
    expire_ts: int = 0


@dataclass(frozen=True, slots=True)
class CancelOrder(Command):
    KIND = int(CommandKind.CANCEL_ORDER)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "order_id": mc.C_ORDER_ID,
        "account": mc.C_ACCOUNT,
    }
    instrument: int
    order_id: int
    account: int


@dataclass(frozen=True, slots=True)
class ReplaceOrder(Command):
    KIND = int(CommandKind.REPLACE_ORDER)
    COLUMNS: ClassVar[dict[str, int]] = {
        "instrument": mc.C_INSTRUMENT,
        "order_id": mc.C_ORDER_ID,
        "account": mc.C_ACCOUNT,
        "price": mc.C_PRICE,
        "qty": mc.C_QTY,
    }
    instrument: int
    order_id: int
    account: int
    price: int
    qty: int  # new total quantity, filled part included


@dataclass(frozen=True, slots=True)
class MassCancel(Command):
    KIND = int(CommandKind.MASS_CANCEL)
    COLUMNS: ClassVar[dict[str, int]] = {"instrument": mc.C_INSTRUMENT, "account": mc.C_ACCOUNT}
    instrument: int
    account: int


@dataclass(frozen=True, slots=True)
class AdvanceClock(Command):
    """A sequenced clock tick: how time-driven behaviour (GTD expiry) reaches the core."""

    KIND = int(CommandKind.CLOCK_TICK)
    COLUMNS: ClassVar[dict[str, int]] = {}


@dataclass(frozen=True, slots=True)
class OpenAccount(Command):
    KIND = int(RiskCommandKind.OPEN_ACCOUNT)
    COLUMNS: ClassVar[dict[str, int]] = {"account": mc.C_ACCOUNT, "role": mc.C_SIDE}
    account: int
    role: Role


@dataclass(frozen=True, slots=True)
class Deposit(Command):
    KIND = int(RiskCommandKind.DEPOSIT)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "asset": mc.C_INSTRUMENT,
        "amount": mc.C_QTY,
        "ref": mc.C_ORDER_ID,
    }
    account: int
    asset: int
    amount: int  # base units of the asset
    ref: int = 0  # the caller's reference (e.g. the chain transfer), echoed in the event


@dataclass(frozen=True, slots=True)
class Withdraw(Command):
    KIND = int(RiskCommandKind.WITHDRAW)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "asset": mc.C_INSTRUMENT,
        "amount": mc.C_QTY,
        "ref": mc.C_ORDER_ID,
    }
    account: int
    asset: int
    amount: int
    ref: int = 0


@dataclass(frozen=True, slots=True)
class SetOraclePrice(Command):
    """A Pyth price for a collateral asset: integer mantissa, confidence and exponent."""

    KIND = int(RiskCommandKind.SET_ORACLE_PRICE)
    COLUMNS: ClassVar[dict[str, int]] = {
        "asset": mc.C_INSTRUMENT,
        "price": mc.C_PRICE,
        "conf": mc.C_QTY,
        "expo": mc.C_DISPLAY_QTY,
        "publish_time": mc.C_EXPIRE_TS,
        "status": mc.C_SIDE,
    }
    asset: int
    price: int
    conf: int
    expo: int
    publish_time: int  # seconds
    status: int = 1  # Pyth TRADING


@dataclass(frozen=True, slots=True)
class RegisterCapacity(Command):
    """A provider's GPUs for an instrument's window; ``gpu_hours`` = GPUs x window hours."""

    KIND = int(RiskCommandKind.REGISTER_CAPACITY)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "instrument": mc.C_INSTRUMENT,
        "gpu_hours": mc.C_QTY,
    }
    account: int
    instrument: int
    gpu_hours: int


@dataclass(frozen=True, slots=True)
class SetLimits(Command):
    KIND = int(RiskCommandKind.SET_LIMITS)
    COLUMNS: ClassVar[dict[str, int]] = {
        "account": mc.C_ACCOUNT,
        "max_order_qty": mc.C_QTY,
        "max_order_notional": mc.C_PRICE,
        "max_open_orders": mc.C_DISPLAY_QTY,
        "max_position": mc.C_EXPIRE_TS,
    }
    account: int
    max_order_qty: int
    max_order_notional: int
    max_open_orders: int
    max_position: int


@dataclass(frozen=True, slots=True)
class SetKillSwitch(Command):
    """``account=None`` is the exchange-wide switch."""

    KIND = int(RiskCommandKind.SET_KILL_SWITCH)
    COLUMNS: ClassVar[dict[str, int]] = {}
    on: bool
    account: int | None = None

    def to_row(self, seq: int = 0, ts: int = 0) -> np.ndarray:
        row = super(SetKillSwitch, self).to_row(seq, ts)
        row[mc.C_SIDE] = 2 if self.account is None else 1
        row[mc.C_ACCOUNT] = self.account or 0
        row[mc.C_QTY] = int(self.on)
        return row


@dataclass(frozen=True, slots=True)
class SetInstrumentStatus(Command):
    KIND = int(RiskCommandKind.SET_INSTRUMENT_STATUS)
    COLUMNS: ClassVar[dict[str, int]] = {"instrument": mc.C_INSTRUMENT, "status": mc.C_SIDE}
    instrument: int
    status: InstrumentState


@dataclass(frozen=True, slots=True)
class ListInstrument(Command):
    KIND = int(RiskCommandKind.LIST_INSTRUMENT)
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
    instrument: int
    tick_size: int
    lot_size: int
    min_price: int
    max_price: int
    min_qty: int
    max_qty: int
    status: InstrumentState = InstrumentState.TRADING
    reference_price: int = 0
    cutoff_ts: int = 0  # ns; orders are refused from then on (the window's trading cut-off)


COMMAND_TYPES: dict[int, type[Command]] = {
    cls.KIND: cls
    for cls in (
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
    )
}


def from_row(row: np.ndarray) -> Command:
    """The typed command a row holds (``ValueError`` for an unknown kind or value)."""
    kind = int(row[mc.C_KIND])
    cls = COMMAND_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown command kind {kind}")
    if cls is SetKillSwitch:
        scope = int(row[mc.C_SIDE])
        return SetKillSwitch(bool(row[mc.C_QTY]), int(row[mc.C_ACCOUNT]) if scope == 1 else None)
    kwargs = {}
    types = {f.name: f.type for f in fields(cls)}
    for name, col in cls.COLUMNS.items():
        value = int(row[col])
        kwargs[name] = _ENUMS[types[name]](value) if types[name] in _ENUMS else value
    return cls(**kwargs)


_ENUMS = {
    "Side": Side,
    "OrderType": OrderType,
    "TimeInForce": TimeInForce,
    "STPMode": STPMode,
    "Role": Role,
    "InstrumentState": InstrumentState,
    "bool": bool,
}


def rows(commands: list[Command], first_seq: int = 1, ts: int = 0) -> np.ndarray:
    """Stack commands into a batch, numbered from ``first_seq`` (tests and tools)."""
    out = np.zeros((len(commands), mc.N_COMMAND_FIELDS), dtype=np.int64)
    for i, command in enumerate(commands):
        out[i] = command.to_row(first_seq + i, ts)
    return out
