"""The on-chain path against the embedded Solana runtime, through solana-py's JSON-RPC.

The simulated publisher writes PriceUpdateV2 accounts with ``cx_setAccount``; the reader
fetches them with ``getMultipleAccounts`` and decodes them with anchorpy; a legacy price
account written byte by byte is read back through pythclient; and the whole default path
(publisher -> runtime -> reader -> guards -> engine) sets the engine's SOL price.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey

from exchange.engine import Engine
from exchange.events import OraclePriceSet, decode
from feeds.pyth.accounts import decode_price_update_v2
from feeds.pyth.config import PythSettings
from feeds.pyth.feeder import OracleFeeder, Outcome
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.onchain import OnchainSource, PriceAccountRef
from feeds.pyth.quote import OracleQuote, PriceStatus
from feeds.pyth.service import run_oracle
from feeds.pyth.simulated import (
    SIMULATED_AUTHORITY,
    RandomWalk,
    SimulatedPublisher,
    SimulatedSource,
    WalkParams,
    simulated_address,
)
from settlement.localnet import LocalSolana

RECEIVER = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
ORACLE = Pubkey.from_string("FsJ3A3u2vn5cTVofAjvy6y5kwABJAqYWpe4975bi2epH")
USDC_FEED = bytes.fromhex("eaa020c61cc479712813461ce153894a96a6c00b21ed0cfc2798d1f9a9e9c94a")
T = 1_760_000_000


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSolana]:
    with LocalSolana(tmp_path_factory.mktemp("chain")) as node:
        yield node


@pytest.fixture
def metrics() -> OracleMetrics:
    return OracleMetrics(CollectorRegistry())


async def set_account(url: str, address: Pubkey, owner: Pubkey, data: bytes) -> None:
    """The runtime's local-only ``cx_setAccount`` (what a test needs to plant an account)."""
    account = {
        "lamports": 10_000_000,
        "data": [base64.b64encode(data).decode(), "base64"],
        "owner": str(owner),
        "executable": False,
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "cx_setAccount", "params": [str(address), account]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        reply = await resp.json(content_type=None)
    assert "error" not in reply, reply


async def current_slot(url: str) -> int:
    async with AsyncClient(url) as client:
        return (await client.get_slot()).value


def test_seeded_walk_is_reproducible() -> None:
    params = WalkParams(start=150 * 10**8, expo=-8, step_bps=25, conf_bps=(3, 12))
    a, b, c = RandomWalk(params, 5), RandomWalk(params, 5), RandomWalk(params, 6)
    path_a = [a.step() for _ in range(50)]
    assert path_a == [b.step() for _ in range(50)]
    assert path_a != [c.step() for _ in range(50)]
    assert all(p > 0 and 0 < conf * 10_000 <= 12 * p for p, conf in path_a)


async def test_simulated_accounts_read_back(node: LocalSolana, metrics: OracleMetrics) -> None:
    publisher = SimulatedPublisher(node.url, seed=11, clock=lambda: T)
    reader = OnchainSource(node.url, publisher.accounts(), simulated=True, metrics=metrics)
    try:
        written = await publisher.publish_once()
        quotes = {q.asset: q for q in await reader.poll()}
        async with AsyncClient(node.url) as client:
            raw = (await client.get_account_info(simulated_address("SOL"))).value
    finally:
        await publisher.aclose()
        await reader.aclose()
    assert quotes == written  # every field, including SIMULATED and the feed id
    assert set(quotes) == {"SOL", "USDC"}
    assert all(q.simulated and q.source == "simulated" for q in quotes.values())
    assert raw is not None and raw.owner == RECEIVER
    update = decode_price_update_v2(bytes(raw.data), raw.owner)
    assert update.fully_verified and update.write_authority == SIMULATED_AUTHORITY
    assert (update.price, update.publish_time) == (written["SOL"].price, T)


def legacy_price_account(price: int, conf: int, timestamp: int, pub_slot: int) -> bytes:
    """pc_price_t version 2 (Pyth's published layout), one publisher."""
    size = 240 + 96 * 32
    data = struct.pack("<IIII", 0xA1B2C3D4, 2, 3, size)
    data += struct.pack("<IiIIQQ", 1, -8, 1, 1, pub_slot, pub_slot)
    data += struct.pack("<6q", price, 0, 0, conf, 0, 0)  # twap, twac
    data += struct.pack("<qBBBbi", timestamp, 1, 0, 0, 0, 0)
    data += bytes([3] * 32) + bytes(32)  # product, next
    data += struct.pack("<QqQq", pub_slot - 1, price, conf, timestamp - 1)
    data += struct.pack("<qQIIQ", price, conf, 1, 0, pub_slot)  # aggregate: TRADING
    data += bytes([4] * 32) + struct.pack("<qQIIQ", price, conf, 1, 0, pub_slot) * 2
    return data.ljust(size, b"\x00")


async def test_legacy_account_over_rpc(node: LocalSolana, metrics: OracleMetrics) -> None:
    good, foreign = Pubkey.new_unique(), Pubkey.new_unique()
    slot = await current_slot(node.url)
    data = legacy_price_account(14_999_000_000, 6_000_000, T, slot)
    await set_account(node.url, good, ORACLE, data)
    await set_account(node.url, foreign, Pubkey.new_unique(), data)  # right bytes, wrong owner
    refs = [PriceAccountRef("SOL", good), PriceAccountRef("SOL", foreign)]
    reader = OnchainSource(node.url, refs, metrics=metrics)
    try:
        [quote] = await reader.poll()
    finally:
        await reader.aclose()
    assert (quote.price, quote.conf, quote.expo, quote.publish_time) == (
        14_999_000_000,
        6_000_000,
        -8,
        T,
    )
    assert quote.status == PriceStatus.TRADING and not quote.simulated
    assert metrics.count("read_errors", source="onchain", reason="wrong_owner") == 1


async def test_wrong_feed_and_missing_accounts_are_counted(
    node: LocalSolana, metrics: OracleMetrics
) -> None:
    # a genuine USDC/USD update planted where SOL is expected
    usdc_publisher = SimulatedPublisher(node.url, assets=["USDC"], clock=lambda: T)
    try:
        await usdc_publisher.publish_once()
    finally:
        await usdc_publisher.aclose()
    refs = [
        PriceAccountRef("SOL", simulated_address("USDC")),
        PriceAccountRef("SOL", Pubkey.new_unique()),  # never written
    ]
    reader = OnchainSource(node.url, refs, metrics=metrics)
    try:
        assert await reader.poll() == []
    finally:
        await reader.aclose()
    assert metrics.count("read_errors", source="onchain", reason="feed_mismatch") == 1
    assert metrics.count("read_errors", source="onchain", reason="missing_account") == 1


async def test_default_path_sets_the_engine_price(
    node: LocalSolana, tmp_path: Path, metrics: OracleMetrics
) -> None:
    source = SimulatedSource(node.url, seed=3, interval_s=0.05, metrics=metrics)
    events: list[OraclePriceSet] = []
    accepted: list[OracleQuote] = []
    with Engine.open(tmp_path / "engine") as engine:
        engine.subscribe(
            lambda rows: events.extend(e for e in decode(rows) if isinstance(e, OraclePriceSet))
        )
        feeder = OracleFeeder(engine.submit, risk=engine.config.risk, metrics=metrics)
        try:
            async with asyncio.timeout(30):
                async for quote in source.updates():
                    for d in feeder.offer([quote]):
                        if d.outcome == Outcome.ACCEPTED:
                            accepted.append(d.quote)
                    if len(accepted) >= 2 and "USDC" in feeder.latest:
                        break
        finally:
            await source.aclose()
    assert [(e.asset, e.price, e.conf, e.expo, e.publish_time) for e in events] == [
        (1, q.price, q.conf, q.expo, q.publish_time) for q in accepted
    ]
    assert all(q.asset == "SOL" and q.simulated and q.source == "simulated" for q in accepted)
    assert accepted[0].publish_time < accepted[1].publish_time  # one price per publish time
    assert feeder.latest["USDC"].simulated
    assert metrics.count("quotes_accepted", asset="SOL", source="simulated") == len(events)


async def test_simulated_publish_times_chain(node: LocalSolana) -> None:
    times = iter([T, T, T + 2])
    publisher = SimulatedPublisher(node.url, assets=["SOL"], seed=4, clock=lambda: next(times))
    updates = []
    try:
        async with AsyncClient(node.url) as client:
            for _ in range(3):
                await publisher.publish_once()
                raw = (await client.get_account_info(simulated_address("SOL"))).value
                assert raw is not None
                updates.append(decode_price_update_v2(bytes(raw.data), raw.owner))
    finally:
        await publisher.aclose()
    assert [(u.prev_publish_time, u.publish_time) for u in updates] == [
        (T - 1, T),
        (T - 1, T),  # a second write within the same second keeps the same window
        (T, T + 2),
    ]
    assert len({u.price for u in updates}) > 1  # the walk moves on every write


async def test_run_oracle_feeds_the_engine_until_cancelled(
    node: LocalSolana, tmp_path: Path, metrics: OracleMetrics
) -> None:
    settings = PythSettings(source="simulated", interval_ms=50)
    with Engine.open(tmp_path / "engine") as engine:
        feeder = OracleFeeder(engine.submit, risk=engine.config.risk, metrics=metrics)
        task = asyncio.get_running_loop().create_task(
            run_oracle(
                engine.submit,
                risk=engine.config.risk,
                settings=settings,
                rpc_url=node.url,
                feeder=feeder,
            )
        )
        try:
            async with asyncio.timeout(30):
                while "SOL" not in feeder.latest:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert engine.last_seq >= 1
    assert task.cancelled()
    wire = feeder.latest["SOL"].to_wire()
    assert wire["label"] == "SIMULATED" and wire["simulated"] is True
    assert wire["price"] == feeder.latest["SOL"].decimal() and "." in wire["price"]
