"""Seeded demo trading for ``cx serve --demo-traffic``: a provider quoting asks, a buyer
bidding and sometimes lifting them, on a few instruments.

It goes through the same paths as real users: the buyer's USDC arrives as a transfer into
its vault on the local chain (credited by the deposit watcher), orders are commands, fills
reach the ledger, market data and settlement. It sees the exchange only through ``Venue``
(submit, fund, the instrument ids, a stop event), never the service's internals. Only for
the embedded runtime, where the exchange may mint; on a real cluster it trades nothing and
says so.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from exchange import commands as C
from exchange.ids import AccountId, AssetId, InstrumentId, OrderId
from matching.codes import OrderType, Side, TimeInForce
from risk import codes as r

log = logging.getLogger(__name__)
PROVIDER, BUYER = AccountId(1001), AccountId(1002)
USDC = AssetId(0)
FUNDING = 1_000_000 * 10**6  # 1M USDC in micro-USDC
CAPACITY = 100_000  # GPU-hours per instrument
ORDER_LIFETIME_S = 30
TICK = 1000


class DemoSettings(BaseModel):
    """The ``demo`` section; documented variable ``CX_DEMO_TRAFFIC``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    traffic: bool = False  # a seeded provider and buyer trading, for a live demo
    seed: int = 7
    interval_s: float = Field(default=0.2, gt=0)  # between rounds of orders
    instruments: int = Field(default=4, gt=0)  # how many listed instruments it trades


class Venue(Protocol):
    """What the demo needs of the exchange it trades on."""

    @property
    def stop_event(self) -> asyncio.Event: ...

    @property
    def can_fund(self) -> bool:
        """True where money may come from nowhere (the embedded chain)."""
        ...

    def instrument_ids(self) -> list[InstrumentId]: ...

    def account_open(self, account: AccountId) -> bool: ...

    def submit(self, commands: Sequence[C.Command]) -> None: ...

    async def fund(self, account: AccountId, asset: AssetId, amount: int) -> None:
        """Create the account's vaults on chain and transfer ``amount`` of ``asset`` into
        its vault (0: the vaults only); the deposit watcher credits it."""
        ...


class DemoTraffic:
    def __init__(self, venue: Venue, settings: DemoSettings, *, reference_price: int) -> None:
        self.venue = venue
        self.settings = settings
        self.reference_price = reference_price
        self.rng = random.Random(settings.seed)
        self.next_order_id = time.time_ns() // 1000  # unique across restarts, demo only

    async def run(self) -> None:
        v = self.venue
        if not v.can_fund:
            log.warning("demo traffic needs the embedded Solana runtime; not trading")
            return
        ids = v.instrument_ids()[: self.settings.instruments]
        await self._open(ids)
        while not v.stop_event.is_set():
            v.submit(self._orders(ids))
            await asyncio.sleep(self.settings.interval_s)

    async def _open(self, ids: list[InstrumentId]) -> None:
        v = self.venue
        if v.account_open(BUYER):
            return
        v.submit(
            [
                C.OpenAccount(account=PROVIDER, role=r.Role.PROVIDER),
                C.OpenAccount(account=BUYER, role=r.Role.BUYER),
            ]
            + [C.RegisterCapacity(account=PROVIDER, instrument=i, gpu_hours=CAPACITY) for i in ids]
        )
        await v.fund(PROVIDER, USDC, 0)
        await v.fund(BUYER, USDC, FUNDING)
        log.info("demo accounts %d (provider) and %d (buyer) opened", PROVIDER, BUYER)

    def _orders(self, ids: list[InstrumentId]) -> list[C.Command]:
        ref = self.reference_price
        expire = time.time_ns() + ORDER_LIFETIME_S * 10**9
        instrument = self.rng.choice(ids)
        ask = ref + self.rng.randint(1, 20) * TICK
        out: list[C.Command] = [
            self._limit(instrument, PROVIDER, Side.SELL, ask, expire),
            self._limit(instrument, BUYER, Side.BUY, ref - self.rng.randint(1, 20) * TICK, expire),
        ]
        if self.rng.random() < 0.3:  # the buyer lifts the offer it sees
            out.append(
                C.SubmitOrder(
                    instrument=instrument,
                    order_id=self._id(),
                    account=BUYER,
                    side=Side.BUY,
                    price=ask,
                    qty=self.rng.randint(1, 3),
                    order_type=OrderType.LIMIT,
                    tif=TimeInForce.IOC,
                )
            )
        return out

    def _limit(
        self, instrument: InstrumentId, account: AccountId, side: Side, price: int, expire: int
    ) -> C.SubmitOrder:
        return C.SubmitOrder(
            instrument=instrument,
            order_id=self._id(),
            account=account,
            side=side,
            price=price,
            qty=self.rng.randint(1, 10),
            tif=TimeInForce.GTD,
            expire_ts=expire,
        )

    def _id(self) -> OrderId:
        self.next_order_id += 1
        return OrderId(self.next_order_id)
