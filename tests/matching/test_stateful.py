"""Model-based tests: the numba book against the reference, on random command streams.

A hypothesis state machine sends the same commands (one at a time and in batches) to a
``ReferenceBook`` and a ``FastBook`` and requires identical event arrays. After every
step it checks the book invariants of DESIGN.md (no crossed book, price-time FIFO,
filled + leaves = quantity, snapshot + restore = live state) against the snapshot and
against an independent model rebuilt from the events alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from bookkit import assert_same_events, spec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from matching import codes as c
from matching import rows as mr
from matching.api import OrderBook
from matching.codes import (
    BookCommandKind,
    BookEventKind,
    CancelReason,
    Liquidity,
    OrderType,
    Side,
    STPMode,
    TimeInForce,
)
from matching.fast import FastBook
from matching.reference import ReferenceBook
from matching.snapshot import BookSnapshot
from matching.spec import BookConfig, InstrumentSpec

# Small grids so that orders cross, queue and collide all the time.
SPECS = (
    InstrumentSpec(1, tick_size=1000, lot_size=1, min_price=1000, max_price=200_000,
                   min_qty=1, max_qty=40),
    InstrumentSpec(2, tick_size=5000, lot_size=5, min_price=5000, max_price=500_000,
                   min_qty=5, max_qty=200),
    InstrumentSpec(7, tick_size=1000, lot_size=1, min_price=90_000, max_price=110_000,
                   min_qty=1, max_qty=1_000_000),
)  # fmt: skip
SPEC_BY_ID = {s.instrument_id: s for s in SPECS}
GRID = {1: (98, 102), 2: (19, 21), 7: (99, 101)}  # price range in ticks
ACCOUNTS = 4  # accounts 0..3 are valid; 4 is one past max_accounts
CONFIGS = (
    BookConfig(initial_orders=2, max_orders=1 << 12, initial_accounts=1, max_accounts=ACCOUNTS),
    BookConfig(initial_orders=1, max_orders=8, initial_accounts=2, max_accounts=ACCOUNTS),
)
RESTING_TIFS = (TimeInForce.GTC, TimeInForce.GTD)
ROUNDTRIP_EVERY = 5  # steps between snapshot/restore hash checks


def new_books(config: BookConfig) -> tuple[OrderBook, OrderBook]:
    books = ReferenceBook(config), FastBook(config)
    for book in books:
        for s in SPECS:
            book.add_instrument(s)
    return books


def roundtrip(book: OrderBook, cls: type[OrderBook]) -> OrderBook:
    return cls.restore(BookSnapshot.from_bytes(book.snapshot().to_bytes()), book.config)


# --- a model of the resting orders, rebuilt from events only --------------------------


@dataclass(slots=True)
class ModelOrder:
    order_id: int
    account: int
    instrument: int
    side: int
    price: int
    leaves: int
    shown: int
    display: int
    tif: int
    stp: int
    post_only: int
    expire_ts: int
    stamp: int = 0  # when it last gained time priority


@dataclass(slots=True)
class TakerState:
    """What one command's taker has done so far."""

    order: ModelOrder
    qty: int
    filled: int = 0
    last_price: int = 0
    dec: int = 0  # size of the pending STP decrement of the resting order
    fok_killed: bool = False
    fok_fillable: bool = True


