"""One instrument's L2 book as market data sees it: visible quantity per price level.

Only the displayed part of an order counts (an iceberg shows its ``shown`` quantity), the
same aggregate the order book keeps per level (``FastBook.depth``). Levels are kept in
sorted dicts so the top of book and the checksum's ten levels are a slice away.
"""

from __future__ import annotations

import zlib
from itertools import islice

from sortedcontainers import SortedDict

from feeds.marketdata.checksum import DEPTH, digits
from feeds.marketdata.messages import Levels
from feeds.marketdata.wire import WireFormat
from matching.codes import Side

BUY = int(Side.BUY)
SELL = int(Side.SELL)


class L2Book:
    """Bids keyed by ``-price`` and asks by ``price``, so both iterate best first."""

    __slots__ = (
        "_ask_text",
        "_bid_text",
        "_digits",
        "_pending",
        "_qty_digits",
        "_text",
        "asks",
        "bids",
        "fmt",
        "instrument",
        "last_checksum",
        "qty_text",
        "seq",
    )

    def __init__(self, instrument: int, fmt: WireFormat) -> None:
        self.instrument = instrument
        self.fmt = fmt
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.seq = 0  # the last update published for this instrument
        self.last_checksum = 0  # of the book as of ``seq`` (an empty book's CRC is 0)
        self._text: dict[int, str] = {}  # price -> wire string (a book has few distinct prices)
        self._digits: dict[int, str] = {}  # price -> checksum digits
        whole = fmt.qty_places == 0 == fmt.qty_decimals
        self.qty_text = str if whole else fmt.qty  # a quantity as published
        self._qty_digits = str if whole else self._fractional_qty_digits
        # Each side's part of the checksum text, kept until a change reaches its top ten.
        self._ask_text: str | None = ""
        self._bid_text: str | None = ""
        self._pending: set[int] = set()  # keys of the levels changed since ``settle``

    def _fractional_qty_digits(self, qty: int) -> str:
        return digits(self.fmt.qty(qty))

    def price_text(self, price: int) -> str:
        text = self._text.get(price)
        if text is None:
            text = self._text[price] = self.fmt.price(price)
            self._digits[price] = digits(text)
        return text

    def qty(self, side: int, price: int) -> int:
        if side == BUY:
            return self.bids.get(-price, 0)
        return self.asks.get(price, 0)

    def add(self, side: int, price: int, delta: int) -> int:
        """Change a level's visible quantity by ``delta``; returns the quantity before."""
        levels, key = (self.bids, -price) if side == BUY else (self.asks, price)
        self._pending.add(key)
        old = levels.get(key, 0)
        new = old + delta
        if new > 0:
            if old:
                dict.__setitem__(levels, key, new)  # the key is in the sorted list already
            else:
                if price not in self._text:
                    self.price_text(price)
                levels[key] = new
        elif new == 0:
            if old:
                del levels[key]
        else:
            raise ValueError(
                f"instrument {self.instrument}: level {price} side {side} would go to {new}"
            )
        return old

    def best(self) -> tuple[int, int, int, int]:
        """(bid, bid qty, ask, ask qty); zeros for an empty side."""
        bid = bid_qty = ask = ask_qty = 0
        if self.bids:
            key, bid_qty = self.bids.peekitem(0)
            bid = -key
        if self.asks:
            ask, ask_qty = self.asks.peekitem(0)
        return bid, bid_qty, ask, ask_qty

    def settle(self) -> int:
        """Take note of the levels changed since the last call; returns the best rank
        among them (0: the best level moved; ``DEPTH`` or more: nothing in the top ten).
        Only a change within the top ten can move the checksum, so only then is that
        side's part of the checksum text recomputed."""
        top = DEPTH
        for key in self._pending:  # -price for a bid, price for an ask
            if key < 0:
                rank = self.bids.bisect_left(key)
                if rank < DEPTH:
                    self._bid_text = None
            else:
                rank = self.asks.bisect_left(key)
                if rank < DEPTH:
                    self._ask_text = None
            if rank < top:
                top = rank
        self._pending.clear()
        return top

    def checksum(self) -> int:
        """Kraken's CRC32 of the top ten levels each side (``checksum.checksum``)."""
        if self._pending:
            self.settle()
        pdig, qdig = self._digits, self._qty_digits
        if self._ask_text is None:
            asks = self.asks
            self._ask_text = "".join([pdig[p] + qdig(asks[p]) for p in islice(asks, DEPTH)])
        if self._bid_text is None:
            bids = self.bids
            self._bid_text = "".join([pdig[-k] + qdig(bids[k]) for k in islice(bids, DEPTH)])
        return zlib.crc32((self._ask_text + self._bid_text).encode("ascii")) & 0xFFFFFFFF

    def levels(self, side: int, depth: int | None = None) -> Levels:
        """Levels of one side as wire strings, best first (all of them by default)."""
        text, qty = self.price_text, self.fmt.qty
        if side == BUY:
            keys = self.bids.keys() if depth is None else self.bids.keys()[:depth]
            return [[text(-k), qty(self.bids[k])] for k in keys]
        keys = self.asks.keys() if depth is None else self.asks.keys()[:depth]
        return [[text(p), qty(self.asks[p])] for p in keys]

    def depth(self, side: int) -> list[tuple[int, int]]:
        """(price, qty) integers, best first: what ``FastBook.depth`` reports, minus counts."""
        if side == BUY:
            return [(-k, q) for k, q in self.bids.items()]
        return list(self.asks.items())
