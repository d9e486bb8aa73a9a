"""Books rebuilt from Redis equal the engine's, update after update, and recover from gaps.

A real engine (journal in a temporary directory) runs seeded random order flow with every
order type that moves visible quantity: GTC, IOC, FOK, GTD that expire, icebergs,
post-only, self-trade prevention in all modes, in-place and moving replaces, cancels and
mass cancels. Its events go through the market data feed into a real Redis; ``BookClient``
readers rebuild the books from snapshot + stream and verify the checksum at every update.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest
from redis.asyncio import Redis

from exchange import commands as C
from exchange.codes import CommandKind, EventKind
from exchange.engine import Engine
from exchange.event_log import EventLog
from feeds.marketdata.client import BookClient
from feeds.marketdata.feed import MarketDataFeed, follow
from feeds.marketdata.keys import Keys
from feeds.marketdata.wire import WireFormat
from matching import codes as mc
from risk.codes import Role

T0 = 1_800_000_000 * 1_000_000_000
REF = 2_000_000
TICKS = {1: 1_000, 2: 1_000, 3: 10_000}  # instrument 3 trades on a 0.01 tick
ACCOUNTS = range(1, 9)
WAIT_S = 60  # bound on each wait for the feed or a client: generous, so a slow machine passes


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def setup_rows() -> np.ndarray:
    cmds: list[C.Command] = [
        C.ListInstrument(
            instrument=i,
            tick_size=tick,
            lot_size=1,
            min_price=tick,
            max_price=1_000 * 1_000_000,
            min_qty=1,
            max_qty=10_000,
            reference_price=REF,
        )
        for i, tick in TICKS.items()
    ]
    cmds += [C.OpenAccount(account=a, role=Role.PROVIDER) for a in ACCOUNTS]
    cmds += [C.Deposit(account=a, asset=0, amount=10**15) for a in ACCOUNTS]
    cmds += [
        C.RegisterCapacity(account=a, instrument=i, gpu_hours=10**9)
        for a in ACCOUNTS
        for i in TICKS
    ]
    return C.rows(cmds)


class Flow:
    """Seeded random commands; remembers orders so cancels and replaces mostly hit."""

    def __init__(self, seed: int, icebergs: bool = True) -> None:
        self.rng = np.random.default_rng(seed)
        self.icebergs = icebergs
        self.next_id = 1
        self.orders: list[list[int]] = []  # [order id, instrument, account, price, qty]

    def batch(self, n: int, now: int) -> np.ndarray:
        rng = self.rng
        rows = np.zeros((n, mc.N_COMMAND_FIELDS), dtype=np.int64)
        for r in rows:
            x = rng.random()
            if x < 0.62 or not self.orders:
                self._new(r, now)
                continue
            pick = int(rng.integers(len(self.orders)))
            order = self.orders[pick]
            oid, instr, acct, price, qty = order
            r[mc.C_INSTRUMENT], r[mc.C_ORDER_ID], r[mc.C_ACCOUNT] = instr, oid, acct
            if x < 0.80:
                r[mc.C_KIND] = CommandKind.CANCEL_ORDER
                self.orders[pick] = self.orders[-1]
                self.orders.pop()
            elif x < 0.98:
                r[mc.C_KIND] = CommandKind.REPLACE_ORDER
                if rng.random() < 0.5 and qty > 1:  # smaller at the same price: keeps its place
                    r[mc.C_PRICE], r[mc.C_QTY] = price, rng.integers(1, qty)
                else:
                    r[mc.C_PRICE], r[mc.C_QTY] = self._price(instr), rng.integers(1, 60)
                order[3], order[4] = int(r[mc.C_PRICE]), int(r[mc.C_QTY])
            else:
                r[mc.C_KIND] = CommandKind.MASS_CANCEL
        return rows

    def observe(self, events: np.ndarray) -> None:
        """Forget orders that left the book, so later cancels and replaces mostly hit."""
        kinds = events[:, mc.E_KIND]
        done = (
            np.isin(kinds, [EventKind.ORDER_FILLED, EventKind.ORDER_CANCELLED])
            & (events[:, mc.E_LEAVES] == 0)
        ) | (kinds == EventKind.ORDER_EXPIRED)
        gone = set(events[done, mc.E_ORDER_ID].tolist())
        if gone:
            self.orders = [o for o in self.orders if o[0] not in gone]

    def _price(self, instr: int) -> int:
        tick = TICKS[instr]
        return REF + int(self.rng.integers(-12, 13)) * tick

    def _new(self, r: np.ndarray, now: int) -> None:
        rng = self.rng
        instr = int(rng.integers(1, 4))
        r[mc.C_KIND] = CommandKind.NEW_ORDER
        r[mc.C_INSTRUMENT] = instr
        r[mc.C_ORDER_ID] = self.next_id
        r[mc.C_ACCOUNT] = rng.choice(ACCOUNTS)
        r[mc.C_SIDE] = rng.integers(1, 3)
        r[mc.C_PRICE] = self._price(instr)
        r[mc.C_QTY] = rng.integers(1, 40)
        r[mc.C_ORDER_TYPE] = mc.OrderType.LIMIT
        r[mc.C_STP] = rng.integers(0, 4)
        t = rng.random()
        if t < 0.08:
            r[mc.C_TIF] = mc.TimeInForce.IOC
        elif t < 0.12:
            r[mc.C_TIF] = mc.TimeInForce.FOK
        elif t < 0.22:
            r[mc.C_TIF] = mc.TimeInForce.GTD
            r[mc.C_EXPIRE_TS] = now + int(rng.integers(1, 4)) * 1_000_000_000
        else:
            r[mc.C_TIF] = mc.TimeInForce.GTC
            r[mc.C_POST_ONLY] = int(rng.random() < 0.1)
        if self.icebergs and r[mc.C_TIF] in (1, 4) and rng.random() < 0.3:
            r[mc.C_DISPLAY_QTY] = rng.integers(1, r[mc.C_QTY] + 1)
        if r[mc.C_TIF] in (mc.TimeInForce.GTC, mc.TimeInForce.GTD):
            self.orders.append(
                [self.next_id, instr, int(r[mc.C_ACCOUNT]), int(r[mc.C_PRICE]), int(r[mc.C_QTY])]
            )
        self.next_id += 1


def submit(engine: Engine, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a batch; returns its events and the rows as journaled (seq and ts stamped)."""
    events = engine.submit(rows)
    stamped = rows.copy()
    stamped[:, mc.C_SEQ] = np.arange(engine.last_seq - len(rows) + 1, engine.last_seq + 1)
    stamped[:, mc.C_TS] = engine.sequencer.last_ts
    return events, stamped


