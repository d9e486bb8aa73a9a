"""Run the market data projection on an engine's event log until interrupted.

    python -m feeds.marketdata ENGINE_EVENTS_DIR [--redis URL] [--prefix cx:md]

It replays the log from the start (rebuilding books silently up to the cursor kept in
Redis), then follows it, publishing each new batch; event time (tickers, candles, trade
timestamps) is the log's sequenced command time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys

from redis.asyncio import Redis

from exchange.event_log import EventLog
from feeds.marketdata.feed import MarketDataFeed, follow
from feeds.marketdata.keys import DEFAULT_PREFIX, Keys
from feeds.redis_conn import resolve_url


async def run(events_dir: str, url: str, prefix: str, snapshot_every: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    redis = Redis.from_url(url)
    feed = MarketDataFeed(redis, keys=Keys(prefix), snapshot_every=snapshot_every)
    gc.collect()
    gc.freeze()  # long-lived start-up objects: keep full collections off the hot path
    try:
        with EventLog.open(events_dir) as log:
            await follow(log, feed, stop=stop)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feeds.marketdata", description=__doc__)
    parser.add_argument("events_dir", help="the engine's event log directory (engine.events_dir)")
    parser.add_argument("--redis", default=None, help="Redis URL (default: local, else embedded)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix")
    parser.add_argument("--snapshot-every", type=int, default=200, help="updates per snapshot")
    args = parser.parse_args(argv)
    asyncio.run(run(args.events_dir, args.redis or resolve_url(), args.prefix, args.snapshot_every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