@dataclass
class EventModel:
    """The book as an event consumer sees it, plus the rules the events must obey.

    It keeps every resting order's size and queue position (from accepts, fills, refills,
    replaces, cancels and expiries alone) and checks each command's events against the
    rules of ``matching.reference``'s docstring. The books' snapshots must agree with it.
    """

    orders: dict[int, ModelOrder] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=dict)  # fills reported per live order id
    clock: int = 0
    trade_id: int = 0  # last trade id seen
    now: int = 0

    def _stamp(self) -> int:
        self.clock += 1
        return self.clock

    def apply(self, commands: np.ndarray, events: np.ndarray) -> None:
        """Consume one batch. Events of a command are contiguous and carry its seq."""
        pos = 0
        for row in commands.tolist():
            start = pos
            while pos < len(events) and events[pos, c.E_SEQ] == row[c.C_SEQ]:
                pos += 1
            self._apply_command(row, events[start:pos].tolist())
        assert pos == len(events), "events left over that match no command's seq"

    def _owned(self, row: list[int]) -> ModelOrder | None:
        o = self.orders.get(row[c.C_ORDER_ID])
        if o and (o.account, o.instrument) == (row[c.C_ACCOUNT], row[c.C_INSTRUMENT]):
            return o
        return None

    def _apply_command(self, row: list[int], events: list[list[int]]) -> None:
        self.now = max(self.now, row[c.C_TS])
        kind_in = row[c.C_KIND]
        taker: TakerState | None = None
        expiring, expired = True, []
        mass_ids: list[int] = []
        for i, e in enumerate(events):
            kind, oid = e[c.E_KIND], e[c.E_ORDER_ID]
            assert expiring or kind != BookEventKind.ORDER_EXPIRED, "expiry after other events"
            expiring = kind == BookEventKind.ORDER_EXPIRED
            if kind in (BookEventKind.ORDER_REJECTED, BookEventKind.COMMAND_REJECTED):
                assert i == len(events) - 1, "a reject is the command's last word"
                self._check_reject(row, e, self._owned(row))
            elif kind == BookEventKind.ORDER_EXPIRED:
                o = self.orders.pop(oid)
                assert o.tif == TimeInForce.GTD and o.expire_ts <= self.now, "early expiry"
                assert 0 < o.leaves == e[c.E_QTY] and e[c.E_LEAVES] == 0
                expired.append((o.expire_ts, oid))
            elif kind == BookEventKind.ORDER_ACCEPTED:
                assert kind_in == BookCommandKind.NEW_ORDER and oid == row[c.C_ORDER_ID]
                assert oid not in self.orders, "accepted an id that is still resting"
                assert e[c.E_LEAVES] == e[c.E_QTY] == row[c.C_QTY]
                self.filled[oid] = 0
                order = ModelOrder(
                    oid,
                    *(row[col] for col in (c.C_ACCOUNT, c.C_INSTRUMENT, c.C_SIDE, c.C_PRICE)),
                    leaves=row[c.C_QTY],
                    shown=0,
                    display=row[c.C_DISPLAY_QTY],
                    tif=row[c.C_TIF],
                    stp=row[c.C_STP],
                    post_only=row[c.C_POST_ONLY],
                    expire_ts=row[c.C_EXPIRE_TS],
                )
                taker = TakerState(order, row[c.C_QTY])
                if order.tif == TimeInForce.FOK:
                    taker.fok_fillable = self._fok_fillable(order)
            elif kind == BookEventKind.ORDER_REPLACED:
                o = self._owned(row)
                assert kind_in == BookCommandKind.REPLACE_ORDER and o is not None
                assert e[c.E_QTY] == row[c.C_QTY] == self.filled[oid] + e[c.E_LEAVES]
                if e[c.E_PRICE] == o.price and e[c.E_LEAVES] <= o.leaves:
                    # Keeps its place; the cut comes out of the hidden reserve first.
                    assert e[c.E_SHOWN] == min(o.shown, e[c.E_LEAVES]), "hidden-first cut"
                    o.leaves, o.shown = e[c.E_LEAVES], e[c.E_SHOWN]
                else:
                    del self.orders[oid]
                    o.price, o.leaves = e[c.E_PRICE], e[c.E_LEAVES]
                    taker = TakerState(o, o.leaves)
            elif kind == BookEventKind.ORDER_FILLED and e[c.E_LIQUIDITY] == Liquidity.MAKER:
                assert taker is not None and e[c.E_CONTRA_ORDER_ID] == taker.order.order_id
                self._maker_fill(self.orders[oid], e, taker)
            elif kind == BookEventKind.ORDER_FILLED:
                assert taker is not None and oid == taker.order.order_id
                self._taker_fill(taker, e)
            elif kind == BookEventKind.ORDER_CANCELLED and oid in self.orders:
                self._resting_cancel(row, self.orders[oid], e, taker, mass_ids)
            elif kind == BookEventKind.ORDER_CANCELLED:
                assert taker is not None and oid == taker.order.order_id, "cancelled a stranger"
                self._taker_cancel(taker, e)
            else:
                assert kind == BookEventKind.MASS_CANCEL_DONE, kind
                assert kind_in == BookCommandKind.MASS_CANCEL and i == len(events) - 1
                assert e[c.E_QTY] == len(mass_ids)
                assert mass_ids == sorted(mass_ids), "mass cancel out of order id order"
                assert not any(
                    o.account == row[c.C_ACCOUNT] and row[c.C_INSTRUMENT] in (-1, o.instrument)
                    for o in self.orders.values()
                ), "mass cancel left an order of the account"
        assert expired == sorted(expired), "expiries out of (expire_ts, order id) order"
        if taker is not None:
            self._finish_taker(taker)

    def _check_reject(self, row: list[int], e: list[int], owned: ModelOrder | None) -> None:
        code = e[c.E_REASON]
        if code == c.BookReject.DUPLICATE_ORDER_ID:
            assert row[c.C_ORDER_ID] in self.orders
        if code == c.BookReject.UNKNOWN_ORDER:
            assert owned is None, "own live order reported unknown"
        if code == c.BookReject.REPLACE_BELOW_FILLED:
            assert owned is not None and row[c.C_QTY] <= self.filled[owned.order_id]

    def _fok_fillable(self, t: ModelOrder) -> bool:
        """The documented FOK rule, from the resting orders the events have shown: enough
        quantity within the limit, and no level it needs holds its own account's order
        (unless its STP mode is CANCEL_OLDEST)."""
        levels: dict[int, list[ModelOrder]] = {}
        for o in self.orders.values():
            if o.instrument == t.instrument and o.side != t.side:
                levels.setdefault(o.price, []).append(o)
        need = t.leaves
        for price in sorted(levels, reverse=t.side == Side.SELL):
            if (price > t.price) if t.side == Side.BUY else (price < t.price):
                return False
            for o in levels[price]:
                if o.account != t.account:
                    need -= o.leaves
                elif t.stp != STPMode.CANCEL_OLDEST:
                    return False
            if need <= 0:
                return True
        return False

    def _maker_fill(self, o: ModelOrder, e: list[int], taker: TakerState) -> None:
        t = taker.order
        assert o.side != t.side and o.instrument == t.instrument
        assert o.account != t.account, "self-trade"
        assert e[c.E_PRICE] == o.price, "a trade must happen at the maker's price"
        assert 0 < e[c.E_QTY] <= o.shown, "a maker trades only its shown quantity"
        assert e[c.E_TRADE_ID] == self.trade_id + 1, "trade ids count up by one"
        self.trade_id += 1
        if taker.last_price:
            worse = (
                e[c.E_PRICE] < taker.last_price
                if t.side == Side.BUY
                else (e[c.E_PRICE] > taker.last_price)
            )
            assert not worse, "a taker went back to a better price level"
        taker.last_price = e[c.E_PRICE]
        assert o.leaves - e[c.E_QTY] == e[c.E_LEAVES]
        left_shown = o.shown - e[c.E_QTY]
        o.leaves, o.shown = e[c.E_LEAVES], e[c.E_SHOWN]
        if left_shown == 0 and o.leaves > 0:
            assert o.display > 0 and o.shown == min(o.display, o.leaves), "bad refill"
            o.stamp = self._stamp()  # an iceberg refill joins the back
        else:
            assert o.shown == left_shown
        self.filled[o.order_id] += e[c.E_QTY]
        if o.leaves == 0:
            del self.orders[o.order_id]

    def _taker_fill(self, taker: TakerState, e: list[int]) -> None:
        t = taker.order
        assert e[c.E_LIQUIDITY] == Liquidity.TAKER and not t.post_only, "post-only took"
        assert t.leaves - e[c.E_QTY] == e[c.E_LEAVES]
        assert e[c.E_TRADE_ID] == self.trade_id, "taker fill without its maker fill"
        assert e[c.E_PRICE] == taker.last_price
        if t.side == Side.BUY:
            assert e[c.E_PRICE] <= t.price, "bought above the limit"
        else:
            assert e[c.E_PRICE] >= t.price, "sold below the limit"
        t.leaves = e[c.E_LEAVES]
        taker.filled += e[c.E_QTY]
        self.filled[t.order_id] += e[c.E_QTY]

    def _resting_cancel(
        self,
        row: list[int],
        o: ModelOrder,
        e: list[int],
        taker: TakerState | None,
        mass_ids: list[int],
    ) -> None:
        reason = e[c.E_REASON]
        assert o.leaves - e[c.E_QTY] == e[c.E_LEAVES]
        if reason == CancelReason.USER:
            assert row[c.C_KIND] == BookCommandKind.CANCEL_ORDER and row[c.C_ORDER_ID] == o.order_id
            assert e[c.E_LEAVES] == 0
        elif reason == CancelReason.MASS_CANCEL:
            assert row[c.C_KIND] == BookCommandKind.MASS_CANCEL and o.account == row[c.C_ACCOUNT]
            assert row[c.C_INSTRUMENT] in (-1, o.instrument) and e[c.E_LEAVES] == 0
            mass_ids.append(o.order_id)
        else:
            assert reason == CancelReason.SELF_TRADE and taker is not None
            t = taker.order
            assert t.account == o.account and t.stp != STPMode.CANCEL_NEWEST
            if t.stp == STPMode.DECREMENT_AND_CANCEL:
                assert e[c.E_QTY] == min(t.leaves, o.leaves), "decrement by the smaller size"
                assert e[c.E_SHOWN] == min(o.shown, e[c.E_LEAVES]), "decrement hidden first"
                taker.dec = e[c.E_QTY]
            else:
                assert e[c.E_LEAVES] == 0
        o.leaves, o.shown = e[c.E_LEAVES], e[c.E_SHOWN]
        if o.leaves == 0:
            del self.orders[o.order_id]

    def _taker_cancel(self, taker: TakerState, e: list[int]) -> None:
        t = taker.order
        reason = e[c.E_REASON]
        assert t.leaves - e[c.E_QTY] == e[c.E_LEAVES]
        if reason == CancelReason.SELF_TRADE:
            assert t.stp != STPMode.CANCEL_OLDEST and t.tif != TimeInForce.FOK
            if t.stp == STPMode.DECREMENT_AND_CANCEL:
                assert e[c.E_QTY] == taker.dec, "both sides shrink by the same size"
                taker.dec = 0
            else:
                assert e[c.E_LEAVES] == 0
        elif reason == CancelReason.FILL_OR_KILL:
            assert t.tif == TimeInForce.FOK and taker.filled == 0 and e[c.E_LEAVES] == 0
            taker.fok_killed = True
        else:
            assert reason == CancelReason.IMMEDIATE_OR_CANCEL and e[c.E_LEAVES] == 0
            assert t.tif == TimeInForce.IOC
        t.leaves = e[c.E_LEAVES]

    def _finish_taker(self, taker: TakerState) -> None:
        t = taker.order
        assert taker.dec == 0, "a resting order was decremented but the taker was not"
        if t.tif == TimeInForce.FOK:
            assert taker.fok_killed or taker.filled == taker.qty, "FOK partly filled"
            assert taker.fok_killed != taker.fok_fillable, "FOK rule not followed"
        if t.leaves > 0:
            assert t.tif in RESTING_TIFS, "an IOC/FOK remainder was left open"
            t.shown = min(t.display, t.leaves) if t.display else t.leaves
            t.stamp = self._stamp()
            self.orders[t.order_id] = t


