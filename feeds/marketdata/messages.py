"""What market data publishes: immutable messages, serialised by orjson as they are.

Prices and quantities are decimal strings (``wire``); timestamps are the engine's sequenced
command timestamps in nanoseconds (or the command's sequence number when the builder was
given no timestamps). ``engine_seq`` names the command that caused a message, so any
message can be traced back to the journal.

Messages are values: nothing changes one after it is built. The two built per command
(``BookUpdate``, ``Trade``) are plain slotted dataclasses rather than frozen ones only
because a frozen dataclass takes five times longer to construct, on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Levels = list[tuple[str, str]] | list[list[str]]  # [(price, qty), ...]: JSON arrays


@dataclass(slots=True)
class BookUpdate:
    """The levels one command changed on one instrument; qty "0" removes a level.

    ``seq`` counts this instrument's updates from 1 with no gaps; ``checksum`` is Kraken's
    CRC32 of the book after this update (``checksum.checksum``).
    """

    instrument: int
    seq: int
    engine_seq: int
    ts: int
    bids: Levels
    asks: Levels
    checksum: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Every level of one instrument's book after update ``seq``; best first on both sides."""

    instrument: int
    seq: int
    engine_seq: int
    ts: int
    bids: Levels
    asks: Levels
    checksum: int


@dataclass(slots=True)
class Trade:
    instrument: int
    trade_id: int
    price: str
    qty: str
    side: str  # the aggressor's side: "buy" or "sell"
    ts: int
    engine_seq: int


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid and offer now, and the trades of the 24 hours of event time up to ``ts``.

    ``open`` is the price of the first trade inside the window and ``change`` is
    ``last - open``; both are None when no trade falls in the window.
    """

    instrument: int
    ts: int
    bid: str | None
    bid_qty: str | None
    ask: str | None
    ask_qty: str | None
    last: str | None
    last_qty: str | None
    open: str | None
    high: str | None
    low: str | None
    change: str | None
    volume: str
    trades: int


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV of one interval; ``start`` is the interval's first nanosecond of event time."""

    instrument: int
    interval: str  # "1m", "5m", "1h", "1d"
    start: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    trades: int


@dataclass(slots=True)
class MarketData:
    """Everything one batch of engine events produced, in the order it happened.

    Tickers and candles are coalesced: only the latest state of each one touched by the
    batch, since only the latest matters to a subscriber and history lives in the candles'
    sorted sets.
    """

    updates: list[BookUpdate] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    tickers: list[Ticker] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    listed: list[int] = field(default_factory=list)  # instruments first seen in this batch
    engine_seq: int = 0  # the last command of the batch

    def __bool__(self) -> bool:
        return bool(self.updates or self.trades or self.tickers or self.candles or self.listed)
