"""Redis key names of market data, shared by the publisher and every reader.

Per instrument ``i`` under a prefix ``p`` (default ``cx:md``):

| key | type | holds |
|---|---|---|
| ``p:book:i`` | stream | book updates; entry id ``<last update seq>-0``, field ``u`` = JSON list |
| ``p:book:i:snapshot`` | string | JSON ``BookSnapshot`` with its ``seq`` |
| ``p:trades:i`` | stream | trades; entry id ``<last trade id>-0``, field ``t`` = JSON list |
| ``p:ticker:i`` | stream | tickers, field ``k`` = JSON ``Ticker`` |
| ``p:ticker:i:last`` | string | the latest JSON ``Ticker`` |
| ``p:candles:i`` | stream | candle changes, field ``c`` = JSON list of ``Candle`` |
| ``p:candles:i:<interval>`` | sorted set | candle history, score = start in seconds |
| ``p:instruments`` | set | instruments with market data |
| ``p:cursor`` | string | the last engine sequence number published |

Book and trade entry ids are the sequence numbers themselves, so a reader holding a
snapshot at seq ``S`` reads the stream from id ``S-0`` and gets exactly what follows it,
and a restarted publisher can never append an entry twice.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "cx:md"


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def book(self, instrument: int) -> str:
        return f"{self.prefix}:book:{instrument}"

    def snapshot(self, instrument: int) -> str:
        return f"{self.prefix}:book:{instrument}:snapshot"

    def trades(self, instrument: int) -> str:
        return f"{self.prefix}:trades:{instrument}"

    def ticker(self, instrument: int) -> str:
        return f"{self.prefix}:ticker:{instrument}"

    def ticker_last(self, instrument: int) -> str:
        return f"{self.prefix}:ticker:{instrument}:last"

    def candles(self, instrument: int) -> str:
        return f"{self.prefix}:candles:{instrument}"

    def candle_history(self, instrument: int, interval: str) -> str:
        return f"{self.prefix}:candles:{instrument}:{interval}"

    @property
    def instruments(self) -> str:
        return f"{self.prefix}:instruments"

    @property
    def cursor(self) -> str:
        return f"{self.prefix}:cursor"

    @property
    def pattern(self) -> str:
        """Matches every key under this prefix (for cleanup)."""
        return f"{self.prefix}:*"
