"""Every part of one exchange shard in one process, started and stopped in order.

``ExchangeService.start`` brings up, each real and embedded unless configured:
the engine (recovered from ``var/engine``), Postgres (migrated), the Solana runtime (a child
process: LiteSVM holds the GIL while it executes), Redis; then the projections that follow
the engine's event log from their cursors (ledger, chain settlement, market data), the
oracle feeding prices in as commands, and the clock ticks that drive expiries and cut-offs.

Everything that submits commands runs on this event loop's thread, so the engine keeps
its single writer. A projection that fails is logged and restarted after a pause: each
resumes from its own cursor, so nothing is lost or applied twice.

The service is given its configuration (``ServiceSettings``: the sections of the one
settings tree) and reads nothing else. Other tasks (demo traffic) are added by whoever
composes the process, through ``spawn`` and the small public surface a bot needs
(``submit``, ``fund``, ``instrument_ids``, ``account_open``, ``stop_event``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from exchange import commands as C
from exchange.engine import Engine
from exchange.event_log import EventLog
from exchange.ids import AccountId, AssetId, InstrumentId
from exchange.listing_registry import ListingRegistry
from feeds import redis_conn
from feeds.marketdata.feed import MarketDataFeed, follow
from feeds.marketdata.keys import Keys
from feeds.pyth.feeder import OracleFeeder
from feeds.pyth.service import run_oracle
from gateway.settings import ServiceSettings
from settlement import db
from settlement.chain.config import ChainConfig
from settlement.chain.local import mint_to
from settlement.chain.netting import VaultRef
from settlement.chain.service import ChainSettlement
from settlement.ledger_names import name_instruments
from settlement.localnet import LocalSolanaProcess
from settlement.migrate import migrate
from settlement.projector import LedgerProjector

log = logging.getLogger(__name__)
RESTART_PAUSE_S = 2.0
AUTHORITY_FILE = "settlement-authority.json"  # in the data directory unless configured


class ExchangeService:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.var = settings.engine.data_dir
        self.stop_event = asyncio.Event()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}
        self.started_at = 0.0
        self.node: LocalSolanaProcess | None = None
        self.listings: dict[str, int] = {}
        self._named = 0  # ledger instrument rows that carry their name
        self._readers: list[EventLog] = []  # one per projection, closed at stop

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.var.mkdir(parents=True, exist_ok=True)
        self.engine = Engine.open(s.engine.engine_dir, s.engine.engine_config(s.risk))
        log.info("engine at seq %d (%s)", self.engine.last_seq, self.engine.recovery)
        self.db_url = db.resolve_url(self.var / "pg", s.database.configured_url())
        await db.ensure_database(self.db_url)
        report = await migrate(self.db_url)
        log.info("ledger database %s: migrations %s", db.redact(self.db_url), report)
        self.pool = await db.create_pool(self.db_url)
        self.rpc_url = s.solana.rpc_url
        if not self.rpc_url:
            self.node = LocalSolanaProcess(self.var / "solana")
            self.rpc_url = self.node.start()
        self.redis_url = redis_conn.resolve_url(self.var / "redis", s.redis.configured_url())
        self.list_instruments()

        self.projector = LedgerProjector(self._events(), self.db_url, risk_config=self._risk())
        self.chain = await ChainSettlement.open(
            self.pool,
            submit=self.engine.submit,
            events=self._events(),
            journal_head=lambda: self.engine.journal.head,
            engine_seq=lambda: self.engine.last_seq,
            config=self.chain_config(),
            risk=self._risk(),
            rpc_url=self.rpc_url,
            local=self.node is not None,
        )
        self.redis = Redis.from_url(self.redis_url)
        self.market_events = self._events()
        self.market = MarketDataFeed(self.redis, keys=Keys(prefix=s.gateway.redis_prefix))
        self.oracle = OracleFeeder(self.engine.submit, risk=self._risk())

        self.spawn("ledger", lambda: self.projector.run(self.stop_event))
        self.spawn(
            "chain",
            lambda: self.chain.run(self.stop_event, reconcile_every=s.engine.reconcile_every_s),
        )
        self.spawn(
            "market_data",
            lambda: follow(
                self.market_events, self.market, ts_of=self.market_events.ts_of,
                stop=self.stop_event,
            ),
        )  # fmt: skip
        self.spawn(
            "oracle",
            lambda: run_oracle(
                self.engine.submit,
                risk=self._risk(),
                settings=s.pyth,
                rpc_url=self.rpc_url,
                feeder=self.oracle,
            ),
        )
        self.spawn("clock", self._clock)
        self.started_at = time.monotonic()

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.chain.close()
        with contextlib.suppress(Exception):
            await self.projector.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        with contextlib.suppress(Exception):
            await self.pool.close()
        for reader in self._readers:
            reader.close()
        self.engine.close()
        if self.node is not None:
            self.node.stop()

    # -- the parts -------------------------------------------------------------------------

    def _risk(self):
        return self.engine.config.risk

    def chain_config(self) -> ChainConfig:
        """The ``solana`` section, its authority key in the data directory unless set."""
        config = self.settings.solana
        if config.settlement_authority is None:
            config = config.model_copy(update={"settlement_authority": self.var / AUTHORITY_FILE})
        return config

    def _events(self) -> EventLog:
        reader = EventLog.open(self.engine.events_dir)
        self._readers.append(reader)
        return reader

    def spawn(self, name: str, make: Callable[[], Awaitable[None]]) -> None:
        """Run ``make()`` as a supervised task until stop: restarted after a failure."""

        async def supervised() -> None:
            while not self.stop_event.is_set():
                try:
                    await make()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    log.exception("%s stopped; restarting in %.0f s", name, RESTART_PAUSE_S)
                    await asyncio.sleep(RESTART_PAUSE_S)

        self.tasks[name] = asyncio.create_task(supervised(), name=name)

    async def _clock(self) -> None:
        """Sequenced time: expiries and trading cut-offs happen on these ticks."""
        while not self.stop_event.is_set():
            self.engine.submit(C.rows([C.AdvanceClock()]))
            self.engine.idle()
            await self._name_instruments()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), self.settings.engine.clock_tick_s)

    async def _name_instruments(self) -> None:
        """Give the ledger's instrument rows their names (events carry only the id) once
        the projector has written them; an outage just means a later tick does it."""
        if not self.listings or self._named >= len(self.listings):
            return
        try:
            self._named = await name_instruments(self.pool, self.listings)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("instrument names not recorded yet: %s", exc)

    def list_instruments(self) -> None:
        """List the schedule's windows not listed yet (names kept by ``ListingRegistry``)."""
        self.listings, todo = ListingRegistry.in_dir(self.settings.engine.engine_dir).due(
            self.settings.engine.listing_schedule,
            datetime.now(UTC),
            lambda i: self.engine.instrument_status(InstrumentId(i)) is not None,
            self.settings.engine.reference_price,
        )
        if todo:
            self.engine.submit(C.rows(list(todo)))
            log.info("listed %d instruments", len(todo))

    # -- what a bot trading in this process uses (``bots.demo_traffic.Venue``) -------------

    @property
    def can_fund(self) -> bool:
        return self.node is not None

    def instrument_ids(self) -> list[InstrumentId]:
        return [InstrumentId(i) for i in sorted(self.listings.values())]

    def account_open(self, account: AccountId) -> bool:
        return self.engine.account_open(account)

    def submit(self, commands: Sequence[C.Command]) -> None:
        self.engine.submit(C.rows(list(commands)))

    async def fund(self, account: AccountId, asset: AssetId, amount: int) -> None:
        """Create ``account``'s vaults and mint ``amount`` of ``asset`` into its vault: the
        embedded runtime only (``mint_to`` refuses a real cluster)."""
        await self.chain.open_accounts([account])
        if amount:
            vault = self.chain.vaults.get(VaultRef.of_account(account, asset)).address
            await mint_to(self.chain.ctx, asset, vault, amount)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        seq, head = self.engine.journal.head
        lag = self.projector.lag()
        rec = self.chain.last_reconcile
        return {
            "engine": {
                "last_seq": self.engine.last_seq,
                "journal_head_hash": head.hex(),
                "journal_head_seq": seq,
                "open_orders": self.engine.core.open_orders(),
                "instruments": len(self.listings),
            },
            "ledger": {
                "database": db.redact(self.db_url),
                "cursor": self.projector.stats.cursor,
                "lag_commands": lag.seqs,
                "lag_seconds": round(lag.seconds, 3),
            },
            "chain": {
                "rpc_url": self.rpc_url,
                "embedded": self.node is not None,
                "reconciled": None if rec is None else rec.ok,
                "reconciliation": None if rec is None else rec.to_dict(),
            },
            "market_data": {
                "redis": db.redact(self.redis_url),
                "published_seq": self.market.published,
                "updates_published": self.market.updates_published,
            },
            "oracle": {asset: q.to_wire() for asset, q in sorted(self.oracle.latest.items())},
            "tasks": {
                name: ("running" if not t.done() else "stopped") for name, t in self.tasks.items()
            },
            "restarts": dict(self.restarts),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
        }