# --- invariant checks on one book ---------------------------------------------------------


def check_book(book: OrderBook, model: EventModel) -> None:
    """The snapshot, the queries and the event model all describe the same book."""
    snap = book.snapshot()
    orders = snap.orders
    assert orders.dtype == np.int64
    assert (snap.trade_id, snap.now) == (model.trade_id, model.now)
    qty, filled = orders[:, c.S_QTY], orders[:, c.S_FILLED]
    shown, hidden = orders[:, c.S_SHOWN], orders[:, c.S_HIDDEN]
    assert np.array_equal(filled + shown + hidden, qty), "filled + leaves != qty"
    assert (shown > 0).all(), "a resting order shows nothing"
    assert (hidden >= 0).all() and (filled >= 0).all()
    iceberg = orders[:, c.S_DISPLAY] > 0
    assert (shown[iceberg] <= orders[iceberg, c.S_DISPLAY]).all()
    assert (hidden[~iceberg] == 0).all(), "hidden quantity on a plain order"
    assert np.isin(orders[:, c.S_TIF], RESTING_TIFS).all()
    gtd = orders[:, c.S_TIF] == TimeInForce.GTD
    assert (orders[gtd, c.S_EXPIRE_TS] > snap.now).all(), "a GTD order outlived its expiry"
    assert (orders[~gtd, c.S_EXPIRE_TS] == 0).all()
    assert book.open_order_count() == len(orders)
    ids = orders[:, c.S_ORDER_ID].tolist()
    assert len(set(ids)) == len(ids), "an order id rests twice"

    # Event model: same orders, sizes, fills and queue order.
    assert set(ids) == set(model.orders), "resting orders differ from the event stream"
    for r in orders.tolist():
        o = model.orders[r[c.S_ORDER_ID]]
        assert (o.account, o.instrument, o.side, o.price, o.display, o.tif) == (
            r[c.S_ACCOUNT],
            r[c.S_INSTRUMENT],
            r[c.S_SIDE],
            r[c.S_PRICE],
            r[c.S_DISPLAY],
            r[c.S_TIF],
        )
        assert (o.stp, o.post_only, o.expire_ts) == (
            r[c.S_STP],
            r[c.S_POST_ONLY],
            r[c.S_EXPIRE_TS],
        )
        assert (o.leaves, o.shown) == (r[c.S_SHOWN] + r[c.S_HIDDEN], r[c.S_SHOWN])
        assert model.filled[r[c.S_ORDER_ID]] == r[c.S_FILLED], "fills reported != filled"

    # One order by id, and an account's orders by id: the same rows as the snapshot.
    assert isinstance(book, (FastBook, ReferenceBook))
    rows = sorted(orders.tolist(), key=lambda r: r[c.S_ORDER_ID])
    for r in rows:
        found = book.order(r[c.S_ORDER_ID])
        assert found is not None and found.tolist() == r
    for gone in (0, -1, max(ids, default=0) + 1, *model.filled.keys() - set(ids)):
        assert book.order(gone) is None
    for acct in range(-1, ACCOUNTS + 1):
        mine_all = [r for r in rows if r[c.S_ACCOUNT] == acct]
        assert book.account_orders(acct).tolist() == mine_all
        for iid in (*snap.specs[:, 0].tolist(), 99):
            want = [r for r in mine_all if r[c.S_INSTRUMENT] == iid]
            assert book.account_orders(acct, iid).tolist() == want

    for iid in snap.specs[:, 0].tolist():
        mine = orders[orders[:, c.S_INSTRUMENT] == iid]
        bids, asks = book.depth(iid, 1_000)
        for side, levels, better in ((Side.BUY, bids, -1), (Side.SELL, asks, 1)):
            rows = mine[mine[:, c.S_SIDE] == side]
            prices = list(dict.fromkeys(rows[:, c.S_PRICE].tolist()))  # snapshot order
            assert prices == sorted(prices, key=lambda p: better * p), "levels out of order"
            assert levels[:, 0].tolist() == prices
            for price, visible, count in levels.tolist():
                at = rows[rows[:, c.S_PRICE] == price]
                assert visible == at[:, c.S_SHOWN].sum() and count == len(at)
                queue = book.level_orders(iid, side, price)
                assert queue == at[:, c.S_ORDER_ID].tolist(), "level_orders != snapshot"
                stamps = [model.orders[i].stamp for i in queue]
                assert stamps == sorted(stamps), f"FIFO broken at {price}: {queue}"
        bid, _, ask, _ = book.best_bid_offer(iid)
        if len(bids) and len(asks):
            assert bid < ask, f"crossed book on instrument {iid}: {bid} >= {ask}"


