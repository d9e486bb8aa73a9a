"""Reading market data back out of Redis: a self-checking book, candle history, tickers.

``BookClient`` is the reference subscriber (a gateway serves its WebSocket clients the
same way, and the tests and benchmark use it): it loads the snapshot, reads the update
stream from the snapshot's sequence number on, and verifies Kraken's checksum after every
update. An update that does not follow the last one (a gap) or a checksum that does not
match makes it drop its book and load a fresh snapshot: a book that silently drifts from
the exchange's is worse than none.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
from redis.asyncio import Redis
from sortedcontainers import SortedDict

from feeds.marketdata.checksum import DEPTH, checksum
from feeds.marketdata.keys import Keys
from feeds.marketdata.publisher import candle_score


class BookIntegrityError(RuntimeError):
    """The published data contradicts itself (a snapshot fails its own checksum, or
    resyncs keep failing): a publisher fault, not a lost message."""


class BookClient:
    """One instrument's book rebuilt from Redis, checked at every update."""

    def __init__(
        self,
        redis: Redis,
        instrument: int,
        *,
        keys: Keys | None = None,
        max_resyncs: int = 20,
    ) -> None:
        self.redis = redis
        self.instrument = instrument
        self.keys = keys or Keys()
        self.max_resyncs = max_resyncs  # in a row, without a good update between them
        self.seq = -1  # the last update applied; -1: no snapshot yet
        self.engine_seq = 0
        self.bids: SortedDict = SortedDict()  # -price -> (price, qty) strings
        self.asks: SortedDict = SortedDict()  # price -> (price, qty)
        self.snapshots = 0  # snapshots loaded, the first one included
        self.gaps = 0
        self.mismatches = 0
        self.updates = 0  # updates applied, each one checked
        self._failed_in_a_row = 0

    # -- the book ----------------------------------------------------------------------------

    def levels(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(bids, asks) as (price, qty) strings, best first."""
        return list(self.bids.values()), list(self.asks.values())

    def checksum(self) -> int:
        return checksum(self.asks.values()[:DEPTH], self.bids.values()[:DEPTH])

    def _set(self, price: str, qty: str, buy: bool) -> None:
        value = Decimal(price)
        levels, key = (self.bids, -value) if buy else (self.asks, value)
        if Decimal(qty) == 0:
            levels.pop(key, None)
        else:
            levels[key] = (price, qty)

    # -- Redis -------------------------------------------------------------------------------

    async def sync(self) -> bool:
        """Load the current snapshot; False if there is none yet."""
        raw = await self.redis.get(self.keys.snapshot(self.instrument))
        if raw is None:
            return False
        snap = orjson.loads(raw)
        self.bids.clear()
        self.asks.clear()
        for price, qty in snap["bids"]:
            self._set(price, qty, True)
        for price, qty in snap["asks"]:
            self._set(price, qty, False)
        if self.checksum() != snap["checksum"]:
            raise BookIntegrityError(
                f"instrument {self.instrument}: snapshot {snap['seq']} fails its checksum"
            )
        self.seq = snap["seq"]
        self.engine_seq = snap["engine_seq"]
        self.snapshots += 1
        return True

    async def poll(self, block_ms: int | None = None, count: int = 1000) -> int:
        """Read and apply what the stream holds after ``seq``; returns updates applied.

        ``block_ms`` waits that long for something new (None: do not wait).
        """
        if self.seq < 0 and not await self.sync():
            return 0
        key = self.keys.book(self.instrument)
        reply: Any = await self.redis.xread({key: f"{self.seq}-0"}, count=count, block=block_ms)
        updates = [
            update
            for _stream, entries in reply
            for _id, fields in entries
            for update in orjson.loads(fields.get(b"u") or fields.get("u"))
        ]
        return await self.receive(updates)

    async def receive(self, updates: list[dict[str, Any]]) -> int:
        """Apply updates as they arrived (from this client's reads or another transport);
        on a gap or a checksum mismatch, resync and drop the rest: the next ``poll``
        reads on from the new snapshot. Returns the updates applied."""
        applied = 0
        for update in updates:
            outcome = self.apply(update)
            if outcome is None:
                continue
            if not outcome:
                await self._resync()
                return applied
            applied += 1
        return applied

    def apply(self, update: dict[str, Any]) -> bool | None:
        """Apply one update: None if the snapshot already covers it, False on a gap or a
        checksum mismatch (the caller resyncs), True when applied and verified."""
        seq = update["seq"]
        if seq <= self.seq:
            return None
        if seq != self.seq + 1:
            self.gaps += 1
            return False
        for price, qty in update["bids"]:
            self._set(price, qty, True)
        for price, qty in update["asks"]:
            self._set(price, qty, False)
        if self.checksum() != update["checksum"]:
            self.mismatches += 1
            return False
        self.seq = seq
        self.engine_seq = update["engine_seq"]
        self.updates += 1
        self._failed_in_a_row = 0
        return True

    async def _resync(self) -> None:
        self._failed_in_a_row += 1
        if self._failed_in_a_row > self.max_resyncs:
            raise BookIntegrityError(
                f"instrument {self.instrument}: {self._failed_in_a_row} resyncs in a row"
            )
        self.seq = -1
        await self.sync()

    async def wait_for(self, seq: int, timeout: float = 10.0) -> None:
        """Poll until update ``seq`` is applied (``TimeoutError`` after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while self.seq < seq:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"instrument {self.instrument}: at {self.seq}, not {seq}")
            if self.seq < 0 and not await self.sync():
                await asyncio.sleep(min(0.01, left))
                continue
            await self.poll(block_ms=max(1, int(min(left, 0.1) * 1000)))


async def candle_history(
    redis: Redis,
    instrument: int,
    interval: str,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    limit: int | None = None,
    keys: Keys | None = None,
) -> list[dict[str, Any]]:
    """Candles of one interval whose start lies in [start_ns, end_ns], oldest first;
    with ``limit``, the latest ``limit`` of them."""
    key = (keys or Keys()).candle_history(instrument, interval)
    low = "-inf" if start_ns is None else candle_score(start_ns)
    high = "+inf" if end_ns is None else candle_score(end_ns)
    raw: Any
    if limit is None:
        raw = await redis.zrangebyscore(key, low, high)
    else:
        raw = list(reversed(await redis.zrevrangebyscore(key, high, low, start=0, num=limit)))
    return [orjson.loads(member) for member in raw]


async def latest_ticker(
    redis: Redis, instrument: int, keys: Keys | None = None
) -> dict[str, Any] | None:
    raw = await redis.get((keys or Keys()).ticker_last(instrument))
    return None if raw is None else orjson.loads(raw)
