"""Seeded demo trading for ``cx serve --demo-traffic``: a provider quoting asks, a buyer
bidding and sometimes lifting them, on a few instruments.

It goes through the same paths as real users: the buyer's USDC arrives as a transfer into
its vault on the local chain (credited by the deposit watcher), orders are commands, fills
reach the ledger, market data and settlement. Only for the embedded runtime, where the
exchange may mint; on a real cluster it trades nothing and says so.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from exchange import commands as C
from exchange.ids import AccountId, InstrumentId, OrderId
from matching.codes import OrderType, Side, TimeInForce
from risk import codes as r
from settlement.chain.local import mint_to
from settlement.chain.netting import VaultRef

if TYPE_CHECKING:
    from gateway.exchange_service import ExchangeService

log = logging.getLogger(__name__)
PROVIDER, BUYER = AccountId(1001), AccountId(1002)
FUNDING = 1_000_000 * 10**6  # 1M USDC in micro-USDC
CAPACITY = 100_000  # GPU-hours per instrument
ORDER_LIFETIME_S = 30
INTERVAL_S = 0.2
INSTRUMENTS = 4


class DemoTraffic:
    def __init__(self, service: ExchangeService, seed: int = 7) -> None:
        self.service = service
        self.rng = random.Random(seed)
        self.next_order_id = time.time_ns() // 1000  # unique across restarts, demo only

    async def run(self) -> None:
        s = self.service
        if s.node is None:
            log.warning("demo traffic needs the embedded Solana runtime; not trading")
            return
        ids = [InstrumentId(i) for i in sorted(s.listings.values())[:INSTRUMENTS]]
        await self._open(ids)
        while not s.stop_event.is_set():
            s.engine.submit(C.rows(self._orders(ids)))
            await asyncio.sleep(INTERVAL_S)

    async def _open(self, ids: list[InstrumentId]) -> None:
        s = self.service
        accounts = s.engine.core.risk.accounts
        if accounts.shape[0] <= BUYER or not accounts[BUYER, r.A_OPEN]:
            s.engine.submit(
                C.rows(
                    [
                        C.OpenAccount(account=PROVIDER, role=r.Role.PROVIDER),
                        C.OpenAccount(account=BUYER, role=r.Role.BUYER),
                    ]
                    + [
                        C.RegisterCapacity(account=PROVIDER, instrument=i, gpu_hours=CAPACITY)
                        for i in ids
                    ]
                )
            )
            await s.chain.open_accounts([PROVIDER, BUYER])
            vault = s.chain.vaults.get(VaultRef.of_account(BUYER)).address
            await mint_to(s.chain.ctx, 0, vault, FUNDING)  # the watcher credits it
            log.info("demo accounts %d (provider) and %d (buyer) opened", PROVIDER, BUYER)

    def _orders(self, ids: list[InstrumentId]) -> list[C.Command]:
        ref = self.service.settings.reference_price
        tick = 1000
        expire = time.time_ns() + ORDER_LIFETIME_S * 10**9
        instrument = self.rng.choice(ids)
        ask = ref + self.rng.randint(1, 20) * tick
        out: list[C.Command] = [
            self._limit(instrument, PROVIDER, Side.SELL, ask, expire),
            self._limit(instrument, BUYER, Side.BUY, ref - self.rng.randint(1, 20) * tick, expire),
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
        qty = self.rng.randint(1, 10)
        return C.SubmitOrder(
            instrument=instrument,
            order_id=self._id(),
            account=account,
            side=side,
            price=price,
            qty=qty,
            tif=TimeInForce.GTD,
            expire_ts=expire,
        )

    def _id(self) -> OrderId:
        self.next_order_id += 1
        return OrderId(self.next_order_id)
