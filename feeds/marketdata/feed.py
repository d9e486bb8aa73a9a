"""The market data projection: engine events -> builder -> Redis, resumable from a cursor.

``MarketDataFeed.process`` is what a market data process does with each batch of event
rows. The builder's state lives in memory, so a restarted feed replays the event log from
the start: everything up to the cursor stored in Redis rebuilds the books silently
(deterministically, so with the same sequence numbers and checksums), and publishing
resumes after it. Nothing is lost and nothing is published twice (DESIGN principle 4).

Snapshots are taken by update count, not by clock: an instrument's snapshot is rewritten
once ``snapshot_every`` updates, or as many updates as its book has levels if that is more,
have gone by since the last one (and after its first). Writing a snapshot costs one step
per level, so this keeps its cost per update bounded however deep books grow, while a
joining reader replays no more updates than the snapshot has levels; the cap keeps that
well inside what the stream retains (``book_maxlen`` entries of at least one update each).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import numpy as np
from redis.asyncio import Redis

from feeds.marketdata.builder import MarketDataBuilder, Timestamps
from feeds.marketdata.keys import Keys
from feeds.marketdata.messages import BookSnapshot, MarketData
from feeds.marketdata.publisher import RedisPublisher
from matching import codes as mc


class EventSource(Protocol):
    """What ``exchange.event_log.EventLog`` offers a projection."""

    @property
    def last_seq(self) -> int: ...

    def read_after(self, seq: int, max_rows: int = 65536) -> np.ndarray: ...

    # optional: def ts_of(self, seq: int) -> int | None, the command's sequenced time


class MarketDataFeed:
    def __init__(
        self,
        redis: Redis,
        *,
        keys: Keys | None = None,
        builder: MarketDataBuilder | None = None,
        publisher: RedisPublisher | None = None,
        snapshot_every: int = 200,
        batched: bool = True,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.keys = keys or Keys()
        self.builder = builder or MarketDataBuilder()
        self.publisher = publisher or RedisPublisher(redis, self.keys)
        self.snapshot_every = snapshot_every
        self.batched = batched
        self.published = 0  # engine seq published so far (the cursor)
        self._since_snapshot: dict[int, int] = {}  # instrument -> updates since its snapshot
        self.updates_published = 0
        self._in_flight: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Read the cursor: events up to it rebuild state without being published again."""
        self.published = await self.publisher.cursor()
        return self.published

    async def process(
        self,
        events: np.ndarray,
        ts: Timestamps = None,
        commands: np.ndarray | None = None,
        *,
        wait: bool = True,
    ) -> MarketData:
        """Build and publish one batch of whole commands' event rows.

        With ``wait=False`` the batch's publication is left in flight while the caller
        builds the next one (Redis works on one batch while Python builds the next); it
        is awaited before the next publication starts, so batches land in order, and
        ``flush`` awaits the last one.
        """
        rows = np.asarray(events)
        if len(rows) and int(rows[0, mc.E_SEQ]) <= self.published:
            cut = int(np.searchsorted(rows[:, mc.E_SEQ], self.published, side="right"))
            self.builder.apply(rows[:cut], ts, commands)  # already in Redis: rebuild only
            for instr in self.builder.books:
                self._since_snapshot.setdefault(instr, self.snapshot_every)
            rows = rows[cut:]
        data = self.builder.apply(rows, ts, commands)
        if not data:
            return data
        snapshots = self._due_snapshots(data)
        await self.flush()
        self._in_flight = asyncio.ensure_future(self._publish(data, snapshots))
        if wait:
            await self.flush()
        else:
            await asyncio.sleep(0)  # let it write to the socket before we build on
        return data

    async def flush(self) -> None:
        """Wait until everything processed so far is in Redis (re-raises its failure)."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _publish(self, data: MarketData, snapshots: list[BookSnapshot]) -> None:
        if self.batched:
            await self.publisher.publish(data, snapshots)
        else:
            await self.publisher.publish_each(data, snapshots)
        self.published = max(self.published, data.engine_seq)
        self.updates_published += len(data.updates)

    def _due_snapshots(self, data: MarketData) -> list[BookSnapshot]:
        since = self._since_snapshot
        for instr in data.listed:
            since.setdefault(instr, self.snapshot_every)  # an empty book gets one too
        for update in data.updates:
            since[update.instrument] = since.get(update.instrument, self.snapshot_every) + 1
        cap = max(self.snapshot_every, self.publisher.book_maxlen // 2)
        books = self.builder.books
        due = []
        for instr, n in since.items():
            if n >= self.snapshot_every:
                book = books[instr]
                if n >= min(cap, max(self.snapshot_every, len(book.bids) + len(book.asks))):
                    due.append(instr)
        for instr in due:
            since[instr] = 0
        return [self.builder.snapshot(i) for i in sorted(due)]


async def follow(
    source: EventSource,
    feed: MarketDataFeed,
    *,
    ts_of: Callable[[int], int | None] | None = None,
    stop: asyncio.Event | None = None,
    poll_interval: float = 0.002,
    max_rows: int = 65536,
) -> None:
    """Apply ``source``'s events from the start until ``stop`` is set, publishing after
    the feed's cursor.

    ``ts_of(seq)`` gives a command's sequenced timestamp; by default the source's own
    ``ts_of`` if it has one (``EventLog`` does), else event time is the sequence number.
    """
    stop = stop or asyncio.Event()
    clock = ts_of or getattr(source, "ts_of", None)
    await feed.start()
    after = feed.builder.engine_seq
    try:
        while not stop.is_set():
            rows = source.read_after(after, max_rows)
            if len(rows) == 0:
                await feed.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_interval)
                continue
            ts = None
            if clock is not None:
                ts = times_of(clock, np.unique(rows[:, mc.E_SEQ]).tolist()).__getitem__
            await feed.process(rows, ts=ts, wait=False)
            after = int(rows[-1, mc.E_SEQ])
    finally:
        await feed.flush()


def times_of(ts_of: Callable[[int], int | None], seqs: list[int]) -> dict[int, int]:
    """The timestamps of ascending sequence numbers, asking ``ts_of`` about O(runs x log n)
    times instead of once each: sequenced time never goes back, so when both ends of a
    range share a timestamp, everything between does too. An unknown time (None) counts
    as 0, which leaves the builder's event time where it was."""
    if not seqs:
        return {}

    def ask(i: int) -> int:
        return ts_of(seqs[i]) or 0

    out: dict[int, int] = {}
    stack = [(0, len(seqs) - 1, ask(0), ask(len(seqs) - 1))]
    while stack:
        lo, hi, t_lo, t_hi = stack.pop()
        if t_lo == t_hi or hi - lo <= 1:
            for i in range(lo, hi + 1):
                out[seqs[i]] = t_lo if t_lo == t_hi or i == lo else t_hi
            continue
        mid = (lo + hi) // 2
        t_mid = ask(mid)
        stack.append((lo, mid, t_lo, t_mid))
        stack.append((mid, hi, t_mid, t_hi))
    return out
