"""Engine events -> ledger rows: risk's money rules (``risk/reference.py``) in double entry.

One batch of event rows (whole commands, in sequence order) becomes one ``LedgerBatch``:
numpy arrays, one per table, built column-wise (no Python object per event), so the writer
can send them with binary COPY. The mapping, per movement (all amounts in base units):

- Deposited: ``external(account)`` -amount, ``balance(account)`` +amount, in the asset.
- Withdrawn: ``balance(account)`` -amount, ``external(account)`` +amount.
- A trade (two ORDER_FILLED rows, one trade id), in USDC, with ``notional = price * qty``
  and each side's fee as the engine charged it (E_REASON; negative is a maker rebate):
  ``balance(buyer)`` -(notional + buyer fee), ``escrow(seller, instrument)``
  +(notional - seller fee), ``balance(fee account 0)`` +(buyer fee + seller fee).
  The escrow entry is the seller's receivable: summed per instrument it is risk's escrow,
  per (seller, instrument) risk's receivable. A zero amount (a tiny trade's fees) is no entry.

Every movement sums to zero per asset by construction; the database checks it again.
Orders are tracked from ORDER_ACCEPTED / FILLED / CANCELLED / REPLACED / EXPIRED, trades from
ORDER_FILLED (one row per trade id), accounts, instruments, deposits and withdrawals from
their events. Other events (rejects, oracle prices, limits, ...) move no money.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

from exchange.codes import EventKind
from matching import codes as mc
from matching.codes import Liquidity, Side
from risk.codes import FEE_ACCOUNT, USDC

MOVEMENT_SHIFT = 20  # movement_id = seq << 20 | the movement's place within its command
MAX_MOVEMENTS_PER_COMMAND = 1 << MOVEMENT_SHIFT  # an order filling 100,000 one-lot makers fits
MAX_SEQ = (1 << (63 - MOVEMENT_SHIFT)) - 1  # 8.8e12 commands: beyond, ids would overflow


class MovementKind(IntEnum):
    DEPOSIT = 1
    WITHDRAWAL = 2
    FILL = 3


class LedgerKind(IntEnum):
    """Kinds of ledger account (table ``ledger_account_kinds``)."""

    BALANCE = 1  # an account's balance of an asset; account 0's is the fee account
    EXTERNAL = 2  # outside the exchange, seen from one account
    ESCROW = 3  # an instrument's escrow held for one seller (its receivable)


class OrderStatus(IntEnum):
    """Table ``order_statuses``; LIVE is only a marker in ``orders_changed`` rows."""

    LIVE = 0  # still open: open or partially filled, decided by the total filled
    OPEN = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    EXPIRED = 5


class LedgerMappingError(ValueError):
    """The event rows cannot be mapped (a malformed stream: never a reason to skip rows)."""


def _dtype(*cols: tuple[str, str]) -> np.dtype:
    return np.dtype(list(cols))


ENTRY = _dtype(
    ("movement_id", "i8"),
    ("leg", "i2"),
    ("seq", "i8"),
    ("movement_kind", "i2"),
    ("ledger_kind", "i2"),
    ("account_id", "i8"),
    ("instrument_id", "i8"),
    ("asset_id", "i2"),
    ("amount", "i8"),
    ("ref", "i8"),
)
TRADE = _dtype(
    ("trade_id", "i8"),
    ("seq", "i8"),
    ("movement_id", "i8"),
    ("instrument_id", "i8"),
    ("price", "i8"),
    ("qty", "i8"),
    ("buy_order_id", "i8"),
    ("buy_account", "i8"),
    ("sell_order_id", "i8"),
    ("sell_account", "i8"),
    ("taker_side", "i2"),
    ("buy_fee", "i8"),
    ("sell_fee", "i8"),
)
ORDER = _dtype(
    ("order_id", "i8"),
    ("accepted_seq", "i8"),
    ("instrument_id", "i8"),
    ("account_id", "i8"),
    ("side", "i2"),
    ("price", "i8"),
    ("qty", "i8"),
    ("leaves", "i8"),
    ("filled", "i8"),
    ("status", "i2"),
    ("updated_seq", "i8"),
)
# An order accepted in an earlier batch: price/qty 0 = unchanged (no replace in this batch),
# qty_cut = quantity taken off by partial cancels (STP decrement) after the last replace,
# filled = filled in this batch, status LIVE = open or partially filled by the new total.
ORDER_CHANGE = _dtype(
    ("order_id", "i8"),
    ("price", "i8"),
    ("qty", "i8"),
    ("qty_cut", "i8"),
    ("leaves", "i8"),
    ("filled", "i8"),
    ("status", "i2"),
    ("updated_seq", "i8"),
)
BALANCE_DELTA = _dtype(
    ("ledger_kind", "i2"),
    ("account_id", "i8"),
    ("instrument_id", "i8"),
    ("asset_id", "i2"),
    ("amount", "i8"),
    ("updated_seq", "i8"),
)
TRANSFER = _dtype(
    ("seq", "i8"),
    ("movement_id", "i8"),
    ("account_id", "i8"),
    ("asset_id", "i2"),
    ("amount", "i8"),
    ("ref", "i8"),
    ("balance_after", "i8"),
)
ACCOUNT = _dtype(("account_id", "i8"), ("role", "i2"), ("opened_seq", "i8"))
INSTRUMENT = _dtype(
    ("instrument_id", "i8"),
    ("status", "i2"),
    ("reference_price", "i8"),
    ("max_qty", "i8"),
    ("listed_seq", "i8"),
    ("updated_seq", "i8"),
)
INSTRUMENT_STATUS = _dtype(("instrument_id", "i8"), ("status", "i2"), ("updated_seq", "i8"))


@dataclass
class LedgerBatch:
    """The rows one batch of events adds or changes, table by table.

    Insert-only tables (``INSERTS``) take these rows as they are; ``orders_changed``,
    ``instrument_status`` and ``balances`` are applied to rows already there.
    """

    first_seq: int
    last_seq: int
    events: int
    accounts: np.ndarray
    instruments: np.ndarray
    instrument_status: np.ndarray
    orders_changed: np.ndarray
    orders_new: np.ndarray
    trades: np.ndarray
    entries: np.ndarray
    balances: np.ndarray
    deposits: np.ndarray
    withdrawals: np.ndarray

    @property
    def fills(self) -> int:
        return len(self.trades)

    def rows_written(self) -> int:
        return sum(len(getattr(self, f.name)) for f in fields(self) if f.name not in _COUNTS)


_COUNTS = {"first_seq", "last_seq", "events"}

# batch field -> table, for the tables a batch only appends to
INSERTS: dict[str, str] = {
    "accounts": "accounts",
    "instruments": "instruments",
    "orders_new": "orders",
    "trades": "trades",
    "entries": "ledger_entries",
    "deposits": "deposits",
    "withdrawals": "withdrawals",
}


def map_events(rows: np.ndarray) -> LedgerBatch:
    """The ledger rows of a batch of event rows (whole commands, in sequence order)."""
    ev = np.ascontiguousarray(rows, dtype=np.int64)
    if ev.ndim != 2 or ev.shape[1] != mc.N_EVENT_FIELDS or len(ev) == 0:
        raise LedgerMappingError(f"event rows must have shape (n >= 1, {mc.N_EVENT_FIELDS})")
    seq = ev[:, mc.E_SEQ]
    if np.any(seq[1:] < seq[:-1]):
        raise LedgerMappingError("event rows are not in sequence order")
    if seq[0] <= 0 or seq[-1] > MAX_SEQ:
        raise LedgerMappingError(f"sequence numbers must be within 1..{MAX_SEQ}")
    kind = ev[:, mc.E_KIND]
    trades, fill_entries = _fills(ev[kind == EventKind.ORDER_FILLED])
    deposits, dep_entries = _transfers(ev[kind == EventKind.DEPOSITED], MovementKind.DEPOSIT)
    withdrawals, wd_entries = _transfers(ev[kind == EventKind.WITHDRAWN], MovementKind.WITHDRAWAL)
    entries = np.concatenate([fill_entries, dep_entries, wd_entries])
    if len(dep_entries) or len(wd_entries):
        entries = entries[np.argsort(entries["movement_id"], kind="stable")]
    orders_new, orders_changed = _orders(ev[np.isin(kind, _ORDER_KINDS)])
    return LedgerBatch(
        first_seq=int(seq[0]),
        last_seq=int(seq[-1]),
        events=len(ev),
        accounts=_accounts(ev[kind == EventKind.ACCOUNT_OPENED]),
        instruments=_instruments(ev[kind == EventKind.INSTRUMENT_LISTED]),
        instrument_status=_instrument_status(ev[kind == EventKind.INSTRUMENT_STATUS_CHANGED]),
        orders_changed=orders_changed,
        orders_new=orders_new,
        trades=trades,
        entries=entries,
        balances=balance_deltas(entries),
        deposits=deposits,
        withdrawals=withdrawals,
    )


# -- money -------------------------------------------------------------------------------------


def _ordinal(seq: np.ndarray) -> np.ndarray:
    """Each item's place among the items of its command (``seq`` sorted)."""
    ordinal = np.arange(len(seq)) - np.searchsorted(seq, seq, side="left")
    if len(seq) and ordinal.max() >= MAX_MOVEMENTS_PER_COMMAND:
        raise LedgerMappingError("a command made more movements than a movement id can number")
    return ordinal


