"""The Hermes client against a local HTTP server that speaks Hermes's JSON and SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from feeds.pyth.hermes import HermesSource, SseDecoder
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.quote import OracleQuote, PriceStatus

SOL_ID = "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"
USDC_ID = "eaa020c61cc479712813461ce153894a96a6c00b21ed0cfc2798d1f9a9e9c94a"
BTC_ID = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
T = 1_760_000_000


def entry(feed: str, price: str, conf: str, publish_time: int, expo: int = -8) -> dict:
    """One element of Hermes's ``parsed`` list, as the API returns it."""
    return {
        "id": feed,
        "price": {"price": price, "conf": conf, "expo": expo, "publish_time": publish_time},
        "ema_price": {"price": price, "conf": conf, "expo": expo, "publish_time": publish_time},
        "metadata": {
            "slot": 200_000_000,
            "proof_available_time": publish_time + 1,
            "prev_publish_time": publish_time - 1,
        },
    }


def update(*entries: dict) -> bytes:
    body = {
        "binary": {"encoding": "hex", "data": ["504e4155" + "00" * 40]},
        "parsed": list(entries),
    }
    return orjson.dumps(body)


def event(payload: bytes) -> bytes:
    return b"data:" + payload + b"\n\n"


class FakeHermes:
    """Answers ``/v2/updates/price/latest`` and ``/v2/updates/price/stream`` like Hermes.

    ``streams`` holds what each successive stream connection sends before it is closed; the
    last entry is repeated and held open (a live stream) when ``hold_last`` is set.
    """

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.streams: list[list[bytes]] = []
        self.hold_last = True
        self.fail_first_streams = 0
        self.stream_connections = 0
        self.latest_queries: list[list[tuple[str, str]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/updates/price/latest", self.latest)
        app.router.add_get("/v2/updates/price/stream", self.stream)
        return app

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == (
            f"Bearer {self.api_key}"
        )

    async def latest(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        self.latest_queries.append(list(request.query.items()))
        ids = request.query.getall("ids[]")
        rows = {
            SOL_ID: entry(SOL_ID, "15012345678", "4500000", T),
            USDC_ID: entry(USDC_ID, "99990000", "20000", T),
        }
        body = update(*(rows[i] for i in ids), entry(BTC_ID, "6500000000000", "1", T))
        return web.Response(body=body, content_type="application/json")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        n = self.stream_connections
        self.stream_connections += 1
        if n < self.fail_first_streams:
            return web.Response(status=503, text="unavailable")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        plan = self.streams[min(n, len(self.streams) - 1)]
        for chunk in plan:
            await resp.write(chunk)
        if self.hold_last and n >= len(self.streams) - 1:
            await asyncio.sleep(3600)  # a live stream: cancelled when the client goes away
        return resp


@pytest.fixture
async def hermes() -> AsyncIterator[tuple[FakeHermes, str]]:
    fake = FakeHermes(api_key="k-123")
    server = TestServer(fake.app())
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def metrics() -> OracleMetrics:
    return OracleMetrics(CollectorRegistry())


async def take(source: HermesSource, n: int) -> list[OracleQuote]:
    out: list[OracleQuote] = []
    async with asyncio.timeout(20):
        async for quote in source.updates():
            out.append(quote)
            if len(out) == n:
                break
    return out


async def test_latest_prices(hermes: tuple[FakeHermes, str], metrics: OracleMetrics) -> None:
    fake, url = hermes
    source = HermesSource(url, api_key="k-123", metrics=metrics)
    try:
        quotes = await source.poll()
    finally:
        await source.aclose()
    assert {q.asset for q in quotes} == {"SOL", "USDC"}  # BTC is not one of our feeds
    sol = next(q for q in quotes if q.asset == "SOL")
    assert (sol.price, sol.conf, sol.expo, sol.publish_time) == (15012345678, 4500000, -8, T)
    assert sol.status == PriceStatus.TRADING and not sol.simulated
    assert sol.feed_id == SOL_ID and sol.decimal() == "150.12345678"
    [query] = fake.latest_queries
    assert [v for k, v in query if k == "ids[]"] == [SOL_ID, USDC_ID]
    assert ("parsed", "true") in query


async def test_api_key_is_required_when_configured(hermes: tuple[FakeHermes, str]) -> None:
    _, url = hermes
    source = HermesSource(url, api_key="wrong", metrics=OracleMetrics(CollectorRegistry()))
    try:
        with pytest.raises(aiohttp.ClientResponseError) as err:
            await source.poll()
    finally:
        await source.aclose()
    assert err.value.status == 401


async def test_stream_reconnects_after_it_closes(
    hermes: tuple[FakeHermes, str], metrics: OracleMetrics
) -> None:
    fake, url = hermes
    first = event(update(entry(SOL_ID, "15000000000", "3000000", T)))
    fake.streams = [
        [
            b": keep-alive\n\n",
            first[:25],  # one event split over two writes
            first[25:],
            b"data: {not json\n\n",
            event(update(entry(USDC_ID, "100010000", "10000", T))),
        ],
        [event(update(entry(SOL_ID, "15100000000", "3100000", T + 1)))],
    ]
    source = HermesSource(url, api_key="k-123", reconnect_delay_s=0.01, metrics=metrics)
    try:
        quotes = await take(source, 3)
    finally:
        await source.aclose()
    assert [(q.asset, q.price, q.publish_time) for q in quotes] == [
        ("SOL", 15000000000, T),
        ("USDC", 100010000, T),
        ("SOL", 15100000000, T + 1),
    ]
    assert source.connections == 2 and fake.stream_connections == 2
    assert metrics.count("read_errors", source="hermes", reason="stream_closed") == 1
    assert metrics.count("read_errors", source="hermes", reason="bad_message") == 1


async def test_stream_retries_a_failing_server(
    hermes: tuple[FakeHermes, str], metrics: OracleMetrics
) -> None:
    fake, url = hermes
    fake.fail_first_streams = 2
    fake.streams = [[event(update(entry(SOL_ID, "15000000000", "3000000", T)))]]
    source = HermesSource(url, api_key="k-123", reconnect_delay_s=0.01, metrics=metrics)
    try:
        [quote] = await take(source, 1)
    finally:
        await source.aclose()
    assert quote.price == 15000000000
    assert fake.stream_connections == 3
    assert metrics.count("read_errors", source="hermes", reason="connection") == 2


def test_sse_decoder() -> None:
    d = SseDecoder()
    assert d.feed(": comment") is None
    assert d.feed("event: price_update") is None
    assert d.feed('data: {"a":') is None
    assert d.feed("data:1}") is None
    assert d.feed("id: 7") is None
    assert d.feed("") == '{"a":\n1}'
    assert d.feed("") is None  # a blank line with no data dispatches nothing
