"""Per-instrument trade statistics: the 24-hour rolling ticker and OHLCV candles.

Both run on event time (the engine's sequenced timestamps), never the wall clock, so
replaying the journal rebuilds exactly the tickers and candles that were published.
The 24-hour window keeps one bucket per ``resolution`` of event time that saw a trade
(trades of one engine batch share a timestamp, so this stays small), with monotonic
deques for its high and low: rolling the window costs O(1) per bucket that leaves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from feeds.marketdata.book import L2Book
from feeds.marketdata.messages import Candle, Ticker

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS
NEVER = 1 << 62  # an event time no window reaches
INTERVALS: dict[str, int] = {
    "1m": 60 * SECOND_NS,
    "5m": 300 * SECOND_NS,
    "1h": 3_600 * SECOND_NS,
    "1d": DAY_NS,
}


@dataclass(slots=True)
class _Bucket:
    start: int
    volume: int
    trades: int
    first: int  # price of the bucket's first trade


@dataclass(slots=True)
class CandleState:
    interval: str
    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int

    def message(self, instrument: int, book: L2Book) -> Candle:
        price = book.price_text
        return Candle(
            instrument,
            self.interval,
            self.start,
            price(self.open),
            price(self.high),
            price(self.low),
            price(self.close),
            book.qty_text(self.volume),
            self.trades,
        )


class RollingWindow:
    """Volume, trade count, open, high and low of the trades in ``(now - span, now]``,
    at ``resolution`` granularity: a bucket leaves once its last nanosecond is out."""

    __slots__ = ("_buckets", "_high", "_low", "resolution", "span", "trades", "volume")

    def __init__(self, span: int = DAY_NS, resolution: int = SECOND_NS) -> None:
        if span <= 0 or resolution <= 0:
            raise ValueError("span and resolution must be positive")
        self.span = span
        self.resolution = resolution
        self._buckets: deque[_Bucket] = deque()
        self._high: deque[tuple[int, int]] = deque()  # (bucket start, price), decreasing
        self._low: deque[tuple[int, int]] = deque()  # increasing
        self.volume = 0
        self.trades = 0

    def add(self, ts: int, price: int, qty: int) -> None:
        start = ts - ts % self.resolution
        buckets = self._buckets
        if buckets and buckets[-1].start == start:
            bucket = buckets[-1]
            bucket.volume += qty
            bucket.trades += 1
        elif buckets and buckets[-1].start > start:
            raise ValueError(f"event time went back: {ts} after bucket {buckets[-1].start}")
        else:
            buckets.append(_Bucket(start, qty, 1, price))
        self.volume += qty
        self.trades += 1
        high, low = self._high, self._low
        while high and high[-1][1] <= price:
            high.pop()
        high.append((start, price))
        while low and low[-1][1] >= price:
            low.pop()
        low.append((start, price))

    def roll(self, now: int) -> bool:
        """Drop what left the window by ``now``; True if anything did."""
        last_out = now - self.span  # the newest nanosecond outside the window
        buckets = self._buckets
        changed = False
        while buckets and buckets[0].start + self.resolution - 1 <= last_out:
            gone = buckets.popleft()
            self.volume -= gone.volume
            self.trades -= gone.trades
            changed = True
        if changed:
            first = buckets[0].start if buckets else None
            for extreme in (self._high, self._low):
                while extreme and (first is None or extreme[0][0] < first):
                    extreme.popleft()
        return changed

    @property
    def expires_at(self) -> int:
        """The event time at which the oldest bucket leaves (huge when there is none)."""
        if not self._buckets:
            return NEVER
        return self._buckets[0].start + self.resolution - 1 + self.span

    @property
    def open(self) -> int | None:
        return self._buckets[0].first if self._buckets else None

    @property
    def high(self) -> int | None:
        return self._high[0][1] if self._high else None

    @property
    def low(self) -> int | None:
        return self._low[0][1] if self._low else None

    def __bool__(self) -> bool:
        return bool(self._buckets)


class InstrumentStats:
    """Last trade, the rolling window and the current candle of each interval."""

    __slots__ = ("candles", "intervals", "last", "last_qty", "window")

    def __init__(self, intervals: dict[str, int], span: int, resolution: int) -> None:
        self.intervals = intervals
        self.window = RollingWindow(span, resolution)
        self.last = 0
        self.last_qty = 0
        self.candles: dict[str, CandleState] = {}

    def trade(self, ts: int, price: int, qty: int) -> list[CandleState]:
        """Record a trade; returns the candles it went into."""
        self.last, self.last_qty = price, qty
        self.window.add(ts, price, qty)
        touched = []
        for name, length in self.intervals.items():
            start = ts - ts % length
            c = self.candles.get(name)
            if c is None or c.start != start:
                c = self.candles[name] = CandleState(name, start, price, price, price, price, 0, 0)
            if price > c.high:
                c.high = price
            elif price < c.low:
                c.low = price
            c.close = price
            c.volume += qty
            c.trades += 1
            touched.append(c)
        return touched

    def ticker(self, instrument: int, ts: int, book: L2Book) -> Ticker:
        """Prices come from the book's cache of wire strings; only ``change`` may be off
        the book's prices (a difference), so it is formatted afresh."""
        price, qty = book.price_text, book.qty_text
        bid, bid_qty, ask, ask_qty = book.best()
        w = self.window
        has_last = self.trades_ever
        opened = w.open
        return Ticker(
            instrument=instrument,
            ts=ts,
            bid=price(bid) if bid_qty else None,
            bid_qty=qty(bid_qty) if bid_qty else None,
            ask=price(ask) if ask_qty else None,
            ask_qty=qty(ask_qty) if ask_qty else None,
            last=price(self.last) if has_last else None,
            last_qty=qty(self.last_qty) if has_last else None,
            open=None if opened is None else price(opened),
            high=None if w.high is None else price(w.high),
            low=None if w.low is None else price(w.low),
            change=None if opened is None else book.fmt.price(self.last - opened),
            volume=qty(w.volume),
            trades=w.trades,
        )

    @property
    def trades_ever(self) -> bool:
        return self.last_qty > 0