def engine_levels(engine: Engine, instrument: int) -> tuple[list, list]:
    """The engine's book as the wire writes it: (price, visible qty) strings, best first."""
    fmt = WireFormat.for_instrument(TICKS[instrument])
    bids, asks = engine.core.book.depth(instrument, 100_000)
    return (
        [(fmt.price(int(p)), fmt.qty(int(q))) for p, q, _ in bids],
        [(fmt.price(int(p)), fmt.qty(int(q))) for p, q, _ in asks],
    )


async def run_flow(
    engine: Engine,
    feed: MarketDataFeed,
    flow: Flow,
    clock: Clock,
    batches: int,
    clients: Sequence[BookClient] = (),
    *,
    with_commands: bool = True,
) -> None:
    rng = flow.rng
    for _ in range(batches):
        clock.now += int(rng.integers(0, 800)) * 1_000_000  # GTD orders come due
        events, stamped = submit(engine, flow.batch(int(rng.integers(1, 40)), clock.now))
        flow.observe(events)
        if with_commands:
            await feed.process(events, commands=stamped)
        else:  # the event log alone, as a projection following it sees the stream
            await feed.process(events, ts=clock.now)
        for client in clients:
            await client.poll()


async def catch_up_and_compare(engine: Engine, feed: MarketDataFeed, clients) -> None:
    for client in clients:
        await client.wait_for(feed.builder.books[client.instrument].seq, timeout=WAIT_S)
        bids, asks = client.levels()
        assert (bids, asks) == engine_levels(engine, client.instrument)
        assert client.checksum() == feed.builder.books[client.instrument].checksum()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock):
    with Engine.open(tmp_path / "engine", clock=clock) as eng:
        yield eng


async def start(
    engine: Engine, aredis: Redis, keys: Keys, *, with_commands: bool = True, **kw
) -> MarketDataFeed:
    feed = MarketDataFeed(aredis, keys=keys, **kw)
    await feed.start()
    events, stamped = submit(engine, setup_rows())
    # Without the command rows the tick (0.01 on instrument 3) comes from INSTRUMENT_LISTED.
    await feed.process(events, commands=stamped if with_commands else None)
    return feed


