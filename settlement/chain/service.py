"""Chain settlement as one service: what the server starts, what tests and tools open.

``ChainSettlement.open`` connects the parts (RPC, authority, mints, vaults, the sender, the
deposit watcher, withdrawals, the settler) over one Postgres pool, recovers whatever a
crash left half done, and ``step``/``run`` then drive them: deposits seen are credited,
new fills are cut into batches, every open transaction moves one step, failed withdrawals
are released, and reconciliation runs every ``reconcile_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from solana.rpc.commitment import Commitment

from risk.config import RiskConfig
from settlement.chain.batches import CutBatch, JournalHead, Settler, read_cursor
from settlement.chain.config import ChainConfig
from settlement.chain.context import ChainContext, bootstrap, top_up
from settlement.chain.deposits import Credit, DepositWatcher
from settlement.chain.engine_io import EngineSeq, EventSource, Submit
from settlement.chain.errors import ChainError, ChainErrorCode, ChainUnavailable
from settlement.chain.keys import load_authority
from settlement.chain.reconcile import ReconcileReport, reconcile
from settlement.chain.rpc import Backoff, ChainRpc
from settlement.chain.sender import PumpStats, Sender
from settlement.chain.vaults import Vaults
from settlement.chain.withdrawals import Withdrawals

log = logging.getLogger(__name__)

WORKER_LOCK = 0x43585F434841494E  # "CX_CHAIN": the settlement worker's advisory lock
# A database or node that is away: waited out by ``run``.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


@dataclass
class StepReport:
    credits: list[Credit] = field(default_factory=list)
    batches: list[CutBatch] = field(default_factory=list)
    pump: PumpStats = field(default_factory=PumpStats)
    released: list[int] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """Whether anything moved (the loop then steps again at once, without sleeping)."""
        p = self.pump
        return bool(self.credits or self.batches or self.released or p.signed or p.confirmed
                    or p.failed or p.expired)  # fmt: skip


class ChainSettlement:
    config: ChainConfig
    pool: asyncpg.Pool
    rpc: ChainRpc
    ctx: ChainContext
    vaults: Vaults
    sender: Sender
    deposits: DepositWatcher
    withdrawals: Withdrawals
    settler: Settler
    events: EventSource
    engine_seq: EngineSeq | None
    last_reconcile: ReconcileReport | None
    _lock: asyncpg.pool.PoolConnectionProxy | None
    _next_deposit_poll: float

    def __init__(self) -> None:
        raise TypeError("use await ChainSettlement.open(...)")

    @classmethod
    async def open(
        cls,
        pool: asyncpg.Pool,
        *,
        submit: Submit,
        events: EventSource,
        journal_head: JournalHead,
        engine_seq: EngineSeq | None = None,
        config: ChainConfig | None = None,
        risk: RiskConfig | None = None,
        rpc_url: str | None = None,
        local: bool = False,
    ) -> ChainSettlement:
        """``rpc_url`` (else ``config.rpc_url``) is the node; ``local`` says it is the
        embedded runtime (the exchange may then create its key, fund it and mint).
        ``engine_seq`` (``lambda: engine.last_seq``) lets recovery wait until the event log
        has caught up with the engine before it concludes a command was never journaled;
        give it whenever the engine runs in this process."""
        self = object.__new__(cls)
        self.config = config = config or ChainConfig()
        url = rpc_url or config.rpc_url
        if url is None:
            raise ValueError("no Solana RPC URL: set CX_SOLANA_RPC_URL or start the local runtime")
        self.pool = pool
        self.rpc = ChainRpc(
            url,
            commitment=Commitment(config.commitment),
            timeout=config.rpc_timeout_s,
            backoff=Backoff(retry_for=config.rpc_retry_for_s),
        )
        self._lock = None
        try:
            await self._take_lock()
            authority = load_authority(config.authority_path(), create=local)
            self.ctx = await bootstrap(
                pool, self.rpc, authority, config, risk or RiskConfig(), local=local
            )
            self.vaults = Vaults(pool, self.ctx)
            await self.vaults.load()
            await self.vaults.ensure()
            self.sender = Sender(pool, self.ctx, resend_interval=config.resend_interval_s)
            self.deposits = DepositWatcher(pool, self.ctx, submit, events, engine_seq)
            self.withdrawals = Withdrawals(pool, self.ctx, self.vaults, submit, events, engine_seq)
            self.settler = Settler(
                pool,
                self.ctx,
                self.vaults,
                self.sender,
                events,
                journal_head,
                max_rows=config.batch_max_rows,
            )
            self.events = events
            self.engine_seq = engine_seq
            self.last_reconcile = None
            self._next_deposit_poll = 0.0
            await self.deposits.recover()
            await self.withdrawals.recover()
        except BaseException:
            await self.close()
            raise
        return self

    async def _take_lock(self) -> None:
        """One settlement worker per database: its invariants (one sender, the deposit
        watcher's view of what is in flight) assume it. Held until ``close``."""
        conn = await self.pool.acquire()
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", WORKER_LOCK):
            await self.pool.release(conn)
            raise ChainError(
                ChainErrorCode.WORKER_RUNNING,
                "another chain settlement worker is running on this database",
            )
        self._lock = conn

    async def open_accounts(self, accounts: Iterable[int]) -> None:
        """Create the vaults of newly opened exchange accounts (idempotent)."""
        await self.vaults.ensure(accounts)

    async def step(self) -> StepReport:
        """One round of everything; errors propagate (``run`` retries the transient ones)."""
        report = StepReport()
        now = time.monotonic()
        if now >= self._next_deposit_poll:  # reads every vault: not on every step
            report.credits = await self.deposits.poll()
            self._next_deposit_poll = now + self.config.deposit_poll_s
        report.batches, report.pump = await self.settler.step()
        if report.pump.failed:
            report.released = await self.withdrawals.release_failed()
        return report

    async def settle(self, *, timeout: float = 60.0) -> None:
        """Step until every fill the engine has made so far is settled and nothing is in
        flight (tests, tools, a shutdown)."""
        target = self.engine_seq() if self.engine_seq else self.events.last_seq
        deadline = time.monotonic() + timeout
        while True:
            report = await self.step()
            done = (
                await self.settler_cursor() >= target
                and report.pump.open == 0
                and not report.pump.signed
            )
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"settlement not done after {timeout} s: {report.pump}")
            if not report.busy:
                await asyncio.sleep(min(0.05, self.config.poll_interval_s))

    async def settler_cursor(self) -> int:
        return await read_cursor(self.pool)

    async def reconcile(self) -> ReconcileReport:
        self.last_reconcile = await reconcile(self.pool, self.rpc, self.events)
        return self.last_reconcile

    async def run(self, stop: asyncio.Event, *, reconcile_every: float = 60.0) -> None:
        """The server's loop: steps until ``stop``. An unreachable node or database is
        waited out with capped exponential backoff; all state is in Postgres, so the next
        step carries on where the failed one stopped."""
        next_reconcile = time.monotonic()
        failures = 0
        while not stop.is_set():
            try:
                report = await self.step()
                if time.monotonic() >= next_reconcile:
                    await self.reconcile()
                    next_reconcile = time.monotonic() + reconcile_every
                    if self.ctx.local:
                        await top_up(
                            self.rpc, self.ctx.authority_key, self.config.local_airdrop_lamports
                        )
                failures = 0
            except (ChainUnavailable, *TRANSIENT) as exc:  # type: ignore[misc]
                delay = min(5.0, 0.1 * 2**failures)
                failures += 1
                log.warning("chain settlement paused (%s); retry in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            if not report.busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_interval_s)

    async def close(self) -> None:
        await self.rpc.close()
        conn, self._lock = self._lock, None
        if conn is not None:
            try:
                await conn.execute("SELECT pg_advisory_unlock($1)", WORKER_LOCK)
                await self.pool.release(conn)
            except (*TRANSIENT, asyncpg.InterfaceError):
                conn.terminate()  # the server drops the lock with the session

    async def __aenter__(self) -> ChainSettlement:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
