"""Market data into Redis: one atomic script call per engine batch.

Redis is the fan-out point (DESIGN "Scaling past one machine"): any number of gateway
processes read the same streams and keys, so the engine host serves one writer whatever
the number of subscribers. Layout: ``keys``.

A batch's writes are listed once (``_writes``) as a few kinds of operation, then applied
by ``APPLY_LUA`` in one EVAL. A script runs atomically, so a reader never sees a snapshot
whose updates are not in the stream yet, nor the cursor ahead of what it names; and one
command per batch instead of ~5 per instrument keeps the client's per-command cost (about
20 us in redis-py) off the hot path. Book updates of one instrument in one batch share a
stream entry (up to ``max_updates_per_entry``). ``publish_each`` applies the same writes
as plain commands, one awaited round trip each and one update per entry: the baseline
the benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import orjson
from redis.asyncio import Redis

from feeds.marketdata.keys import Keys
from feeds.marketdata.messages import BookSnapshot, BookUpdate, Candle, MarketData, Trade

MS_NS = 1_000_000
M = TypeVar("M", BookUpdate, Trade, Candle)

# ARGV is a list of operations: an opcode, the index of its key in KEYS, its arguments.
#   X k maxlen id field value   XADD KEYS[k] MAXLEN ~ maxlen id field value; an entry whose
#                               explicit id the stream already has is skipped, so a batch
#                               re-sent after a failure is not appended twice
#   S k value                   SET KEYS[k] value
#   A k member                  SADD KEYS[k] member
#   C k score value keep        the candle scored `score` in sorted set KEYS[k] becomes
#                               `value`; only the newest `keep` candles are kept
# Sent with EVAL (the server caches it by hash): no SCRIPT LOAD round trip, no NOSCRIPT.
APPLY_LUA = """
local i, n = 1, #ARGV
while i <= n do
  local op, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if op == 'X' then
    local r = redis.pcall('XADD', key, 'MAXLEN', '~', ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
                          ARGV[i + 5])
    if type(r) == 'table' and r.err and not string.find(r.err, 'equal or smaller', 1, true) then
      return r
    end
    i = i + 6
  elseif op == 'S' then
    redis.call('SET', key, ARGV[i + 2])
    i = i + 3
  elseif op == 'A' then
    redis.call('SADD', key, ARGV[i + 2])
    i = i + 3
  elseif op == 'C' then
    local score = ARGV[i + 2]
    redis.call('ZREMRANGEBYSCORE', key, score, score)
    redis.call('ZADD', key, score, ARGV[i + 3])
    redis.call('ZREMRANGEBYRANK', key, 0, -tonumber(ARGV[i + 4]) - 1)
    i = i + 5
  else
    return redis.error_reply('unknown market data operation ' .. tostring(op))
  end
end
return n
"""

Write = tuple  # ("X", key, maxlen, id, field, value) | ("S", key, value) | ("A", key, member)
#                | ("C", key, score, value, keep)


def candle_score(start_ns: int) -> int:
    """Sorted-set score of a candle: its start in milliseconds (exact in a double)."""
    return start_ns // MS_NS


class RedisPublisher:
    def __init__(
        self,
        redis: Redis,
        keys: Keys | None = None,
        *,
        book_maxlen: int = 20_000,
        trades_maxlen: int = 10_000,
        ticker_maxlen: int = 1_000,
        candles_maxlen: int = 1_000,
        candle_retention: int = 5_000,
        max_updates_per_entry: int = 256,
    ) -> None:
        if max_updates_per_entry < 1:
            raise ValueError("max_updates_per_entry must be at least 1")
        self.redis = redis
        self.keys = keys or Keys()
        self.book_maxlen = book_maxlen
        self.trades_maxlen = trades_maxlen
        self.ticker_maxlen = ticker_maxlen
        self.candles_maxlen = candles_maxlen
        self.candle_retention = candle_retention
        self.max_updates_per_entry = max_updates_per_entry

    async def cursor(self) -> int:
        """The last engine sequence number whose market data is in Redis (0: none)."""
        value = await self.redis.get(self.keys.cursor)
        return int(value) if value is not None else 0

    async def publish(self, data: MarketData, snapshots: Sequence[BookSnapshot] = ()) -> None:
        """Everything of one batch, and the snapshots taken after it, atomically."""
        index: dict[str, int] = {}
        argv: list[bytes | str | int] = []
        for op, key, *args in self._writes(data, snapshots, self.max_updates_per_entry):
            k = index.get(key)
            if k is None:
                k = index[key] = len(index) + 1
            argv += (op, k, *args)
        if argv:
            await self.redis.eval(APPLY_LUA, len(index), *index, *argv)

    async def publish_each(self, data: MarketData, snapshots: Sequence[BookSnapshot] = ()) -> None:
        """The same writes as plain commands, one awaited round trip each."""
        r = self.redis
        for op, key, *args in self._writes(data, snapshots, 1):
            if op == "X":
                maxlen, entry_id, field, value = args
                await r.xadd(key, {field: value}, id=entry_id, maxlen=maxlen, approximate=True)
            elif op == "S":
                await r.set(key, args[0])
            elif op == "A":
                await r.sadd(key, args[0])
            else:
                score, value, keep = args
                await r.zremrangebyscore(key, score, score)
                await r.zadd(key, {value: score})
                await r.zremrangebyrank(key, 0, -keep - 1)

    def _writes(
        self, data: MarketData, snapshots: Sequence[BookSnapshot], per_entry: int
    ) -> Iterator[Write]:
        k = self.keys
        dumps = orjson.dumps
        for instr in data.listed:
            yield "A", k.instruments, instr
        for instr, updates in _by_instrument(data.updates).items():
            key = k.book(instr)
            for i in range(0, len(updates), per_entry):
                chunk = updates[i : i + per_entry]
                yield "X", key, self.book_maxlen, f"{chunk[-1].seq}-0", "u", dumps(chunk)
        for snap in snapshots:
            yield "S", k.snapshot(snap.instrument), dumps(snap)
        for instr, trades in _by_instrument(data.trades).items():
            last = f"{trades[-1].trade_id}-0"
            yield "X", k.trades(instr), self.trades_maxlen, last, "t", dumps(trades)
        for ticker in data.tickers:
            body = dumps(ticker)
            yield "S", k.ticker_last(ticker.instrument), body
            yield "X", k.ticker(ticker.instrument), self.ticker_maxlen, "*", "k", body
        for instr, candles in _by_instrument(data.candles).items():
            for c in candles:
                key = k.candle_history(instr, c.interval)
                yield "C", key, candle_score(c.start), dumps(c), self.candle_retention
            yield "X", k.candles(instr), self.candles_maxlen, "*", "c", dumps(candles)
        if data.engine_seq:
            yield "S", k.cursor, data.engine_seq


def _by_instrument(messages: list[M]) -> dict[int, list[M]]:
    out: dict[int, list[M]] = {}
    for m in messages:
        group = out.get(m.instrument)
        if group is None:
            group = out[m.instrument] = []
        group.append(m)
    return out