@pytest.mark.parametrize(("seed", "with_commands"), [(1, True), (2, True), (3, False)])
async def test_clients_rebuild_the_engine_books(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys, seed: int, with_commands: bool
) -> None:
    feed = await start(engine, aredis, md_keys, snapshot_every=30, with_commands=with_commands)
    early = [BookClient(aredis, i, keys=md_keys) for i in TICKS]
    for client in early:
        assert await client.sync()
        assert client.seq == 0 and client.levels() == ([], [])
    flow = Flow(seed)
    await run_flow(engine, feed, flow, clock, 60, early, with_commands=with_commands)
    await catch_up_and_compare(engine, feed, early)
    late = [BookClient(aredis, i, keys=md_keys) for i in TICKS]  # join mid-stream
    await run_flow(engine, feed, flow, clock, 60, early + late, with_commands=with_commands)
    await catch_up_and_compare(engine, feed, early + late)

    for client in early:
        seq = feed.builder.books[client.instrument].seq
        assert seq > 50  # the flow really moved this book
        # every update since the empty snapshot was applied, and its checksum verified
        assert client.updates == seq
        assert (client.gaps, client.mismatches, client.snapshots) == (0, 0, 1)
    for client in late:
        assert client.snapshots == 1 and client.gaps == 0 and client.mismatches == 0
        assert 0 < client.updates < feed.builder.books[client.instrument].seq
    assert all(feed.builder.stats[i].window.trades > 20 for i in TICKS)  # books crossed


