"""The reference order book: plain Python on sortedcontainers, written to be obviously right.

It is the oracle the numba book is tested against and the baseline its speed is
measured against, so it implements every rule of ``matching`` in the most direct way:

* price-time priority; trades happen at the resting order's price;
* validation first, in a fixed order; a rejected command changes nothing;
* GTD orders expire at the start of the first command whose timestamp reaches their
  expiry, in (expiry, order id) order, tagged with that command's sequence number;
* FOK fills completely or not at all; a level that holds an order of the taker's own
  account makes it unfillable unless its STP mode is CANCEL_OLDEST;
* iceberg refills go to the back of their level;
* a replace that keeps the price and does not add quantity keeps time priority;
  anything else re-enters the book as a taker with the same id;
* mass cancel cancels in ascending order id, then reports how many it cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sortedcontainers import SortedDict, SortedList

from matching import codes as c
from matching.api import OrderBook
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
from matching.snapshot import BookSnapshot, spec_row
from matching.spec import BookConfig, InstrumentSpec

RESTING_TIFS = (TimeInForce.GTC, TimeInForce.GTD)


@dataclass(slots=True)
class _Order:
    order_id: int
    account: int
    instrument: int
    side: int
    price: int
    qty: int
    filled: int
    shown: int
    hidden: int
    display: int
    tif: int
    stp: int
    post_only: int
    expire_ts: int

    @property
    def leaves(self) -> int:
        return self.shown + self.hidden


@dataclass(slots=True)
class _Level:
    price: int
    orders: dict[int, _Order] = field(default_factory=dict)  # insertion order is FIFO
    visible: int = 0


@dataclass(slots=True)
class _Book:
    spec: InstrumentSpec
    # key = -price for bids, +price for asks: ascending keys are best first.
    sides: tuple[SortedDict, SortedDict] = field(
        default_factory=lambda: (SortedDict(), SortedDict())
    )


def _snapshot_row(o: _Order) -> list[int]:
    return [
        o.instrument, o.side, o.price, o.order_id, o.account, o.qty, o.filled, o.shown,
        o.hidden, o.display, o.tif, o.stp, o.post_only, o.expire_ts,
    ]  # fmt: skip


def _key(side: int, price: int) -> int:
    return -price if side == Side.BUY else price


def _crosses(taker_side: int, limit: int, level_price: int) -> bool:
    return level_price <= limit if taker_side == Side.BUY else level_price >= limit


class ReferenceBook(OrderBook):
    def __init__(self, config: BookConfig | None = None) -> None:
        super().__init__(config)
        self._books: dict[int, _Book] = {}
        self._orders: dict[int, _Order] = {}
        self._by_account: dict[int, dict[int, _Order]] = {}
        self._gtd: SortedList = SortedList()  # (expire_ts, order_id)
        self._trade_id = 0
        self._now = 0
        self._events: list[list[int]] = []
        self._seq = 0

    # --- interface ---------------------------------------------------------------------
    def add_instrument(self, spec: InstrumentSpec) -> None:
        if spec.instrument_id in self._books:
            raise ValueError(f"instrument {spec.instrument_id} is already listed")
        self._books[spec.instrument_id] = _Book(spec)

    def process(self, commands: np.ndarray) -> np.ndarray:
        self._events = []
        for row in np.asarray(commands, dtype=np.int64).tolist():
            self._seq = row[c.C_SEQ]
            self._now = max(self._now, row[c.C_TS])
            self._expire_due()
            kind = row[c.C_KIND]
            if kind == BookCommandKind.NEW_ORDER:
                self._new_order(row)
            elif kind == BookCommandKind.CANCEL_ORDER:
                self._cancel(row)
            elif kind == BookCommandKind.REPLACE_ORDER:
                self._replace(row)
            elif kind == BookCommandKind.MASS_CANCEL:
                self._mass_cancel(row)
            elif kind != BookCommandKind.CLOCK_TICK:
                self._command_reject(row, BookReject.INVALID_COMMAND)
        out = np.array(self._events, dtype=np.int64).reshape(-1, c.N_EVENT_FIELDS)
        self._events = []
        return out

    def snapshot(self) -> BookSnapshot:
        specs, rows = [], []
        for iid in sorted(self._books):
            book = self._books[iid]
            specs.append(spec_row(book.spec))
            for levels in book.sides:
                for level in levels.values():
                    rows += [_snapshot_row(o) for o in level.orders.values()]
        return BookSnapshot(
            np.array(specs, dtype=np.int64).reshape(-1, 7),
            np.array(rows, dtype=np.int64).reshape(-1, c.N_SNAPSHOT_FIELDS),
            self._trade_id,
            self._now,
        )

    def _load_orders(self, snapshot: BookSnapshot) -> None:
        self._trade_id, self._now = snapshot.trade_id, snapshot.now
        for r in snapshot.orders.tolist():
            o = _Order(
                order_id=r[c.S_ORDER_ID],
                account=r[c.S_ACCOUNT],
                instrument=r[c.S_INSTRUMENT],
                side=r[c.S_SIDE],
                price=r[c.S_PRICE],
                qty=r[c.S_QTY],
                filled=r[c.S_FILLED],
                shown=r[c.S_SHOWN],
                hidden=r[c.S_HIDDEN],
                display=r[c.S_DISPLAY],
                tif=r[c.S_TIF],
                stp=r[c.S_STP],
                post_only=r[c.S_POST_ONLY],
                expire_ts=r[c.S_EXPIRE_TS],
            )
            self._index(o)
            self._append_to_level(o)

    def depth(self, instrument: int, levels: int = 10) -> tuple[np.ndarray, np.ndarray]:
        book = self._books[instrument]
        out = []
        for side_levels in book.sides:
            rows = [[lv.price, lv.visible, len(lv.orders)] for lv in side_levels.values()[:levels]]
            out.append(np.array(rows, dtype=np.int64).reshape(-1, 3))
        return out[0], out[1]

    def level_orders(self, instrument: int, side: Side, price: int) -> list[int]:
        level = self._books[instrument].sides[side - 1].get(_key(side, price))
        return list(level.orders) if level else []

    def open_order_count(self) -> int:
        return len(self._orders)

    def order(self, order_id: int) -> np.ndarray | None:
        o = self._orders.get(order_id)
        return None if o is None else np.array(_snapshot_row(o), dtype=np.int64)

    def account_orders(self, account: int, instrument: int = -1) -> np.ndarray:
        mine = self._by_account.get(account, {})
        ids = sorted(i for i, o in mine.items() if instrument in (-1, o.instrument))
        rows = [_snapshot_row(mine[i]) for i in ids]
        return np.array(rows, dtype=np.int64).reshape(-1, c.N_SNAPSHOT_FIELDS)

    def instrument_spec(self, instrument: int) -> InstrumentSpec | None:
        """The spec ``instrument`` was listed with, or None if it was not."""
        book = self._books.get(instrument)
        return None if book is None else book.spec

    # --- events ------------------------------------------------------------------------
    def _emit(
        self,
        kind: BookEventKind,
        o: _Order,
        *,
        price: int,
        qty: int,
        leaves: int,
        shown: int = 0,
        trade_id: int = 0,
        liquidity: Liquidity = Liquidity.NONE,
        reason: int = 0,
        contra: _Order | None = None,
    ) -> None:
        self._events.append(
            [self._seq, kind, o.instrument, o.order_id, o.account, o.side, price, qty, leaves]
            + [shown, trade_id, liquidity, reason]
            + [contra.order_id if contra else 0, contra.account if contra else 0]
        )

    def _order_reject(self, row: list[int], code: BookReject) -> None:
        self._events.append(
            [self._seq, BookEventKind.ORDER_REJECTED, row[c.C_INSTRUMENT], row[c.C_ORDER_ID]]
            + [row[c.C_ACCOUNT], row[c.C_SIDE], row[c.C_PRICE], row[c.C_QTY], 0, 0, 0, 0]
            + [code, 0, 0]
        )

    def _command_reject(self, row: list[int], code: BookReject) -> None:
        self._events.append(
            [self._seq, BookEventKind.COMMAND_REJECTED, row[c.C_INSTRUMENT], row[c.C_ORDER_ID]]
            + [row[c.C_ACCOUNT], 0, row[c.C_PRICE], row[c.C_QTY], 0, 0, 0, 0, code, 0, 0]
        )

    def _cancelled(self, o: _Order, qty: int, reason: CancelReason, shown: int = 0) -> None:
        self._emit(
            BookEventKind.ORDER_CANCELLED,
            o,
            price=o.price,
            qty=qty,
            leaves=o.leaves,
            shown=shown,
            reason=reason,
        )

    # --- book bookkeeping ---------------------------------------------------------------
    def _index(self, o: _Order) -> None:
        self._orders[o.order_id] = o
        self._by_account.setdefault(o.account, {})[o.order_id] = o
        if o.tif == TimeInForce.GTD:
            self._gtd.add((o.expire_ts, o.order_id))

    def _unindex(self, o: _Order) -> None:
        del self._orders[o.order_id]
        del self._by_account[o.account][o.order_id]
        if o.tif == TimeInForce.GTD:
            self._gtd.remove((o.expire_ts, o.order_id))

    def _append_to_level(self, o: _Order) -> None:
        levels = self._books[o.instrument].sides[o.side - 1]
        key = _key(o.side, o.price)
        level = levels.get(key)
        if level is None:
            level = levels[key] = _Level(o.price)
        level.orders[o.order_id] = o
        level.visible += o.shown

    def _remove_from_level(self, o: _Order) -> None:
        levels = self._books[o.instrument].sides[o.side - 1]
        key = _key(o.side, o.price)
        level = levels[key]
        del level.orders[o.order_id]
        level.visible -= o.shown
        if not level.orders:
            del levels[key]

    def _remove(self, o: _Order) -> None:
        self._remove_from_level(o)
        self._unindex(o)

    def _expire_due(self) -> None:
        while self._gtd and self._gtd[0][0] <= self._now:
            o = self._orders[self._gtd[0][1]]
            qty = o.leaves
            self._remove(o)
            o.shown = o.hidden = 0
            self._emit(BookEventKind.ORDER_EXPIRED, o, price=o.price, qty=qty, leaves=0)

    # --- commands ----------------------------------------------------------------------
    def validate_new(self, r: list[int]) -> BookReject:
        """The book's verdict on a NEW_ORDER row, without acting on it (the reference core
        asks before its risk check, as the engine kernel does)."""
        book = self._books.get(r[c.C_INSTRUMENT])
        if book is None:
            return BookReject.UNKNOWN_INSTRUMENT
        spec = book.spec
        tif, otype, price, qty = r[c.C_TIF], r[c.C_ORDER_TYPE], r[c.C_PRICE], r[c.C_QTY]
        display, post_only = r[c.C_DISPLAY_QTY], r[c.C_POST_ONLY]
        resting = tif in RESTING_TIFS
        if not 0 <= r[c.C_ACCOUNT] < self.config.max_accounts:
            return BookReject.INVALID_ACCOUNT
        if r[c.C_ORDER_ID] <= 0:
            return BookReject.INVALID_ORDER_ID
        if r[c.C_SIDE] not in (Side.BUY, Side.SELL):
            return BookReject.INVALID_SIDE
        if otype not in (OrderType.LIMIT, OrderType.MARKET):
            return BookReject.INVALID_ORDER_TYPE
        if not TimeInForce.GTC <= tif <= TimeInForce.GTD or (otype == OrderType.MARKET and resting):
            return BookReject.INVALID_TIME_IN_FORCE
        if not STPMode.CANCEL_NEWEST <= r[c.C_STP] <= STPMode.DECREMENT_AND_CANCEL:
            return BookReject.INVALID_STP_MODE
        if post_only not in (0, 1) or (
            post_only == 1 and (not resting or otype == OrderType.MARKET)
        ):
            return BookReject.INVALID_POST_ONLY
        code = self.check_price_qty(spec, price, qty)
        if code != BookReject.OK:
            return code
        if display < 0 or display > qty or display % spec.lot_size or (display and not resting):
            return BookReject.INVALID_DISPLAY_QUANTITY
        if (tif == TimeInForce.GTD and r[c.C_EXPIRE_TS] <= self._now) or (
            tif != TimeInForce.GTD and r[c.C_EXPIRE_TS] != 0
        ):
            return BookReject.INVALID_EXPIRE_TIME
        if r[c.C_ORDER_ID] in self._orders:
            return BookReject.DUPLICATE_ORDER_ID
        if resting and len(self._orders) >= self.config.max_orders:
            return BookReject.ORDER_POOL_FULL
        if post_only == 1 and self._would_take(book, r[c.C_SIDE], price):
            return BookReject.POST_ONLY_WOULD_TAKE
        return BookReject.OK

    @staticmethod
    def check_price_qty(spec: InstrumentSpec, price: int, qty: int) -> BookReject:
        """Whether ``price``/``qty`` fit ``spec``: range, then tick, then lot."""
        if not spec.min_price <= price <= spec.max_price:
            return BookReject.PRICE_OUT_OF_RANGE
        if price % spec.tick_size:
            return BookReject.PRICE_OFF_TICK
        if not spec.min_qty <= qty <= spec.max_qty:
            return BookReject.QUANTITY_OUT_OF_RANGE
        if qty % spec.lot_size:
            return BookReject.QUANTITY_OFF_LOT
        return BookReject.OK

    def _would_take(self, book: _Book, side: int, price: int) -> bool:
        opposite = book.sides[2 - side]
        return bool(opposite) and _crosses(side, price, opposite.peekitem(0)[1].price)

    def _new_order(self, r: list[int]) -> None:
        code = self.validate_new(r)
        if code != BookReject.OK:
            self._order_reject(r, code)
            return
        qty = r[c.C_QTY]
        o = _Order(
            order_id=r[c.C_ORDER_ID],
            account=r[c.C_ACCOUNT],
            instrument=r[c.C_INSTRUMENT],
            side=r[c.C_SIDE],
            price=r[c.C_PRICE],
            qty=qty,
            filled=0,
            shown=qty,
            hidden=0,
            display=r[c.C_DISPLAY_QTY],
            tif=r[c.C_TIF],
            stp=r[c.C_STP],
            post_only=r[c.C_POST_ONLY],
            expire_ts=r[c.C_EXPIRE_TS],
        )
        shown = o.display if 0 < o.display < qty else qty
        self._emit(BookEventKind.ORDER_ACCEPTED, o, price=o.price, qty=qty, leaves=qty, shown=shown)
        book = self._books[o.instrument]
        if o.tif == TimeInForce.FOK and not self._fok_fillable(book, o):
            qty_left = o.shown
            o.shown = 0
            self._cancelled(o, qty_left, CancelReason.FILL_OR_KILL)
            return
        self._enter(book, o)

    def _enter(self, book: _Book, o: _Order) -> None:
        """Match a taker (all of its leaves in ``shown``), then rest or cancel the rest."""
        if not self._take(book, o) or o.shown == 0:
            return
        if o.tif in RESTING_TIFS:
            leaves = o.shown
            if o.display:
                o.shown = min(o.display, leaves)
                o.hidden = leaves - o.shown
            self._index(o)
            self._append_to_level(o)
        else:
            qty_left = o.shown
            o.shown = 0
            self._cancelled(o, qty_left, CancelReason.IMMEDIATE_OR_CANCEL)

    def _fok_fillable(self, book: _Book, o: _Order) -> bool:
        need = o.shown
        for level in book.sides[2 - o.side].values():
            if not _crosses(o.side, o.price, level.price):
                return False
            for m in level.orders.values():
                if m.account == o.account:
                    if o.stp != STPMode.CANCEL_OLDEST:
                        return False
                else:
                    need -= m.leaves
            if need <= 0:
                return True
        return False

    def _take(self, book: _Book, t: _Order) -> bool:
        """Trade ``t`` against the opposite side. False if STP cancelled the taker."""
        levels = book.sides[2 - t.side]
        while t.shown > 0 and levels:
            level = levels.peekitem(0)[1]
            if not _crosses(t.side, t.price, level.price):
                break
            while t.shown > 0 and level.orders:
                m = next(iter(level.orders.values()))
                if m.account == t.account:
                    if not self._self_trade(t, m):
                        return False
                    continue
                self._trade(level, t, m)
        return True

    def _trade(self, level: _Level, t: _Order, m: _Order) -> None:
        q = min(t.shown, m.shown)
        self._trade_id += 1
        m.shown -= q
        m.filled += q
        level.visible -= q
        t.shown -= q
        t.filled += q
        if m.shown == 0 and m.hidden > 0:
            refill = min(m.display, m.hidden)
            m.hidden -= refill
            m.shown = refill
            level.visible += refill
            del level.orders[m.order_id]
            level.orders[m.order_id] = m  # back of the level
        self._emit(
            BookEventKind.ORDER_FILLED,
            m,
            price=level.price,
            qty=q,
            leaves=m.leaves,
            shown=m.shown,
            trade_id=self._trade_id,
            liquidity=Liquidity.MAKER,
            contra=t,
        )
        self._emit(
            BookEventKind.ORDER_FILLED,
            t,
            price=level.price,
            qty=q,
            leaves=t.shown,
            trade_id=self._trade_id,
            liquidity=Liquidity.TAKER,
            contra=m,
        )
        if m.leaves == 0:
            self._remove(m)

    def _self_trade(self, t: _Order, m: _Order) -> bool:
        """Apply the taker's STP mode against its own resting order. True: taker goes on."""
        mode = t.stp
        if mode in (STPMode.CANCEL_OLDEST, STPMode.CANCEL_BOTH):
            qty = m.leaves
            self._remove(m)
            m.shown = m.hidden = 0
            self._cancelled(m, qty, CancelReason.SELF_TRADE)
            if mode == STPMode.CANCEL_OLDEST:
                return True
        if mode in (STPMode.CANCEL_NEWEST, STPMode.CANCEL_BOTH):
            qty = t.shown
            t.shown = 0
            self._cancelled(t, qty, CancelReason.SELF_TRADE)
            return False
        # DECREMENT_AND_CANCEL: both shrink by the smaller size, hidden quantity first.
        dec = min(t.shown, m.leaves)
        from_hidden = min(m.hidden, dec)
        m.hidden -= from_hidden
        m.shown -= dec - from_hidden
        m.qty -= dec
        self._books[m.instrument].sides[m.side - 1][_key(m.side, m.price)].visible -= (
            dec - from_hidden
        )
        if m.leaves == 0:
            self._remove(m)
        self._cancelled(m, dec, CancelReason.SELF_TRADE, shown=m.shown)
        t.shown -= dec
        t.qty -= dec
        self._cancelled(t, dec, CancelReason.SELF_TRADE)
        return t.shown > 0

    def owned_order(self, r: list[int]) -> _Order | None:
        """The resting order a cancel/replace row names, if it is the row's account's on the
        row's instrument (read it, do not change it)."""
        o = self._orders.get(r[c.C_ORDER_ID])
        if o is None or o.account != r[c.C_ACCOUNT] or o.instrument != r[c.C_INSTRUMENT]:
            return None
        return o

    def _cancel(self, r: list[int]) -> None:
        o = self.owned_order(r)
        if o is None:
            self._command_reject(r, BookReject.UNKNOWN_ORDER)
            return
        qty = o.leaves
        self._remove(o)
        o.shown = o.hidden = 0
        self._cancelled(o, qty, CancelReason.USER)

    def _replace(self, r: list[int]) -> None:
        o = self.owned_order(r)
        if o is None:
            self._command_reject(r, BookReject.UNKNOWN_ORDER)
            return
        book = self._books[o.instrument]
        spec = book.spec
        price, qty = r[c.C_PRICE], r[c.C_QTY]
        code = self.check_price_qty(spec, price, qty)
        if code == BookReject.OK and qty <= o.filled:
            code = BookReject.REPLACE_BELOW_FILLED
        if code == BookReject.OK and o.post_only == 1 and self._would_take(book, o.side, price):
            code = BookReject.POST_ONLY_WOULD_TAKE
        if code != BookReject.OK:
            self._command_reject(r, code)
            return
        new_leaves = qty - o.filled
        if price == o.price and new_leaves <= o.leaves:
            cut = o.leaves - new_leaves
            from_hidden = min(o.hidden, cut)
            o.hidden -= from_hidden
            o.shown -= cut - from_hidden
            o.qty = qty
            book.sides[o.side - 1][_key(o.side, price)].visible -= cut - from_hidden
            self._emit(
                BookEventKind.ORDER_REPLACED,
                o,
                price=price,
                qty=qty,
                leaves=o.leaves,
                shown=o.shown,
            )
            return
        self._remove(o)
        o.price, o.qty, o.shown, o.hidden = price, qty, new_leaves, 0
        self._emit(BookEventKind.ORDER_REPLACED, o, price=price, qty=qty, leaves=new_leaves)
        self._enter(book, o)

    def _mass_cancel(self, r: list[int]) -> None:
        account, instrument = r[c.C_ACCOUNT], r[c.C_INSTRUMENT]
        if not 0 <= account < self.config.max_accounts:
            self._command_reject(r, BookReject.INVALID_ACCOUNT)
            return
        if instrument != -1 and instrument not in self._books:
            self._command_reject(r, BookReject.UNKNOWN_INSTRUMENT)
            return
        mine = self._by_account.get(account, {})
        ids = sorted(i for i, o in mine.items() if instrument in (-1, o.instrument))
        for oid in ids:
            o = self._orders[oid]
            qty = o.leaves
            self._remove(o)
            o.shown = o.hidden = 0
            self._cancelled(o, qty, CancelReason.MASS_CANCEL)
        self._events.append(
            [self._seq, BookEventKind.MASS_CANCEL_DONE, instrument, 0, account, 0, 0, len(ids)]
            + [0] * 7
        )
