"""Market data: the engine's events as L2 books with checksums, trades, tickers and candles,
published through Redis for any number of gateways (DESIGN "Users", ``/ws`` market data).

- ``builder``: events -> messages (pure, deterministic, no I/O, no clock);
- ``publisher`` and ``feed``: messages -> Redis, resumable from a cursor; ``follow`` runs
  it on the engine's event log;
- ``client``: reading it back (``BookClient`` verifies every update's checksum);
- ``keys``: the Redis layout; ``wire``: decimal strings; ``checksum``: Kraken's CRC32.
"""

from feeds.marketdata.builder import MarketDataBuilder
from feeds.marketdata.checksum import checksum, checksum_text
from feeds.marketdata.client import BookClient, BookIntegrityError, candle_history, latest_ticker
from feeds.marketdata.feed import MarketDataFeed, follow
from feeds.marketdata.keys import DEFAULT_PREFIX, Keys
from feeds.marketdata.messages import BookSnapshot, BookUpdate, Candle, MarketData, Ticker, Trade
from feeds.marketdata.publisher import RedisPublisher
from feeds.marketdata.wire import WireFormat

__all__ = [
    "DEFAULT_PREFIX",
    "BookClient",
    "BookIntegrityError",
    "BookSnapshot",
    "BookUpdate",
    "Candle",
    "Keys",
    "MarketData",
    "MarketDataBuilder",
    "MarketDataFeed",
    "RedisPublisher",
    "Ticker",
    "Trade",
    "WireFormat",
    "candle_history",
    "checksum",
    "checksum_text",
    "follow",
    "latest_ticker",
]
