"""Engine events in, market data out: L2 updates with checksums, trades, tickers, candles.

A projection of the event stream (DESIGN principle 4): it keeps only what events say, so
feeding it the same events rebuilds the same books, sequence numbers and checksums.

How each event moves visible quantity (``matching.kernel`` writes them):

- ``ORDER_ACCEPTED`` and ``ORDER_REPLACED`` with ``shown == 0`` (a replace that lost its
  place) put an order *in flight*: it trades as a taker (its ``ORDER_FILLED`` rows carry
  its leaves) and may be cancelled (IOC/FOK remainder, self-trade prevention). Whatever is
  still in flight with leaves at the end of its command rests, showing ``min(display,
  leaves)`` for an iceberg and ``leaves`` otherwise.
- A maker's ``ORDER_FILLED`` carries what it shows afterwards (an iceberg refills), so do
  ``ORDER_CANCELLED`` with leaves (self-trade decrement) and an in-place
  ``ORDER_REPLACED``; a cancel or expiry without leaves removes what the order showed.

A resting iceberg shows less than its leaves. ``ORDER_ACCEPTED`` carries what the order
will show once it rests (``shown``: the display quantity of an iceberg, else its quantity),
so the event log alone is enough; the command rows (the journal's), when given, say the
same.
The same holds for timestamps: from the command rows, a batch timestamp or ``ts_of(seq)``,
else the command's sequence number stands in for its time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from exchange.codes import CommandKind, EventKind
from exchange.commands import ListInstrument
from feeds.marketdata.book import BUY, L2Book
from feeds.marketdata.checksum import DEPTH
from feeds.marketdata.messages import BookSnapshot, BookUpdate, MarketData, Trade
from feeds.marketdata.stats import (
    DAY_NS,
    INTERVALS,
    NEVER,
    SECOND_NS,
    CandleState,
    InstrumentStats,
)
from feeds.marketdata.wire import DEFAULT_FORMAT, WireFormat
from matching import codes as mc

Timestamps = int | Callable[[int], int] | None
# Levels a command changed, per instrument: book key (-price for bids, price for asks) ->
# visible quantity before the command.
Dirty = dict[int, dict[int, int]]

_ACCEPTED = int(EventKind.ORDER_ACCEPTED)
_FILLED = int(EventKind.ORDER_FILLED)
_CANCELLED = int(EventKind.ORDER_CANCELLED)
_REPLACED = int(EventKind.ORDER_REPLACED)
_EXPIRED = int(EventKind.ORDER_EXPIRED)
_LISTED = int(EventKind.INSTRUMENT_LISTED)
_MAKER = int(mc.Liquidity.MAKER)
_NEW_ORDER = int(CommandKind.NEW_ORDER)
_LIST_INSTRUMENT = int(CommandKind.LIST_INSTRUMENT)
_SIDE_NAME = {int(mc.Side.BUY): "buy", int(mc.Side.SELL): "sell"}

_SEQ, _KIND, _INSTR, _OID = mc.E_SEQ, mc.E_KIND, mc.E_INSTRUMENT, mc.E_ORDER_ID
_SIDE, _PRICE, _QTY, _LEAVES = mc.E_SIDE, mc.E_PRICE, mc.E_QTY, mc.E_LEAVES
_SHOWN, _TID, _LIQ = mc.E_SHOWN, mc.E_TRADE_ID, mc.E_LIQUIDITY

_Q = 3  # an order in flight: [instrument, side, price, leaves, display]


class MarketDataBuilder:
    """Single-threaded, no I/O, no clock: ``apply`` a batch of event rows, get messages."""

    def __init__(
        self,
        formats: Mapping[int, WireFormat] | None = None,
        default_format: WireFormat = DEFAULT_FORMAT,
        *,
        intervals: Mapping[str, int] = INTERVALS,
        window: int = DAY_NS,
        window_resolution: int = SECOND_NS,
    ) -> None:
        self.formats: dict[int, WireFormat] = dict(formats or {})
        self.default_format = default_format
        self.intervals = dict(intervals)
        self.window = window
        self.window_resolution = window_resolution
        self.books: dict[int, L2Book] = {}
        self.stats: dict[int, InstrumentStats] = {}
        self.engine_seq = 0  # the last command applied: this projection's cursor
        self.now = 0  # the latest event time seen
        # Resting orders, in dicts of ints and int tuples the garbage collector can skip:
        self._shown: dict[int, int] = {}  # order id -> visible quantity
        self._where: dict[int, tuple[int, int, int]] = {}  # order id -> (instr, side, price)
        self._display: dict[int, int] = {}  # order id -> display quantity (icebergs only)
        self._bbo: dict[int, tuple[int, int, int, int]] = {}
        self._created: list[int] = []  # books opened since the last batch was returned
        self._roll_due = NEVER  # the event time at which some 24h window next moves

    # -- public ------------------------------------------------------------------------------

    def book(self, instrument: int) -> L2Book:
        book = self.books.get(instrument)
        if book is None:
            fmt = self.formats.get(instrument, self.default_format)
            book = self.books[instrument] = L2Book(instrument, fmt)
            self.stats[instrument] = InstrumentStats(
                self.intervals, self.window, self.window_resolution
            )
            self._created.append(instrument)
        return book

    def snapshot(self, instrument: int) -> BookSnapshot:
        book = self.book(instrument)
        return BookSnapshot(
            instrument,
            book.seq,
            self.engine_seq,
            self.now,
            book.levels(BUY),
            book.levels(mc.Side.SELL),
            book.checksum(),
        )

    def apply(
        self, events: np.ndarray, ts: Timestamps = None, commands: np.ndarray | None = None
    ) -> MarketData:
        """Apply whole commands' event rows in order; returns what they produced.

        ``ts``: one timestamp for the batch (the sequencer stamps a batch with one), or a
        function of the command's sequence number. ``commands``: the journaled command rows
        of the same sequence numbers, which give timestamps, iceberg display quantities and
        the tick and lot of listed instruments.
        """
        out = MarketData(engine_seq=self.engine_seq)
        if len(events) == 0:
            return out
        rows = np.asarray(events)
        if rows.ndim != 2 or rows.shape[1] != mc.N_EVENT_FIELDS:
            raise ValueError(f"events must have shape (k, {mc.N_EVENT_FIELDS})")
        if int(rows[0, _SEQ]) <= self.engine_seq:
            raise ValueError(
                f"events from seq {int(rows[0, _SEQ])} but seq {self.engine_seq} is applied"
            )
        displays, stamps = self._from_commands(commands)
        ts_of = _time_source(ts, stamps)
        candles: dict[tuple[int, str, int], CandleState] = {}
        tickers: set[int] = set()
        cur = -1
        now = self.now
        flight: dict[int, list[int]] = {}
        dirty: Dirty = {}
        c = rows.T.tolist()  # one list per column: no object per row
        shown_of, where = self._shown, self._where
        for seq, kind, instr, oid, side, price, qty, leaves, shown, tid, liq in zip(
            c[_SEQ], c[_KIND], c[_INSTR], c[_OID], c[_SIDE], c[_PRICE], c[_QTY],
            c[_LEAVES], c[_SHOWN], c[_TID], c[_LIQ], strict=True,
        ):  # fmt: skip
            if seq != cur:
                if cur >= 0:
                    self._end_command(cur, now, flight, dirty, out, tickers)
                cur = seq
                t = ts_of(seq)
                if t > now:
                    now = t
            if kind == _FILLED:
                if liq == _MAKER:
                    if oid in shown_of:
                        self._shown_now(oid, shown, leaves, dirty)
                    continue
                order = flight.get(oid)
                if order is not None:
                    order[_Q] = leaves
                book = self.books.get(instr) or self.book(instr)
                out.trades.append(
                    Trade(
                        instr,
                        tid,
                        book.price_text(price),
                        book.qty_text(qty),
                        _SIDE_NAME[side],
                        now,
                        seq,
                    )
                )
                stats = self.stats[instr]
                for candle in stats.trade(now, price, qty):
                    candles[(instr, candle.interval, candle.start)] = candle
                tickers.add(instr)
                expires = stats.window.expires_at
                if expires < self._roll_due:
                    self._roll_due = expires
            elif kind == _ACCEPTED:
                # ``shown`` is what it shows once resting: below its quantity, an iceberg.
                display = shown if 0 < shown < leaves else displays.get(seq, 0)
                flight[oid] = [instr, side, price, leaves, display]
            elif kind == _CANCELLED:
                order = flight.get(oid)
                if order is not None:
                    if leaves:
                        order[_Q] = leaves  # self-trade decrement: it trades on
                    else:
                        del flight[oid]
                elif oid in shown_of:
                    self._shown_now(oid, shown, leaves, dirty)
            elif kind == _REPLACED:
                if oid not in shown_of:
                    continue
                if shown:  # in place, priority kept
                    self._shown_now(oid, shown, leaves, dirty)
                else:  # out of its level; trades at the new price, then may rest
                    r_instr, r_side, _ = where[oid]
                    display = self._display.get(oid, 0)
                    self._shown_now(oid, 0, 0, dirty)
                    flight[oid] = [r_instr, r_side, price, leaves, display]
            elif kind == _EXPIRED:
                if oid in shown_of:
                    self._shown_now(oid, 0, 0, dirty)
            elif kind == _LISTED:
                new = instr not in self.formats and instr not in self.books
                if new and leaves > 0 and shown > 0:  # the listing's tick and lot
                    self.formats[instr] = WireFormat.for_instrument(leaves, shown)
                self.book(instr)
        if cur >= 0:
            self._end_command(cur, now, flight, dirty, out, tickers)
        self.engine_seq = int(rows[-1, _SEQ])
        self.now = now
        out.engine_seq = self.engine_seq
        self._finish(out, candles, tickers)
        return out

    def roll(self, now: int) -> MarketData:
        """Advance event time without events: tickers whose 24h window moved."""
        out = MarketData(engine_seq=self.engine_seq)
        if now > self.now:
            self.now = now
        self._finish(out, {}, set())
        return out

    # -- internals ---------------------------------------------------------------------------

    def _from_commands(self, commands: np.ndarray | None) -> tuple[dict[int, int], dict]:
        if commands is None or len(commands) == 0:
            return {}, {}
        cmds = np.asarray(commands)
        seqs = cmds[:, mc.C_SEQ].tolist()
        stamps = dict(zip(seqs, cmds[:, mc.C_TS].tolist(), strict=True))
        kinds = cmds[:, mc.C_KIND]
        iceberg = (kinds == _NEW_ORDER) & (cmds[:, mc.C_DISPLAY_QTY] > 0)
        displays = dict(
            zip(
                cmds[iceberg, mc.C_SEQ].tolist(),
                cmds[iceberg, mc.C_DISPLAY_QTY].tolist(),
                strict=True,
            )
        )
        for row in cmds[kinds == _LIST_INSTRUMENT].tolist():
            instr = row[mc.C_INSTRUMENT]
            if instr not in self.formats and instr not in self.books:
                try:
                    listing = ListInstrument.from_row(row)
                    fmt = WireFormat.for_instrument(listing.tick_size, listing.lot_size)
                except ValueError:
                    continue  # an invalid listing: the core refuses it too
                self.formats[instr] = fmt
        return displays, stamps

    def _shown_now(self, oid: int, shown: int, leaves: int, dirty: Dirty) -> None:
        """A resting order now shows ``shown``; with no ``leaves`` it has left the book."""
        delta = shown - self._shown[oid]
        instr, side, price = self._where[oid]
        if leaves == 0:
            del self._shown[oid], self._where[oid]
            self._display.pop(oid, None)
        else:
            self._shown[oid] = shown
        if delta:
            self._move(instr, side, price, delta, dirty)

    def _move(
        self,
        instr: int,
        side: int,
        price: int,
        delta: int,
        dirty: Dirty,
    ) -> None:
        book = self.books.get(instr) or self.book(instr)
        old = book.add(side, price, delta)
        touched = dirty.get(instr)
        if touched is None:
            touched = dirty[instr] = {}
        touched.setdefault(-price if side == BUY else price, old)

    def _end_command(
        self,
        seq: int,
        now: int,
        flight: dict[int, list[int]],
        dirty: Dirty,
        out: MarketData,
        tickers: set[int],
    ) -> None:
        """Rest what is left in flight, then one update per instrument whose levels moved."""
        if flight:
            for oid, (instr, side, price, leaves, display) in flight.items():
                if leaves > 0:
                    shown = display if 0 < display < leaves else leaves
                    self._shown[oid] = shown
                    self._where[oid] = (instr, side, price)
                    if display:
                        self._display[oid] = display
                    self._move(instr, side, price, shown, dirty)
            flight.clear()
        if not dirty:
            return
        books, updates = self.books, out.updates
        for instr, touched in dirty.items():
            book = books[instr]
            text, qty_text = book.price_text, book.qty_text
            bid_levels, ask_levels = book.bids, book.asks
            bids: list[tuple[str, str]] = []
            asks: list[tuple[str, str]] = []
            for key, old in touched.items():
                if key < 0:
                    new = bid_levels.get(key, 0)
                    if new != old:
                        bids.append((text(-key), qty_text(new)))
                else:
                    new = ask_levels.get(key, 0)
                    if new != old:
                        asks.append((text(key), qty_text(new)))
            top = book.settle()  # the best rank among the changed levels
            if not (bids or asks):
                continue
            book.seq += 1
            if top < DEPTH:
                book.last_checksum = book.checksum()
            updates.append(BookUpdate(instr, book.seq, seq, now, bids, asks, book.last_checksum))
            if top == 0:
                bbo = book.best()
                if self._bbo.get(instr) != bbo:
                    self._bbo[instr] = bbo
                    tickers.add(instr)
        dirty.clear()

    def _finish(
        self,
        out: MarketData,
        candles: dict[tuple[int, str, int], CandleState],
        tickers: set[int],
    ) -> None:
        now = self.now
        if self._created:
            out.listed, self._created = self._created, []
        if now >= self._roll_due:
            due = NEVER
            for instr, stats in self.stats.items():
                if stats.window.roll(now):
                    tickers.add(instr)
                due = min(due, stats.window.expires_at)
            self._roll_due = due
        for instr in sorted(tickers):
            book = self.books[instr]
            out.tickers.append(self.stats[instr].ticker(instr, now, book))
        for (instr, _, _), c in candles.items():
            out.candles.append(c.message(instr, self.books[instr]))


def _time_source(ts: Timestamps, stamps: dict[int, int]) -> Callable[[int], int]:
    if ts is None:
        fallback: Callable[[int], int] = int
    elif callable(ts):
        fallback = ts
    else:
        batch_ts = int(ts)

        def fallback(_seq: int) -> int:
            return batch_ts

    if stamps:
        return lambda seq: stamps.get(seq) or fallback(seq)
    return fallback
