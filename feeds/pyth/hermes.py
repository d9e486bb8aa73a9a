"""Pyth prices from Hermes: the latest-price HTTP API and the server-sent-events stream.

``poll`` is one ``GET /v2/updates/price/latest``; ``updates`` follows
``GET /v2/updates/price/stream`` and reconnects whenever the stream ends (Hermes closes
streams after a while by design), errors, or goes quiet, with a growing delay between
attempts that resets once data flows again. Only the parsed JSON part of Hermes's answers
is used; the signed binary update is for on-chain verification, which reading does not need.
An API key, when configured, goes in the ``Authorization: Bearer`` header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import orjson

from feeds.pyth.catalog import FEEDS, feed_by_id
from feeds.pyth.metrics import OracleMetrics, default_metrics
from feeds.pyth.quote import OracleQuote, PriceStatus

log = logging.getLogger(__name__)

LATEST_PATH = "/v2/updates/price/latest"
STREAM_PATH = "/v2/updates/price/stream"


class HermesMessageError(ValueError):
    """A Hermes answer that is not the JSON shape its API documents."""


def parse_price_updates(payload: Any, *, source: str = "hermes") -> list[OracleQuote]:
    """Quotes from a Hermes ``PriceUpdate`` JSON object (its ``parsed`` list).

    Feeds that are not ours are ignored; a malformed entry raises ``HermesMessageError``.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("parsed"), list):
        raise HermesMessageError("expected an object with a 'parsed' list")
    quotes = []
    for entry in payload["parsed"]:
        try:
            feed = feed_by_id(str(entry["id"]))
            if feed is None:
                continue
            price = entry["price"]
            quotes.append(
                OracleQuote(
                    asset=feed.asset,
                    price=_integer(price["price"]),
                    conf=_integer(price["conf"]),
                    expo=_integer(price["expo"]),
                    publish_time=_integer(price["publish_time"]),
                    status=PriceStatus.TRADING,  # Hermes serves aggregates of trading feeds only
                    source=source,
                    simulated=False,
                    feed_id=feed.feed_hex,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise HermesMessageError(f"bad price entry {entry!r}: {exc}") from exc
    return quotes


def _integer(value: Any) -> int:
    """Hermes sends mantissas as decimal strings and exponents/times as numbers: never floats."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


class SseDecoder:
    """Server-sent events, line by line (the WHATWG rules this client needs: data, comments)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """Take one line (without its newline); returns an event's data when one completes."""
        if line == "":
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None  # a comment: keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None  # event, id and retry fields are not used


class HermesSource:
    """Reads our feeds from a Hermes instance at ``base_url`` (a path prefix is allowed)."""

    name = "hermes"
    simulated = False

    def __init__(
        self,
        base_url: str,
        *,
        assets: Sequence[str] = ("SOL", "USDC"),
        api_key: str | None = None,
        reconnect_delay_s: float = 0.5,
        max_reconnect_delay_s: float = 10.0,
        idle_timeout_s: float = 30.0,
        metrics: OracleMetrics | None = None,
    ) -> None:
        unknown = [a for a in assets if a not in FEEDS]
        if unknown:
            raise ValueError(f"no Pyth feed known for {unknown}")
        self.base_url = base_url.rstrip("/")
        self.feed_ids = [FEEDS[a].feed_hex for a in assets]
        self.reconnect_delay_s = reconnect_delay_s
        self.max_reconnect_delay_s = max_reconnect_delay_s
        self.idle_timeout_s = idle_timeout_s
        self.metrics = metrics or default_metrics()
        self.connections = 0  # stream connections opened (reconnects show up here)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session: aiohttp.ClientSession | None = None

    def _params(self) -> list[tuple[str, str]]:
        return [("ids[]", f) for f in self.feed_ids] + [("parsed", "true"), ("encoding", "hex")]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        return self._session

    async def poll(self) -> list[OracleQuote]:
        """The latest price of every feed, from one HTTP request."""
        timeout = aiohttp.ClientTimeout(total=self.idle_timeout_s)
        url = self.base_url + LATEST_PATH
        async with self._client().get(url, params=self._params(), timeout=timeout) as resp:
            resp.raise_for_status()
            return parse_price_updates(orjson.loads(await resp.read()))

    async def updates(self) -> AsyncIterator[OracleQuote]:
        """Quotes from the SSE stream, reconnecting for as long as the caller iterates."""
        delay = self.reconnect_delay_s
        while True:
            try:
                async for quote in self._stream():
                    delay = self.reconnect_delay_s  # data flowed: the next drop retries quickly
                    yield quote
                self._read_error("stream_closed", "the stream ended")
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._read_error("connection", f"stream failed: {exc!r}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_reconnect_delay_s)

    async def _stream(self) -> AsyncIterator[OracleQuote]:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.idle_timeout_s)
        url = self.base_url + STREAM_PATH
        headers = {"Accept": "text/event-stream"}
        async with self._client().get(
            url, params=self._params(), timeout=timeout, headers=headers
        ) as resp:
            resp.raise_for_status()
            self.connections += 1
            decoder = SseDecoder()
            async for raw in resp.content:
                data = decoder.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if data is None:
                    continue
                try:
                    quotes = parse_price_updates(orjson.loads(data))
                except (orjson.JSONDecodeError, HermesMessageError) as exc:
                    self._read_error("bad_message", str(exc))
                    continue
                for quote in quotes:
                    yield quote

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _read_error(self, reason: str, detail: str) -> None:
        self.metrics.read_errors.labels(self.name, reason).inc()
        log.warning("oracle hermes: %s", detail)
