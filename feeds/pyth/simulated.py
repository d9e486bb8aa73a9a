"""The embedded default oracle: a SIMULATED Pyth publisher on the local Solana runtime.

With no ``CX_PYTH_SOURCE`` the exchange still runs its real oracle path: this publisher
writes ``PriceUpdateV2`` accounts for SOL/USD and USDC/USD into the local runtime (through
its local-only ``cx_setAccount`` RPC method) every ~400 ms, and the exchange reads them back
with the same on-chain reader it would use against a real cluster. Prices come from a seeded
integer random walk, so a run is reproducible; every quote is marked simulated, and the
accounts live at addresses of our own (not Pyth's sponsored feed addresses) so they cannot be
mistaken for real ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from solders.pubkey import Pubkey

from feeds.pyth.accounts import price_update_discriminator
from feeds.pyth.catalog import FEEDS, RECEIVER_PROGRAM_ID
from feeds.pyth.metrics import OracleMetrics, default_metrics
from feeds.pyth.onchain import OnchainSource, PriceAccountRef
from feeds.pyth.quote import OracleQuote, PriceStatus

log = logging.getLogger(__name__)

PRICE_UPDATE_V2_LEN = 134  # what the receiver allocates: room for Partial{num_signatures}
SIMULATED_AUTHORITY = Pubkey.find_program_address([b"cx-simulated-publisher"], RECEIVER_PROGRAM_ID)[
    0
]
BPS = 10_000


def simulated_address(asset: str) -> Pubkey:
    """Where the simulator keeps an asset's PriceUpdateV2 account (deterministic)."""
    return Pubkey.find_program_address(
        [b"cx-simulated", FEEDS[asset].feed_id], RECEIVER_PROGRAM_ID
    )[0]


def rent_exempt_lamports(data_len: int) -> int:
    """Solana's rent-exempt minimum (3480 lamports per byte-year, two years, 128-byte overhead)."""
    return (data_len + 128) * 3480 * 2


@dataclass(frozen=True, slots=True)
class WalkParams:
    start: int  # mantissa at ``expo``
    expo: int
    step_bps: int  # largest move per step
    conf_bps: tuple[int, int]  # confidence drawn in this range of the price
    revert: bool = False  # stablecoin: redraw around ``start`` instead of drifting


WALKS: dict[str, WalkParams] = {
    "SOL": WalkParams(start=150 * 10**8, expo=-8, step_bps=25, conf_bps=(3, 12)),
    "USDC": WalkParams(start=10**8, expo=-8, step_bps=5, conf_bps=(1, 5), revert=True),
}