async def test_every_published_update_carries_the_book_checksum(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    """Read the raw stream: seqs are contiguous from 1 and entry ids name the last one."""
    feed = await start(engine, aredis, md_keys)
    await run_flow(engine, feed, Flow(5), clock, 40)
    for instrument in TICKS:
        entries = await aredis.xrange(md_keys.book(instrument))
        seqs = []
        for entry_id, fields in entries:
            updates = orjson.loads(fields[b"u"])
            assert entry_id.decode() == f"{updates[-1]['seq']}-0"
            seqs += [u["seq"] for u in updates]
            assert all(u["instrument"] == instrument for u in updates)
            assert all(u["bids"] or u["asks"] for u in updates)
        assert seqs == list(range(1, feed.builder.books[instrument].seq + 1))
    snap = orjson.loads(await aredis.get(md_keys.snapshot(3)))
    assert snap["seq"] <= feed.builder.books[3].seq
    assert all(len(p.split(".")[1]) == 2 for p, _ in snap["bids"] + snap["asks"])  # 0.01 tick


async def test_a_dropped_update_triggers_a_resync(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    feed = await start(engine, aredis, md_keys, snapshot_every=20)
    flow = Flow(11)
    client = BookClient(aredis, 1, keys=md_keys)
    await run_flow(engine, feed, flow, clock, 30)
    await client.wait_for(feed.builder.books[1].seq, timeout=WAIT_S)
    at = client.seq
    await run_flow(engine, feed, flow, clock, 30)
    reply = await aredis.xread({md_keys.book(1): f"{at}-0"})
    updates = [u for _, entries in reply for _, f in entries for u in orjson.loads(f[b"u"])]
    assert len(updates) > 3
    del updates[1]  # lost on the way
    applied = await client.receive(updates)
    assert applied == 1 and client.gaps == 1 and client.snapshots == 2
    await run_flow(engine, feed, flow, clock, 10)
    await catch_up_and_compare(engine, feed, [client])
    assert client.mismatches == 0


async def test_a_drifted_book_fails_its_checksum_and_resyncs(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    feed = await start(engine, aredis, md_keys)
    flow = Flow(12)
    client = BookClient(aredis, 2, keys=md_keys)
    await run_flow(engine, feed, flow, clock, 20)
    await client.wait_for(feed.builder.books[2].seq, timeout=WAIT_S)
    client._set("999.999", "1", True)  # a phantom best bid no update will ever name
    await run_flow(engine, feed, flow, clock, 20)
    await catch_up_and_compare(engine, feed, [client])
    assert client.mismatches == 1 and client.snapshots == 2 and client.gaps == 0
    assert "999.999" not in [p for p, _ in client.levels()[0]]


async def test_follower_resumes_from_its_cursor_without_republishing(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    """Follow the engine's event log; restart the feed; nothing is lost or doubled, and
    event time is the engine's sequenced time, read from the log."""
    flow = Flow(21, icebergs=False)  # the event log alone does not say what icebergs show
    stamped: dict[int, int] = {}  # command seq -> its batch's timestamp

    def submit_batches(batches: list[np.ndarray]) -> None:
        for rows in batches:
            clock.now += 1_500_000_000
            engine.submit(rows)
            for seq in range(engine.last_seq - len(rows) + 1, engine.last_seq + 1):
                stamped[seq] = engine.sequencer.last_ts

    submit_batches([setup_rows(), *(flow.batch(30, clock.now) for _ in range(20))])
    client = BookClient(aredis, 1, keys=md_keys)

    async def run_feed_until(seq: int) -> MarketDataFeed:
        feed = MarketDataFeed(aredis, keys=md_keys, snapshot_every=15)
        stop = asyncio.Event()
        with EventLog.open(engine.events_dir) as log:
            task = asyncio.create_task(follow(log, feed, stop=stop, max_rows=97))
            async with asyncio.timeout(WAIT_S):
                while feed.published < seq:
                    await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(task, WAIT_S)
        return feed

    first = await run_feed_until(engine.last_seq)
    await client.wait_for(first.builder.books[1].seq, timeout=WAIT_S)
    assert client.levels() == engine_levels(engine, 1)
    stream_len = await aredis.xlen(md_keys.book(1))

    submit_batches([flow.batch(30, clock.now) for _ in range(10)])
    second = await run_feed_until(engine.last_seq)  # replays from seq 1, publishes after
    assert second.builder.books[1].seq > first.builder.books[1].seq
    new_updates = sum(second.builder.books[i].seq - first.builder.books[i].seq for i in TICKS)
    assert second.updates_published == new_updates > 0
    assert await aredis.xlen(md_keys.book(1)) > stream_len
    await client.wait_for(second.builder.books[1].seq, timeout=WAIT_S)
    assert client.levels() == engine_levels(engine, 1)
    assert (client.gaps, client.mismatches, client.snapshots) == (0, 0, 1)
    assert int(await aredis.get(md_keys.cursor)) == engine.last_seq
    trades = [
        t
        for i in TICKS
        for _, f in await aredis.xrange(md_keys.trades(i))
        for t in orjson.loads(f[b"t"])
    ]
    assert len(trades) > 20
    assert all(t["ts"] == stamped[t["engine_seq"]] for t in trades)
    assert len({t["ts"] for t in trades}) > 5  # many batches, many times


async def test_clients_join_while_the_feed_publishes(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    """Joining at any moment, a client's snapshot is consistent with the stream after it."""
    flow = Flow(31, icebergs=False)
    engine.submit(setup_rows())
    feed = MarketDataFeed(aredis, keys=md_keys, snapshot_every=7)
    stop = asyncio.Event()
    clients: list[BookClient] = []
    with EventLog.open(engine.events_dir) as log:
        task = asyncio.create_task(follow(log, feed, stop=stop, poll_interval=0.0005))
        for i in range(60):
            engine.submit(flow.batch(int(flow.rng.integers(1, 30)), clock.now))
            await asyncio.sleep(0.0005 * (i % 3))
            if i % 6 == 0:
                clients.append(BookClient(aredis, 1 + i % 3, keys=md_keys))
            for client in clients:
                await client.poll()
        async with asyncio.timeout(WAIT_S):
            while feed.published < engine.last_seq:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, WAIT_S)
    await catch_up_and_compare(engine, feed, clients)
    assert len(clients) == 10
    assert all(c.gaps == 0 and c.mismatches == 0 and c.snapshots == 1 for c in clients)
    assert sum(c.updates for c in clients) > 100


async def test_a_batch_sent_twice_is_appended_once(
    engine: Engine, clock: Clock, aredis: Redis, md_keys: Keys
) -> None:
    """A batch re-sent after a failure (say, its reply was lost) changes nothing."""
    feed = await start(engine, aredis, md_keys)
    events, stamped = submit(engine, Flow(41).batch(40, clock.now))
    data = await feed.process(events, commands=stamped)
    assert data.updates and data.trades
    lengths = [await aredis.xlen(md_keys.book(i)) for i in TICKS]
    trades = [await aredis.xlen(md_keys.trades(i)) for i in TICKS]
    await feed.publisher.publish(data)
    assert [await aredis.xlen(md_keys.book(i)) for i in TICKS] == lengths
    assert [await aredis.xlen(md_keys.trades(i)) for i in TICKS] == trades