def _fills(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trades and their entries from ORDER_FILLED rows (two per trade)."""
    n = len(f) // 2
    if len(f) % 2:
        raise LedgerMappingError("an ORDER_FILLED row without its other side")
    f = f[np.lexsort((f[:, mc.E_TRADE_ID], f[:, mc.E_SEQ]))]
    a, b = f[0::2], f[1::2]
    paired = (
        (a[:, mc.E_TRADE_ID] == b[:, mc.E_TRADE_ID])
        & (a[:, mc.E_SIDE] + b[:, mc.E_SIDE] == Side.BUY + Side.SELL)
        & (a[:, mc.E_PRICE] == b[:, mc.E_PRICE])
        & (a[:, mc.E_QTY] == b[:, mc.E_QTY])
        & (a[:, mc.E_INSTRUMENT] == b[:, mc.E_INSTRUMENT])
        & (a[:, mc.E_SEQ] == b[:, mc.E_SEQ])
    )
    if not paired.all():
        raise LedgerMappingError("ORDER_FILLED rows do not pair into trades (buy and sell)")
    a_buys = (a[:, mc.E_SIDE] == Side.BUY)[:, None]
    buy, sell = np.where(a_buys, a, b), np.where(a_buys, b, a)
    seq = buy[:, mc.E_SEQ]
    movement = (seq << MOVEMENT_SHIFT) | _ordinal(seq)
    price, qty = buy[:, mc.E_PRICE], buy[:, mc.E_QTY]
    notional = price * qty
    buy_fee, sell_fee = buy[:, mc.E_REASON], sell[:, mc.E_REASON]

    trades = np.empty(n, TRADE)
    trades["trade_id"] = buy[:, mc.E_TRADE_ID]
    trades["seq"] = seq
    trades["movement_id"] = movement
    trades["instrument_id"] = buy[:, mc.E_INSTRUMENT]
    trades["price"] = price
    trades["qty"] = qty
    trades["buy_order_id"] = buy[:, mc.E_ORDER_ID]
    trades["buy_account"] = buy[:, mc.E_ACCOUNT]
    trades["sell_order_id"] = sell[:, mc.E_ORDER_ID]
    trades["sell_account"] = sell[:, mc.E_ACCOUNT]
    trades["taker_side"] = np.where(buy[:, mc.E_LIQUIDITY] == Liquidity.TAKER, Side.BUY, Side.SELL)
    trades["buy_fee"] = buy_fee
    trades["sell_fee"] = sell_fee

    legs = 3
    e = np.empty((n, legs), ENTRY)
    e["movement_id"] = movement[:, None]
    e["leg"] = np.arange(legs)
    e["seq"] = seq[:, None]
    e["movement_kind"] = MovementKind.FILL
    e["ledger_kind"] = [LedgerKind.BALANCE, LedgerKind.ESCROW, LedgerKind.BALANCE]
    e["account_id"][:, 0] = buy[:, mc.E_ACCOUNT]
    e["account_id"][:, 1] = sell[:, mc.E_ACCOUNT]
    e["account_id"][:, 2] = FEE_ACCOUNT
    e["instrument_id"] = 0
    e["instrument_id"][:, 1] = buy[:, mc.E_INSTRUMENT]
    e["asset_id"] = USDC
    e["amount"][:, 0] = -(notional + buy_fee)
    e["amount"][:, 1] = notional - sell_fee
    e["amount"][:, 2] = buy_fee + sell_fee
    e["ref"] = buy[:, mc.E_TRADE_ID][:, None]
    e = e.ravel()
    return trades, e[e["amount"] != 0]


def _transfers(t: np.ndarray, kind: MovementKind) -> tuple[np.ndarray, np.ndarray]:
    """Deposits or withdrawals and their two entries each (one event per command)."""
    n = len(t)
    seq = t[:, mc.E_SEQ]
    movement = seq << MOVEMENT_SHIFT
    rows = np.empty(n, TRANSFER)
    rows["seq"] = seq
    rows["movement_id"] = movement
    rows["account_id"] = t[:, mc.E_ACCOUNT]
    rows["asset_id"] = t[:, mc.E_INSTRUMENT]
    rows["amount"] = t[:, mc.E_QTY]
    rows["ref"] = t[:, mc.E_TRADE_ID]
    rows["balance_after"] = t[:, mc.E_LEAVES]
    if n and (rows["amount"] <= 0).any():
        raise LedgerMappingError(f"a {kind.name.lower()} of a non-positive amount")
    e = np.empty((n, 2), ENTRY)
    e["movement_id"] = movement[:, None]
    e["leg"] = [0, 1]
    e["seq"] = seq[:, None]
    e["movement_kind"] = kind
    into_balance = kind == MovementKind.DEPOSIT
    e["ledger_kind"] = (
        [LedgerKind.EXTERNAL, LedgerKind.BALANCE]
        if into_balance
        else [LedgerKind.BALANCE, LedgerKind.EXTERNAL]
    )
    e["account_id"] = t[:, mc.E_ACCOUNT][:, None]
    e["instrument_id"] = 0
    e["asset_id"] = t[:, mc.E_INSTRUMENT][:, None]
    amount = t[:, mc.E_QTY]
    e["amount"][:, 0] = -amount
    e["amount"][:, 1] = amount
    e["ref"] = t[:, mc.E_TRADE_ID][:, None]
    return rows, e.ravel()


def balance_deltas(entries: np.ndarray) -> np.ndarray:
    """The entries summed per ledger account and asset (the ``balances`` upsert)."""
    if len(entries) == 0:
        return np.empty(0, BALANCE_DELTA)
    keys = ("ledger_kind", "account_id", "instrument_id", "asset_id")
    order = np.lexsort([entries[k] for k in reversed(keys)])
    s = entries[order]
    change = np.zeros(len(s), bool)
    change[0] = True
    for k in keys:
        change[1:] |= s[k][1:] != s[k][:-1]
    starts = np.flatnonzero(change)
    out = np.empty(len(starts), BALANCE_DELTA)
    for k in keys:
        out[k] = s[k][starts]
    out["amount"] = np.add.reduceat(s["amount"], starts)
    out["updated_seq"] = np.maximum.reduceat(s["seq"], starts)
    return out


# -- orders ----------------------------------------------------------------------------------

_ORDER_KINDS = [
    EventKind.ORDER_ACCEPTED,
    EventKind.ORDER_FILLED,
    EventKind.ORDER_CANCELLED,
    EventKind.ORDER_REPLACED,
    EventKind.ORDER_EXPIRED,
]


def _orders(o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New orders (accepted in this batch) and changes to orders accepted before.

    An order's events in the batch are one segment: its id's events in stream order, cut
    again at each ORDER_ACCEPTED (an id comes back only after its order is done). A segment
    that starts with ORDER_ACCEPTED is a new row; any other changes the live row of its id.
    """
    if len(o) == 0:
        return np.empty(0, ORDER), np.empty(0, ORDER_CHANGE)
    o = o[np.argsort(o[:, mc.E_ORDER_ID], kind="stable")]
    oid, kind = o[:, mc.E_ORDER_ID], o[:, mc.E_KIND]
    accepted = kind == EventKind.ORDER_ACCEPTED
    cut = accepted.copy()
    cut[0] = True
    cut[1:] |= oid[1:] != oid[:-1]
    starts = np.flatnonzero(cut)
    ends = np.r_[starts[1:], len(o)] - 1
    first, last = o[starts], o[ends]
    filled = np.add.reduceat(np.where(kind == EventKind.ORDER_FILLED, o[:, mc.E_QTY], 0), starts)
    at = np.arange(len(o))
    replace_at = np.maximum.reduceat(np.where(kind == EventKind.ORDER_REPLACED, at, -1), starts)
    replaced = replace_at >= 0
    rep = o[np.maximum(replace_at, 0)]
    # a partial cancel (leaves stay) shrinks the order's quantity, as the book's does
    after_replace = at > np.repeat(replace_at, ends - starts + 1)
    partial = (kind == EventKind.ORDER_CANCELLED) & (o[:, mc.E_LEAVES] > 0) & after_replace
    qty_cut = np.add.reduceat(np.where(partial, o[:, mc.E_QTY], 0), starts)

    last_kind = last[:, mc.E_KIND]
    leaves = np.where(last_kind == EventKind.ORDER_EXPIRED, 0, last[:, mc.E_LEAVES])
    status: np.ndarray = np.select(
        [
            leaves > 0,
            last_kind == EventKind.ORDER_FILLED,
            last_kind == EventKind.ORDER_CANCELLED,
            last_kind == EventKind.ORDER_EXPIRED,
        ],
        np.array(
            [OrderStatus.LIVE, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED],
            dtype=np.int64,
        ),
        -1,
    )
    if (status < 0).any():
        raise LedgerMappingError("an order ended with no quantity left and no final event")

    new = first[:, mc.E_KIND] == EventKind.ORDER_ACCEPTED
    nw = np.flatnonzero(new)
    orders = np.empty(len(nw), ORDER)
    orders["order_id"] = first[nw, mc.E_ORDER_ID]
    orders["accepted_seq"] = first[nw, mc.E_SEQ]
    orders["instrument_id"] = first[nw, mc.E_INSTRUMENT]
    orders["account_id"] = first[nw, mc.E_ACCOUNT]
    orders["side"] = first[nw, mc.E_SIDE]
    orders["price"] = np.where(replaced[nw], rep[nw, mc.E_PRICE], first[nw, mc.E_PRICE])
    base_qty = np.where(replaced[nw], rep[nw, mc.E_QTY], first[nw, mc.E_QTY])
    orders["qty"] = base_qty - qty_cut[nw]
    orders["leaves"] = leaves[nw]
    orders["filled"] = filled[nw]
    live_status = np.where(filled[nw] > 0, OrderStatus.PARTIALLY_FILLED, OrderStatus.OPEN)
    orders["status"] = np.where(status[nw] == OrderStatus.LIVE, live_status, status[nw])
    orders["updated_seq"] = last[nw, mc.E_SEQ]

    ch = np.flatnonzero(~new)
    changes = np.empty(len(ch), ORDER_CHANGE)
    changes["order_id"] = first[ch, mc.E_ORDER_ID]
    changes["price"] = np.where(replaced[ch], rep[ch, mc.E_PRICE], 0)
    changes["qty"] = np.where(replaced[ch], rep[ch, mc.E_QTY], 0)
    changes["qty_cut"] = qty_cut[ch]
    changes["leaves"] = leaves[ch]
    changes["filled"] = filled[ch]
    changes["status"] = status[ch]
    changes["updated_seq"] = last[ch, mc.E_SEQ]
    return orders, changes


# -- reference data ----------------------------------------------------------------------------


def _accounts(a: np.ndarray) -> np.ndarray:
    out = np.empty(len(a), ACCOUNT)
    out["account_id"] = a[:, mc.E_ACCOUNT]
    out["role"] = a[:, mc.E_SIDE]
    out["opened_seq"] = a[:, mc.E_SEQ]
    return out


def _instruments(i: np.ndarray) -> np.ndarray:
    out = np.empty(len(i), INSTRUMENT)
    out["instrument_id"] = i[:, mc.E_INSTRUMENT]
    out["status"] = i[:, mc.E_SIDE]
    out["reference_price"] = i[:, mc.E_PRICE]
    out["max_qty"] = i[:, mc.E_QTY]
    out["listed_seq"] = i[:, mc.E_SEQ]
    out["updated_seq"] = i[:, mc.E_SEQ]
    return out


def _instrument_status(s: np.ndarray) -> np.ndarray:
    """The last status change of each instrument in the batch."""
    if len(s) == 0:
        return np.empty(0, INSTRUMENT_STATUS)
    ids = s[:, mc.E_INSTRUMENT]
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    last = np.r_[ids_sorted[1:] != ids_sorted[:-1], True]
    pick = s[order[last]]
    out = np.empty(len(pick), INSTRUMENT_STATUS)
    out["instrument_id"] = pick[:, mc.E_INSTRUMENT]
    out["status"] = pick[:, mc.E_SIDE]
    out["updated_seq"] = pick[:, mc.E_SEQ]
    return out