# --- the state machine ---------------------------------------------------------------------


class BookComparison(RuleBasedStateMachine):
    """Reference and fast book, fed the same commands; the event model rides along."""

    def __init__(self) -> None:
        super().__init__()
        self.ref, self.fast = new_books(CONFIGS[0])
        self.model = EventModel()
        self.seq = 0
        self.ts = 0
        self.next_id = 1
        self.used_ids: list[int] = []
        self.steps = 0

    @initialize(config=st.sampled_from(CONFIGS))
    def choose_config(self, config: BookConfig) -> None:
        self.ref, self.fast = new_books(config)

    # --- drawing commands -----------------------------------------------------------------
    def _stamp_row(self, row: np.ndarray, data: st.DataObject) -> np.ndarray:
        self.seq += 1
        self.ts += data.draw(st.sampled_from((0, 0, 1, 1, 2, 5)), label="dt")
        late = data.draw(st.integers(0, 9), label="late") == 0  # a late timestamp, ignored
        row[c.C_SEQ], row[c.C_TS] = self.seq, max(0, self.ts - 3) if late else self.ts
        return row

    def _price(self, data: st.DataObject, iid: int) -> int:
        lo, hi = GRID[iid]
        return data.draw(st.integers(lo, hi), label="ticks") * SPEC_BY_ID[iid].tick_size

    def _qty(self, data: st.DataObject, iid: int, top: int = 12) -> int:
        return data.draw(st.integers(1, top), label="lots") * SPEC_BY_ID[iid].lot_size

    def _order_id(self, data: st.DataObject) -> int:
        if self.used_ids and data.draw(st.integers(0, 7), label="reuse id") == 0:
            return data.draw(st.sampled_from(self.used_ids), label="old id")
        self.next_id += 1
        self.used_ids.append(self.next_id)
        return self.next_id

    def draw_new_order(self, data: st.DataObject, *, rest: bool = False) -> np.ndarray:
        """Any new order; with ``rest`` a limit order that may rest (GTC or GTD)."""
        iid = data.draw(st.sampled_from([s.instrument_id for s in SPECS]), label="instrument")
        lot = SPEC_BY_ID[iid].lot_size
        otype, tif = OrderType.LIMIT, TimeInForce.GTC
        if not rest:
            otype = data.draw(st.sampled_from([OrderType.LIMIT] * 5 + [OrderType.MARKET]))
        if otype == OrderType.MARKET:
            tif = data.draw(st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]))
        else:
            tifs = [TimeInForce.GTC] * 4 + [TimeInForce.GTD] * 2
            tif = data.draw(
                st.sampled_from(tifs if rest else [*tifs, TimeInForce.IOC, TimeInForce.FOK])
            )
        resting = tif in RESTING_TIFS
        qty = self._qty(data, iid)
        display = 0
        if resting and data.draw(st.integers(0, 3), label="iceberg?") == 0:
            display = data.draw(st.integers(1, qty // lot), label="display lots") * lot
        row = mr.new_order_row(
            order_id=self._order_id(data),
            account=data.draw(st.integers(0, ACCOUNTS - 1), label="account"),
            instrument=iid,
            side=data.draw(st.sampled_from(Side), label="side"),
            price=self._price(data, iid),
            qty=qty,
            order_type=otype,
            tif=tif,
            post_only=resting and data.draw(st.integers(0, 4), label="post only?") == 0,
            stp=data.draw(st.sampled_from(STPMode), label="stp"),
            display_qty=display,
        )
        row = self._stamp_row(row, data)
        if tif == TimeInForce.GTD:
            row[c.C_EXPIRE_TS] = self.ts + data.draw(st.integers(1, 40), label="lifetime")
        return row

    def draw_cancel(self, data: st.DataObject) -> np.ndarray:
        oid, account, iid = self._target(data)
        return self._stamp_row(mr.cancel_row(order_id=oid, account=account, instrument=iid), data)

    def draw_replace(self, data: st.DataObject) -> np.ndarray:
        oid, account, iid = self._target(data)
        o = self.model.orders.get(oid)
        iid_ok = iid if iid in SPEC_BY_ID else 1
        if o is not None and data.draw(st.booleans(), label="same price?"):
            price = o.price
        else:
            price = self._price(data, iid_ok)
        lot = SPEC_BY_ID[iid_ok].lot_size
        if o is not None:
            done = self.model.filled[oid] // lot
            lots = data.draw(st.integers(max(done - 1, 0), done + o.leaves // lot + 3))
            qty = max(lots * lot, lot)
        else:
            qty = self._qty(data, iid_ok)
        return self._stamp_row(
            mr.replace_row(order_id=oid, account=account, instrument=iid, price=price, qty=qty),
            data,
        )

    def _target(self, data: st.DataObject) -> tuple[int, int, int]:
        """Mostly a live order of its owner; sometimes a stranger's, a dead or a bad id."""
        live = sorted(self.model.orders)
        how = data.draw(st.integers(0, 9), label="target")
        if live and how < 8:
            oid = data.draw(st.sampled_from(live), label="live id")
            o = self.model.orders[oid]
            account = (o.account + 1) % ACCOUNTS if how == 7 else o.account
            iid = o.instrument
            if how == 6:
                iid = next(i for i in SPEC_BY_ID if i != o.instrument)
            return oid, account, iid
        oid = data.draw(st.sampled_from([*self.used_ids, 0, -1, 999_999]), label="any id")
        return oid, data.draw(st.integers(0, ACCOUNTS - 1)), data.draw(st.sampled_from([1, 2, 7]))

    def draw_mass_cancel(self, data: st.DataObject) -> np.ndarray:
        account = data.draw(
            st.sampled_from([*range(ACCOUNTS)] * 2 + [-1, ACCOUNTS]), label="account"
        )
        iid = data.draw(st.sampled_from([-1, -1, 1, 2, 7, 99]), label="instrument")
        return self._stamp_row(mr.mass_cancel_row(account=account, instrument=iid), data)

    def draw_clock_tick(self, data: st.DataObject) -> np.ndarray:
        self.ts += data.draw(st.integers(0, 8), label="tick")
        return self._stamp_row(mr.clock_tick_row(self.ts), data)

    def draw_invalid(self, data: st.DataObject) -> np.ndarray:
        """A command with one field broken (or an unknown kind) that must change nothing
        but the clock."""
        row = data.draw(st.sampled_from([self.draw_new_order, self.draw_replace]))(data)
        iid = int(row[c.C_INSTRUMENT])
        spec = SPEC_BY_ID.get(iid, SPECS[0])
        breakages = {
            c.C_KIND: [0, 6, 99],
            c.C_INSTRUMENT: [0, 3, 99, -1],
            c.C_ACCOUNT: [-1, ACCOUNTS, 1 << 40],
            c.C_ORDER_ID: [0, -7],
            c.C_SIDE: [0, 3],
            c.C_ORDER_TYPE: [0, 3],
            c.C_TIF: [0, 5],
            c.C_STP: [-1, 4],
            c.C_POST_ONLY: [2, -1, 1],
            c.C_PRICE: [0, -spec.tick_size, spec.max_price + spec.tick_size, spec.tick_size + 1,
                        1 << 62],
            c.C_QTY: [0, -spec.lot_size, spec.max_qty + spec.lot_size, spec.lot_size + 1,
                      1 << 62],
            c.C_DISPLAY_QTY: [-1, int(row[c.C_QTY]) + spec.lot_size, 1],
            c.C_EXPIRE_TS: [self.ts, 0, max(self.ts - 5, 0), self.ts + 3],
        }  # fmt: skip
        col = data.draw(st.sampled_from(sorted(breakages)), label="broken field")
        row[col] = data.draw(st.sampled_from(breakages[col]), label="bad value")
        return row

    def draw_any(self, data: st.DataObject) -> np.ndarray:
        draw = data.draw(
            st.sampled_from(
                [self.draw_new_order] * 5
                + [
                    self.draw_cancel,
                    self.draw_replace,
                    self.draw_replace,
                    self.draw_mass_cancel,
                    self.draw_clock_tick,
                    self.draw_invalid,
                ]
            ),
            label="command",
        )
        return draw(data)

    # --- sending commands -----------------------------------------------------------------
    def run(self, rows: list[np.ndarray], *, fast_batched: bool = True) -> np.ndarray:
        """Send ``rows`` to both books: one gets them as one batch, the other one by one."""
        commands = np.stack(rows)
        before = self.ref.snapshot() if len(rows) == 1 else None
        if fast_batched:
            fast_events = self.fast.process(commands)
            ref_events = np.concatenate([self.ref.process(r[None]) for r in commands])
        else:
            ref_events = self.ref.process(commands)
            fast_events = np.concatenate([self.fast.process(r[None]) for r in commands])
        assert_same_events(ref_events, fast_events, f"after commands\n{commands}")
        assert ref_events.dtype == np.int64 and ref_events.shape[1] == c.N_EVENT_FIELDS
        self.model.apply(commands, ref_events)
        if before is not None and len(ref_events):
            self._check_reject_changes_only_time(before, commands[0], ref_events)
        self.steps += 1
        return ref_events

    def _check_reject_changes_only_time(
        self, before: BookSnapshot, row: np.ndarray, events: np.ndarray
    ) -> None:
        """A refused command has the effect of a clock tick at its timestamp, no more."""
        if events[-1, c.E_KIND] not in (
            BookEventKind.ORDER_REJECTED,
            BookEventKind.COMMAND_REJECTED,
        ):
            return
        twin = ReferenceBook.restore(before, self.ref.config)
        tick = twin.process(mr.clock_tick_row(int(row[c.C_TS]), seq=int(row[c.C_SEQ]))[None])
        assert_same_events(tick, events[:-1], "expiries before a reject")
        assert twin.state_hash() == self.ref.state_hash(), "a rejected command changed state"

    @rule(data=st.data())
    def new_order(self, data: st.DataObject) -> None:
        self.run([self.draw_new_order(data)])

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def self_cross(self, data: st.DataObject) -> None:
        """An account trades against its own resting order: every STP mode, FOK, iceberg."""
        oid = data.draw(st.sampled_from(sorted(self.model.orders)), label="own order")
        o = self.model.orders[oid]
        row = self.draw_new_order(data)
        row[c.C_ACCOUNT], row[c.C_INSTRUMENT] = o.account, o.instrument
        row[c.C_SIDE], row[c.C_PRICE] = 3 - o.side, o.price
        lot = SPEC_BY_ID[o.instrument].lot_size
        row[c.C_QTY] = data.draw(st.integers(1, o.leaves // lot + 3), label="lots") * lot
        row[c.C_DISPLAY_QTY] = 0
        self.run([row])

    @rule(data=st.data(), n=st.integers(1, 6))
    def quote(self, data: st.DataObject, n: int) -> None:
        """Market makers add resting orders, so that queues build up."""
        self.run([self.draw_new_order(data, rest=True) for _ in range(n)])

    @rule(data=st.data())
    def crossing_order(self, data: st.DataObject) -> None:
        """An order priced at or through the other side, so that something trades."""
        row = self.draw_new_order(data)
        iid, side = int(row[c.C_INSTRUMENT]), int(row[c.C_SIDE])
        bid, _, ask, _ = self.ref.best_bid_offer(iid)
        best = ask if side == Side.BUY else bid
        if best:
            spec = SPEC_BY_ID[iid]
            through = data.draw(st.integers(0, 2), label="ticks through") * spec.tick_size
            price = best + through if side == Side.BUY else best - through
            row[c.C_PRICE] = min(max(price, spec.min_price), spec.max_price)
        self.run([row], fast_batched=False)

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.run([self.draw_cancel(data)])

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def replace(self, data: st.DataObject) -> None:
        self.run([self.draw_replace(data)])

    @precondition(lambda self: len(self.model.orders) >= 3)
    @rule(data=st.data())
    def mass_cancel(self, data: st.DataObject) -> None:
        self.run([self.draw_mass_cancel(data)])

    @rule(data=st.data())
    def clock_tick(self, data: st.DataObject) -> None:
        self.run([self.draw_clock_tick(data)])

    @rule(data=st.data())
    def invalid_command(self, data: st.DataObject) -> None:
        self.run([self.draw_invalid(data)])

    @rule(data=st.data(), n=st.integers(2, 8), fast_batched=st.booleans())
    def batch(self, data: st.DataObject, n: int, fast_batched: bool) -> None:
        """Several commands in one ``process`` call behave as if sent one by one."""
        self.run([self.draw_any(data) for _ in range(n)], fast_batched=fast_batched)

    @precondition(lambda self: self.steps > 0)
    @rule(swap=st.booleans())
    def restore_across(self, swap: bool) -> None:
        """Continue on books restored from each other's snapshots (snapshot + replay)."""
        ref_hash = self.ref.state_hash()
        if swap:
            self.ref, self.fast = roundtrip(self.fast, ReferenceBook), roundtrip(self.ref, FastBook)
        else:
            self.ref, self.fast = roundtrip(self.ref, ReferenceBook), roundtrip(self.fast, FastBook)
        assert self.ref.state_hash() == self.fast.state_hash() == ref_hash

    # --- invariants ---------------------------------------------------------------------
    @invariant()
    def same_state(self) -> None:
        ref_snap, fast_snap = self.ref.snapshot(), self.fast.snapshot()
        if not np.array_equal(ref_snap.orders, fast_snap.orders):
            raise AssertionError(
                f"snapshots differ\nreference:\n{ref_snap.orders}\nfast:\n{fast_snap.orders}"
            )
        assert (ref_snap.trade_id, ref_snap.now) == (fast_snap.trade_id, fast_snap.now)
        assert ref_snap.state_hash() == fast_snap.state_hash()

    @invariant()
    def books_agree_with_the_event_model(self) -> None:
        check_book(self.ref, self.model)
        check_book(self.fast, self.model)

    @invariant()
    def snapshot_roundtrip_keeps_the_hash(self) -> None:
        if self.steps % ROUNDTRIP_EVERY or self.steps == 0:
            return
        want = self.ref.state_hash()
        for book in (self.ref, self.fast):
            for cls in (ReferenceBook, FastBook):
                assert roundtrip(book, cls).state_hash() == want


# 150 runs of 80 steps: a minute here, several on a slow, loaded machine.
TestBookComparison = pytest.mark.timeout(900)(BookComparison.TestCase)
TestBookComparison.settings = settings(
    max_examples=150,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- plain determinism and differential checks -------------------------------------------------


KIND_MIX = [1] * 12 + [2] * 3 + [3] * 3 + [4, 5, 9]


def random_commands(seed: int, n: int) -> np.ndarray:
    """A reproducible stream of mostly valid commands on the small grids above."""
    rng = np.random.default_rng(seed)
    rows = mr.empty_commands(n)
    ts = 0
    for i in range(n):
        ts += int(rng.integers(0, 3))
        iid = int(rng.choice([1, 2, 7]))
        spec = SPEC_BY_ID[iid]
        lo, hi = GRID[iid]
        kind = int(rng.choice(KIND_MIX))
        r = rows[i]
        r[c.C_SEQ], r[c.C_TS], r[c.C_KIND] = i + 1, ts, kind
        r[c.C_INSTRUMENT] = iid
        r[c.C_ORDER_ID] = int(rng.integers(1, max(2, i // 2 + 2)))
        r[c.C_ACCOUNT] = int(rng.integers(0, ACCOUNTS))
        r[c.C_SIDE] = int(rng.integers(1, 3))
        r[c.C_PRICE] = int(rng.integers(lo, hi + 1)) * spec.tick_size
        r[c.C_QTY] = int(rng.integers(1, 15)) * spec.lot_size
        r[c.C_ORDER_TYPE] = 2 if rng.random() < 0.1 else 1
        tif = int(rng.choice([1, 1, 2, 3, 4]))
        r[c.C_TIF] = tif if r[c.C_ORDER_TYPE] == 1 else int(rng.choice([2, 3]))
        r[c.C_STP] = int(rng.integers(0, 4))
        resting = r[c.C_TIF] in (1, 4) and r[c.C_ORDER_TYPE] == 1
        r[c.C_POST_ONLY] = int(resting and rng.random() < 0.15)
        if resting and rng.random() < 0.25:
            r[c.C_DISPLAY_QTY] = (
                int(rng.integers(1, r[c.C_QTY] // spec.lot_size + 1)) * spec.lot_size
            )
        if r[c.C_TIF] == 4:
            r[c.C_EXPIRE_TS] = ts + int(rng.integers(1, 30))
        if kind == 4:
            r[c.C_INSTRUMENT] = int(rng.choice([-1, iid]))
        if rng.random() < 0.03:  # a broken field
            r[int(rng.integers(3, c.N_COMMAND_FIELDS))] = int(rng.choice([-1, 0, 99, 1 << 40]))
    return rows


def test_same_commands_same_events_and_hash() -> None:
    """Determinism: the same command array processed twice, by fresh books of each
    implementation, gives identical events and states; batch size does not matter."""
    commands = random_commands(seed=20261201, n=3000)
    results = []
    for cls in (ReferenceBook, FastBook, ReferenceBook, FastBook):
        book = cls(CONFIGS[0])
        for s in SPECS:
            book.add_instrument(s)
        results.append((book.process(commands), book.state_hash()))
    chunked = FastBook(CONFIGS[0])
    for s in SPECS:
        chunked.add_instrument(s)
    parts = [chunked.process(commands[i : i + 97]) for i in range(0, len(commands), 97)]
    results.append((np.concatenate(parts), chunked.state_hash()))
    want_events, want_hash = results[0]
    kinds = set(want_events[:, c.E_KIND].tolist())
    assert kinds == set(BookEventKind), f"the stream should produce every event kind: {kinds}"
    assert int(want_events[:, c.E_TRADE_ID].max()) > 300
    for events, state_hash in results[1:]:
        assert_same_events(want_events, events)
        assert state_hash == want_hash


def test_random_stream_invariants_hold_for_every_seed() -> None:
    """Cheap wide net: many short streams, each checked against the event model."""
    for seed in range(40):
        commands = random_commands(seed, 150)
        ref, fast = new_books(CONFIGS[seed % 2])
        model = EventModel()
        for start in range(0, len(commands), 10):
            chunk = commands[start : start + 10]
            ref_events, fast_events = ref.process(chunk), fast.process(chunk)
            assert_same_events(ref_events, fast_events, f"seed {seed}, commands {start}..")
            model.apply(chunk, ref_events)
            check_book(ref, model)
            check_book(fast, model)
            assert ref.state_hash() == fast.state_hash()


def wide_commands(seed: int, n: int) -> np.ndarray:
    """Orders over the full CX price range (a million ticks): a deep book near the middle,
    stragglers far away and at the range edges, market orders that sweep to the ends."""
    rng = np.random.default_rng(seed)
    rows = mr.empty_commands(n)
    edges = [1, 2, 63, 64, 65, 127, 128, 4095, 4096, 4097, 999_999, 1_000_000]
    ts = 0
    for i in range(n):
        ts += int(rng.integers(0, 2))
        r = rows[i]
        kind = int(rng.choice([1] * 30 + [2, 3, 3, 4, 5]))
        side = int(rng.integers(1, 3))
        away = 1 if side == Side.SELL else -1
        u = rng.random()
        if u < 0.6:
            ticks = 500_000 + away * (abs(int(rng.normal(0, 150))) + 1)
        elif u < 0.7:
            ticks = 500_000 - away * int(rng.integers(0, 300))  # crosses
        elif u < 0.85:
            ticks = int(rng.integers(1, 1_000_001))
        else:
            ticks = int(rng.choice(edges))
        market = rng.random() < 0.05
        r[c.C_SEQ], r[c.C_TS], r[c.C_KIND] = i + 1, ts, kind
        r[c.C_INSTRUMENT] = int(rng.choice([1, 2])) if kind != 4 else int(rng.choice([-1, 1]))
        r[c.C_ORDER_ID] = int(rng.integers(1, i + 2))
        r[c.C_ACCOUNT] = int(rng.integers(0, 40))
        r[c.C_SIDE] = side
        r[c.C_PRICE] = ticks * 1000
        r[c.C_QTY] = int(rng.integers(1, 50))
        r[c.C_ORDER_TYPE] = OrderType.MARKET if market else OrderType.LIMIT
        r[c.C_TIF] = int(rng.choice([2, 3])) if market else int(rng.choice([1, 1, 1, 2, 3, 4]))
        if market and rng.random() < 0.5:
            r[c.C_PRICE] = 1000 if side == Side.SELL else 1_000_000_000
        r[c.C_STP] = int(rng.integers(0, 4))
        rest = r[c.C_TIF] in RESTING_TIFS and not market
        r[c.C_POST_ONLY] = int(rest and rng.random() < 0.1)
        if rest and rng.random() < 0.2:
            r[c.C_DISPLAY_QTY] = int(rng.integers(1, r[c.C_QTY] + 1))
        if r[c.C_TIF] == TimeInForce.GTD:
            r[c.C_EXPIRE_TS] = ts + int(rng.integers(1, 200))
    return rows


def test_wide_price_range_deep_book_stream() -> None:
    """Level lookup and next-price search over a million ticks, with hundreds of resting
    orders and pools that start at one slot: still the reference's events, bit for bit."""
    commands = wide_commands(seed=7, n=12_000)
    config = BookConfig(initial_orders=1, initial_accounts=1)
    ref, fast = ReferenceBook(config), FastBook(config)
    for book in (ref, fast):
        book.add_instrument(spec(1))
        book.add_instrument(spec(2))
    model = EventModel()
    for start in range(0, len(commands), 500):
        chunk = commands[start : start + 500]
        ref_events, fast_events = ref.process(chunk), fast.process(chunk)
        assert_same_events(ref_events, fast_events, f"commands {start}..")
        model.apply(chunk, ref_events)
        assert ref.state_hash() == fast.state_hash()
    assert ref.open_order_count() > 200 and ref.snapshot().trade_id > 3000
    for iid in (1, 2):
        for got, want in zip(fast.depth(iid, 1 << 20), ref.depth(iid, 1 << 20), strict=True):
            assert np.array_equal(got, want)
    check_book(ref, model)
    check_book(fast, model)
