"""Trades, the 24h ticker and candles for a scripted trade sequence, through a real engine
and a real Redis; iceberg visibility in the L2 updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from redis.asyncio import Redis

from exchange import commands as C
from exchange.engine import Engine
from feeds.marketdata.builder import MarketDataBuilder
from feeds.marketdata.client import candle_history, latest_ticker
from feeds.marketdata.feed import MarketDataFeed
from feeds.marketdata.keys import Keys
from feeds.marketdata.messages import MarketData
from feeds.marketdata.stats import DAY_NS, SECOND_NS
from matching import codes as mc
from matching.codes import Side, TimeInForce
from risk.codes import Role

S = SECOND_NS
H = 3_600 * S
T0 = 1_800_000_000 * S  # on a whole hour; 08:00 UTC, so its day began 8 hours earlier
DAY0 = T0 - T0 % DAY_NS
SELLER, BUYER = 1, 2


class Clock:
    now = T0

    def __call__(self) -> int:
        return self.now


class Script:
    """Drives a real engine: each ``at`` call is one batch stamped at that time."""

    def __init__(self, engine: Engine, clock: Clock, feed: MarketDataFeed) -> None:
        self.engine, self.clock, self.feed = engine, clock, feed
        self.next_id = 1

    async def at(self, ts: int, *cmds: C.Command) -> MarketData:
        self.clock.now = ts
        rows = C.rows(list(cmds))
        events = self.engine.submit(rows)
        rows[:, mc.C_SEQ] = np.arange(
            self.engine.last_seq - len(rows) + 1, self.engine.last_seq + 1
        )
        rows[:, mc.C_TS] = self.engine.sequencer.last_ts
        return await self.feed.process(events, commands=rows)

    def order(self, side: Side, price: int, qty: int, **kw) -> C.SubmitOrder:
        account = SELLER if side == Side.SELL else BUYER
        self.next_id += 1
        return C.SubmitOrder(
            instrument=1,
            order_id=self.next_id,
            account=account,
            side=side,
            price=price,
            qty=qty,
            **kw,
        )

    async def trade(self, ts: int, price: int, *qtys: int) -> MarketData:
        """Resting sells of ``qtys`` at ``price``, all taken by one IOC buy."""
        sells = [self.order(Side.SELL, price, q) for q in qtys]
        buy = self.order(Side.BUY, price, sum(qtys), tif=TimeInForce.IOC)
        return await self.at(ts, *sells, buy)


@pytest.fixture
async def script(tmp_path: Path, aredis: Redis, md_keys: Keys):
    clock = Clock()
    with Engine.open(tmp_path / "engine", clock=clock) as engine:
        feed = MarketDataFeed(aredis, keys=md_keys)
        await feed.start()
        s = Script(engine, clock, feed)
        await s.at(
            T0 - H,
            C.ListInstrument(
                instrument=1,
                tick_size=1_000,
                lot_size=1,
                min_price=1_000,
                max_price=10**9,
                min_qty=1,
                max_qty=10_000,
                reference_price=2_000_000,
            ),
            *(C.OpenAccount(account=a, role=Role.PROVIDER) for a in (SELLER, BUYER)),
            *(C.Deposit(account=a, asset=0, amount=10**12) for a in (SELLER, BUYER)),
            C.RegisterCapacity(account=SELLER, instrument=1, gpu_hours=10**6),
        )
        yield s


def candle(start: int, interval: str, o: str, h: str, lo: str, c: str, v: str, n: int) -> dict:
    return {
        "instrument": 1,
        "interval": interval,
        "start": start,
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": v,
        "trades": n,
    }


async def test_trades_ticker_and_candles_of_a_scripted_sequence(
    script: Script, aredis: Redis, md_keys: Keys
) -> None:
    first = await script.trade(T0 + 10 * S, 2_000_000, 5)
    assert [(t.price, t.qty, t.side, t.ts) for t in first.trades] == [
        ("2.000", "5", "buy", T0 + 10 * S)
    ]
    second = await script.trade(T0 + 50 * S, 2_010_000, 1, 2)  # two fills, one batch
    assert [t.qty for t in second.trades] == ["1", "2"]
    assert second.trades[0].trade_id < second.trades[1].trade_id
    await script.trade(T0 + 70 * S, 1_990_000, 4)
    before = await script.trade(T0 + 400 * S, 2_005_000, 2)

    assert orjson.loads(orjson.dumps(before.tickers[-1])) == {
        "instrument": 1,
        "ts": T0 + 400 * S,
        "bid": None,
        "bid_qty": None,
        "ask": None,
        "ask_qty": None,
        "last": "2.005",
        "last_qty": "2",
        "open": "2.000",
        "high": "2.010",
        "low": "1.990",
        "change": "0.005",
        "volume": "14",
        "trades": 5,
    }
    # 25 hours on: only the new trade is inside the window, which now starts after T0 + 1h
    await script.at(T0 + 25 * H, script.order(Side.BUY, 1_980_000, 6))
    await script.trade(T0 + 25 * H + S, 2_020_000, 1)
    ticker = await latest_ticker(aredis, 1, md_keys)
    assert ticker is not None
    assert (ticker["bid"], ticker["bid_qty"], ticker["ask"]) == ("1.980", "6", None)
    assert (ticker["open"], ticker["high"], ticker["low"], ticker["last"]) == ("2.020",) * 4
    assert (ticker["change"], ticker["volume"], ticker["trades"]) == ("0.000", "1", 1)

    minute = await candle_history(aredis, 1, "1m", keys=md_keys)
    assert minute == [
        candle(T0, "1m", "2.000", "2.010", "2.000", "2.010", "8", 3),
        candle(T0 + 60 * S, "1m", "1.990", "1.990", "1.990", "1.990", "4", 1),
        candle(T0 + 360 * S, "1m", "2.005", "2.005", "2.005", "2.005", "2", 1),
        candle(T0 + 25 * H, "1m", "2.020", "2.020", "2.020", "2.020", "1", 1),
    ]
    five = await candle_history(aredis, 1, "5m", keys=md_keys)
    assert five[:2] == [
        candle(T0, "5m", "2.000", "2.010", "1.990", "1.990", "12", 4),
        candle(T0 + 300 * S, "5m", "2.005", "2.005", "2.005", "2.005", "2", 1),
    ]
    hour = await candle_history(aredis, 1, "1h", keys=md_keys)
    assert hour[0] == candle(T0, "1h", "2.000", "2.010", "1.990", "2.005", "14", 5)
    day = await candle_history(aredis, 1, "1d", keys=md_keys)
    assert [c["start"] for c in day] == [DAY0, DAY0 + DAY_NS]
    assert (day[0]["volume"], day[1]["volume"]) == ("14", "1")

    # history queries: a time range, and the latest N
    ranged = await candle_history(
        aredis, 1, "1m", start_ns=T0 + 60 * S, end_ns=T0 + 360 * S, keys=md_keys
    )
    assert [c["start"] for c in ranged] == [T0 + 60 * S, T0 + 360 * S]
    latest = await candle_history(aredis, 1, "1m", limit=2, keys=md_keys)
    assert latest == minute[-2:]

    trades = await aredis.xrange(md_keys.trades(1))
    published = [t for _, f in trades for t in orjson.loads(f[b"t"])]
    assert [t["qty"] for t in published] == ["5", "1", "2", "4", "2", "1"]
    assert [t["trade_id"] for t in published] == sorted(t["trade_id"] for t in published)


async def test_the_window_rolls_on_event_time_alone(script: Script) -> None:
    await script.trade(T0, 2_000_000, 3)
    builder = script.feed.builder
    assert builder.roll(T0 + 23 * H).tickers == []  # still inside: nothing changed
    # the window is (now - 24h, now] at one-second buckets: the trade's second must pass
    assert builder.roll(T0 + 24 * H).tickers == []
    rolled = builder.roll(T0 + 24 * H + S)
    assert len(rolled.tickers) == 1
    t = rolled.tickers[0]
    assert (t.volume, t.trades, t.open, t.high, t.change, t.last) == (
        "0",
        0,
        None,
        None,
        None,
        "2.000",
    )


async def test_an_iceberg_shows_only_its_display_quantity(script: Script) -> None:
    rested = await script.at(T0, script.order(Side.SELL, 2_001_000, 10, display_qty=3))
    assert [(u.asks, u.bids) for u in rested.updates] == [([("2.001", "3")], [])]
    # 3 taken, 3 more shown from the hidden part: the level still shows 3, no update
    took = await script.at(T0 + S, script.order(Side.BUY, 2_001_000, 3, tif=TimeInForce.IOC))
    assert [t.qty for t in took.trades] == ["3"] and took.updates == []
    # 5 taken: 3 then a refill of 3 of which 2 go; the last hidden unit is not shown yet
    took = await script.at(T0 + 2 * S, script.order(Side.BUY, 2_001_000, 5, tif=TimeInForce.IOC))
    assert [t.qty for t in took.trades] == ["3", "2"]
    assert [u.asks for u in took.updates] == [[("2.001", "1")]]
    book = script.feed.builder.books[1]
    assert book.depth(Side.SELL) == [(2_001_000, 1)]
    _, asks = script.engine.core.book.depth(1, 10)
    assert asks.tolist() == [[2_001_000, 1, 1]]


async def test_event_time_comes_from_commands_a_batch_stamp_or_the_sequence(
    script: Script,
) -> None:
    """Events carry no clock: the builder takes time from what it is given, else seq."""
    script.clock.now = T0
    rows = C.rows(
        [
            script.order(Side.SELL, 2_000_000, 2),
            script.order(Side.BUY, 2_000_000, 2, tif=TimeInForce.IOC),
        ]
    )
    events = script.engine.submit(rows)
    seq = int(events[-1, mc.E_SEQ])
    fresh = [MarketDataBuilder() for _ in range(3)]
    by_seq = fresh[0].apply(events)
    by_fn = fresh[1].apply(events, ts=lambda s: s * 1_000)
    by_batch = fresh[2].apply(events, ts=T0 + 5 * S)
    assert [t.ts for t in by_seq.trades] == [seq]
    assert [t.ts for t in by_fn.trades] == [seq * 1_000]
    assert [t.ts for t in by_batch.trades] == [T0 + 5 * S]
    assert by_batch.candles[0].start == T0  # the 1m candle of that time