class RandomWalk:
    """Integer prices from a seeded generator: the same seed gives the same path."""

    def __init__(self, params: WalkParams, seed: int | str) -> None:
        self.params = params
        self._rng = random.Random(seed)
        self.price = params.start
        self.ema_price = params.start
        self.ema_conf = 0

    def step(self) -> tuple[int, int]:
        """The next (price, conf) mantissas."""
        p, rng = self.params, self._rng
        base = p.start if p.revert else self.price
        moved = base + base * rng.randint(-p.step_bps, p.step_bps) // BPS
        self.price = min(max(moved, p.start // 4), p.start * 4)
        conf = self.price * rng.randint(*p.conf_bps) // BPS
        self.ema_price += (self.price - self.ema_price) // 10
        self.ema_conf += (conf - self.ema_conf) // 10
        return self.price, conf


def encode_price_update_v2(
    feed_id: bytes,
    price: int,
    conf: int,
    expo: int,
    publish_time: int,
    prev_publish_time: int,
    ema_price: int,
    ema_conf: int,
    posted_slot: int,
    write_authority: Pubkey = SIMULATED_AUTHORITY,
) -> bytes:
    """A fully verified PriceUpdateV2 account's bytes (Borsh, as the receiver writes them)."""
    body = (
        price_update_discriminator()
        + bytes(write_authority)
        + b"\x01"  # VerificationLevel::Full
        + feed_id
        + struct.pack(
            "<qQiqqqQ", price, conf, expo, publish_time, prev_publish_time, ema_price, ema_conf
        )
        + struct.pack("<Q", posted_slot)
    )
    return body.ljust(PRICE_UPDATE_V2_LEN, b"\x00")


class SimulatedPublisher:
    """Writes the simulated accounts into a local runtime that speaks ``cx_setAccount``."""

    def __init__(
        self,
        rpc_url: str,
        *,
        assets: Sequence[str] = ("SOL", "USDC"),
        seed: int = 7,
        interval_s: float = 0.4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rpc_url = rpc_url
        self.assets = list(assets)
        self.interval_s = interval_s
        self._clock = clock
        # one generator per asset, seeded from the run's seed and the asset's symbol, so an
        # asset's path does not depend on which other assets are published
        self.walks = {a: RandomWalk(WALKS[a], f"{seed}:{a}") for a in assets}
        self._published: dict[str, int] = {}  # asset -> newest publish time written
        self._prev_publish: dict[str, int] = {}  # asset -> the distinct publish time before it
        self._session: aiohttp.ClientSession | None = None
        self._id = 0

    def accounts(self) -> list[PriceAccountRef]:
        return [PriceAccountRef(a, simulated_address(a)) for a in self.assets]

    async def publish_once(self) -> dict[str, OracleQuote]:
        """Step every walk and write the accounts; returns what was written, as quotes."""
        now = int(self._clock())
        slot = await self._rpc([("getSlot", [])])
        written: dict[str, OracleQuote] = {}
        calls = []
        for asset in self.assets:
            price, conf = self.walks[asset].step()
            walk, feed = self.walks[asset], FEEDS[asset]
            if self._published.get(asset) != now:  # Pyth: prev_publish_time < t <= publish_time
                self._prev_publish[asset] = self._published.get(asset, now - 1)
                self._published[asset] = now
            data = encode_price_update_v2(
                feed.feed_id,
                price,
                conf,
                walk.params.expo,
                now,
                self._prev_publish[asset],
                walk.ema_price,
                walk.ema_conf,
                int(slot[0]),
            )
            account = {
                "lamports": rent_exempt_lamports(len(data)),
                "data": [base64.b64encode(data).decode(), "base64"],
                "owner": str(RECEIVER_PROGRAM_ID),
                "executable": False,
            }
            calls.append(("cx_setAccount", [str(simulated_address(asset)), account]))
            written[asset] = OracleQuote(
                asset=asset,
                price=price,
                conf=conf,
                expo=walk.params.expo,
                publish_time=now,
                status=PriceStatus.TRADING,
                source="simulated",
                simulated=True,
                feed_id=feed.feed_hex,
            )
        await self._rpc(calls)
        return written

    async def run(self, *, wait_first: bool = False) -> None:
        """Publish every ``interval_s`` until cancelled; a failed write is logged and retried."""
        if wait_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.publish_once()
            except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
                log.warning("simulated Pyth publisher: write failed: %r", exc)
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _rpc(self, calls: list[tuple[str, list]]) -> list:
        """One JSON-RPC batch; the results in order, or ``RuntimeError`` on any error."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        batch = []
        for method, params in calls:
            self._id += 1
            batch.append({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        async with self._session.post(self.rpc_url, json=batch) as resp:
            resp.raise_for_status()
            replies = await resp.json(content_type=None)
        by_id = {r.get("id"): r for r in replies} if isinstance(replies, list) else {}
        results = []
        for call in batch:
            reply = by_id.get(call["id"])
            if reply is None or "error" in reply:
                raise RuntimeError(f"{call['method']} failed: {reply}")
            results.append(reply.get("result"))
        return results


class SimulatedSource:
    """The default ``OracleSource``: the publisher above, read back through ``OnchainSource``."""

    name = "simulated"
    simulated = True

    def __init__(
        self,
        rpc_url: str,
        *,
        seed: int = 7,
        interval_s: float = 0.4,
        assets: Sequence[str] = ("SOL", "USDC"),
        clock: Callable[[], float] = time.time,
        metrics: OracleMetrics | None = None,
    ) -> None:
        self.publisher = SimulatedPublisher(
            rpc_url, assets=assets, seed=seed, interval_s=interval_s, clock=clock
        )
        self.reader = OnchainSource(
            rpc_url,
            self.publisher.accounts(),
            interval_s=interval_s,
            simulated=True,
            metrics=metrics or default_metrics(),
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Publish once (so the accounts exist before the first read), then keep publishing in
        the background. A runtime without ``cx_setAccount`` fails here, loudly."""
        if self._task is None:
            await self.publisher.publish_once()
            run = self.publisher.run(wait_first=True)
            self._task = asyncio.get_running_loop().create_task(run)

    async def poll(self) -> list[OracleQuote]:
        await self.start()
        return await self.reader.poll()

    async def updates(self) -> AsyncIterator[OracleQuote]:
        await self.start()
        async for quote in self.reader.updates():
            yield quote

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.publisher.aclose()
        await self.reader.aclose()
