"""The ledger projector: the engine's events -> Postgres, exactly once, in bulk.

Each step locks the projector's row in ``projection_cursors``, reads the events after that
cursor from the source (whole commands), writes their ledger rows and moves the cursor, all
in one transaction: a crash anywhere before the commit leaves nothing, a crash after it
leaves the whole batch with the cursor past it. A redelivered batch (rows at or before the
cursor) is dropped by the same check, and two projectors on one cursor take turns.

If Postgres is down or the connection breaks, trading goes on (the engine never waits for
the projector); the projector reconnects with capped exponential backoff and catches up
from its cursor. Any other error (a constraint violation, a malformed stream) is raised:
skipping a batch would break the ledger, so the projector stops instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import numpy as np

from matching import codes as mc
from risk.codes import FEE_ACCOUNT, Role
from risk.config import RiskConfig
from settlement.db import redact
from settlement.ledger import LedgerBatch, map_events
from settlement.ledger_writer import BulkWriter, LedgerWriter

log = logging.getLogger(__name__)

DEFAULT_NAME = "ledger"
DEFAULT_MAX_ROWS = 65_536
_PREPARE_LOCK = 0x43585F4C45444752  # "CX_LEDGR": projectors starting together take turns

# Errors that mean "Postgres is not there right now", retried with backoff.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is one)
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08, and a connection closed mid-operation
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
)


class EventSource(Protocol):
    """What the projector reads: ``exchange.event_log.EventLog`` or anything with its
    ``read_after`` (whole commands after ``seq``, in order). A ``last_seq`` attribute, when
    the source has one, gives the lag and lets the cursor pass commands without events.
    ``read_after`` is called from a worker thread, one call at a time."""

    def read_after(self, seq: int, max_rows: int = ...) -> np.ndarray: ...


class ProjectionError(RuntimeError):
    """The ledger cannot follow the source (never retried: an operator must look)."""


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: initial * factor**attempt, at most cap."""

    initial: float = 0.05
    factor: float = 2.0
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.initial * self.factor ** min(attempt, 64))


@dataclass(frozen=True)
class Lag:
    seqs: int  # commands the engine has sequenced that the ledger does not hold yet
    seconds: float  # since the oldest of them was first seen (0 when caught up)


@dataclass
class ProjectorStats:
    cursor: int = 0
    batches: int = 0
    events: int = 0
    fills: int = 0
    rows: int = 0
    retries: int = 0
    last_error: str = ""
    busy_seconds: float = 0.0  # inside committed steps (read, map, write, commit)


CommitHook = Callable[[LedgerBatch, float], None]  # (batch, perf_counter at commit)


@dataclass(frozen=True)
class _Work:
    after: int  # the cursor it was read after
    batch: LedgerBatch | None  # None: nothing after it
    prepared: Any  # the writer's form of the batch
    exhausted: bool  # the source said it had nothing more


@dataclass
class _Pending:
    """When each engine seq beyond the cursor was first seen: the lag in seconds."""

    seen: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def observe(self, engine_seq: int, cursor: int, now: float) -> None:
        if engine_seq > cursor and (not self.seen or engine_seq > self.seen[-1][1]):
            self.seen.append((now, engine_seq))

    def applied(self, cursor: int) -> None:
        while self.seen and self.seen[0][1] <= cursor:
            self.seen.popleft()

    def seconds(self, now: float) -> float:
        return now - self.seen[0][0] if self.seen else 0.0


class LedgerProjector:
    """Follows one event source into one database under one cursor name (``name``).

    ``step`` applies one batch; ``run`` loops (with retries) until stopped; ``catch_up``
    runs until nothing is left. ``stats`` counts what was applied, ``lag()`` how far behind
    the engine the ledger is.
    """

    def __init__(
        self,
        source: EventSource,
        url: str,
        *,
        name: str = DEFAULT_NAME,
        writer: LedgerWriter | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        backoff: Backoff = Backoff(),  # frozen: a shared default is safe
        poll_interval: float = 0.005,
        risk_config: RiskConfig | None = None,
        on_commit: CommitHook | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.source = source
        self.url = url
        self.name = name
        self.writer = writer or BulkWriter()
        self.max_rows = max_rows
        self.backoff = backoff
        self.poll_interval = poll_interval
        self.risk_config = risk_config or RiskConfig()
        self.on_commit = on_commit
        self.connect_timeout = connect_timeout
        self.stats = ProjectorStats()
        self._conn: asyncpg.Connection | None = None
        self._pending = _Pending()
        self._ahead: asyncio.Future[_Work] | None = None

    @property
    def application_name(self) -> str:
        """How the projector's connection shows in ``pg_stat_activity``."""
        return f"cx-projector:{self.name}"[:63]

    # -- lag -------------------------------------------------------------------------------

    def engine_seq(self) -> int | None:
        last = getattr(self.source, "last_seq", None)
        return None if last is None else int(last)

    def lag(self) -> Lag:
        """How far the ledger is behind the engine (needs a source with ``last_seq``)."""
        now = time.monotonic()
        engine = self.engine_seq()
        if engine is not None:
            self._pending.observe(engine, self.stats.cursor, now)
        seqs = max(0, (engine or self.stats.cursor) - self.stats.cursor)
        return Lag(seqs, self._pending.seconds(now) if seqs else 0.0)

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> int:
        """Connect now (instead of on the first step); returns the cursor read from Postgres.
        Raises if Postgres is unreachable: a server can fail fast at start."""
        await self._connection()
        return self.stats.cursor

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await asyncpg.connect(
            self.url,
            timeout=self.connect_timeout,
            server_settings={
                "application_name": self.application_name,
                # the balance check's transition table and aggregate stay in memory
                "work_mem": "64MB",
            },
        )
        try:
            await self._prepare(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        log.info("ledger projector %r connected to %s", self.name, redact(self.url))
        return conn

    async def _prepare(self, conn: asyncpg.Connection) -> None:
        """The rows the event stream does not carry: assets, the fee account, the cursor."""
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PREPARE_LOCK)
            await conn.executemany(
                "INSERT INTO assets (asset_id, symbol, decimals) VALUES ($1, $2, $3) "
                "ON CONFLICT (asset_id) DO UPDATE SET symbol = EXCLUDED.symbol, "
                "decimals = EXCLUDED.decimals",
                [(i, a.symbol, a.decimals) for i, a in enumerate(self.risk_config.assets)],
            )
            await conn.execute(
                "INSERT INTO accounts (account_id, role, opened_seq) VALUES ($1, $2, 0) "
                "ON CONFLICT (account_id) DO NOTHING",
                FEE_ACCOUNT,
                int(Role.OPERATOR),
            )
            await conn.execute(
                "INSERT INTO projection_cursors (name, last_seq) VALUES ($1, 0) "
                "ON CONFLICT (name) DO NOTHING",
                self.name,
            )
            self.stats.cursor = int(
                await conn.fetchval(
                    "SELECT last_seq FROM projection_cursors WHERE name = $1", self.name
                )
            )

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()  # never waits: the server rolls back what was open
            self._conn = None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=2.0)
            except (TimeoutError, *TRANSIENT, asyncpg.InterfaceError):
                conn.terminate()

    # -- one step --------------------------------------------------------------------------

    async def step(self) -> int:
        """Apply the next batch after the cursor, if any; returns the events applied.

        Errors propagate (transient ones too): ``run`` is the loop that retries. While
        Postgres writes a batch, the next one is read, mapped and encoded in a worker thread.
        """
        started = time.perf_counter()
        engine = self.engine_seq()
        if engine is not None:
            self._pending.observe(engine, self.stats.cursor, time.monotonic())
            if engine == self.stats.cursor and self._conn is not None:
                return 0  # nothing new: no round trip to Postgres
        conn = await self._connection()  # (re)loads the cursor
        if engine is not None and engine < self.stats.cursor:
            raise ProjectionError(
                f"ledger cursor {self.name!r} is at seq {self.stats.cursor}, past the source's "
                f"last seq {engine}: the ledger holds commands the journal no longer has"
            )
        work = await self._work_after(self.stats.cursor)
        if work.batch is None and (engine is None or not work.exhausted):
            return 0
        async with conn.transaction():
            cursor = int(
                await conn.fetchval(
                    "SELECT last_seq FROM projection_cursors WHERE name = $1 FOR UPDATE",
                    self.name,
                )
            )
            if cursor != work.after:  # another projector moved it, or a lost ack
                self.stats.cursor = cursor
                work = await asyncio.to_thread(self._work, cursor)
            batch = work.batch
            if batch is None:
                if engine is None or engine <= cursor or not work.exhausted:
                    return 0
                # Every command up to ``engine`` is in the source (it was read after
                # last_seq) and made no event (a clock tick): the cursor passes them.
                await self._move_cursor(conn, engine)
            else:
                self._ahead = asyncio.ensure_future(asyncio.to_thread(self._work, batch.last_seq))
                self._ahead.add_done_callback(_retrieved)  # used or dropped, never "unretrieved"
                await self.writer.write(conn, work.prepared)
                await self._move_cursor(conn, batch.last_seq)
        if batch is None:
            self.stats.cursor = int(engine or 0)
            self._pending.applied(self.stats.cursor)
            return 0
        committed = time.perf_counter()
        self.stats.cursor = batch.last_seq
        self.stats.batches += 1
        self.stats.events += batch.events
        self.stats.fills += batch.fills
        self.stats.rows += batch.rows_written()
        self.stats.busy_seconds += committed - started
        self._pending.applied(batch.last_seq)
        if self.on_commit is not None:
            self.on_commit(batch, committed)
        return batch.events

    async def _work_after(self, cursor: int) -> _Work:
        """The batch after ``cursor``: the one prepared ahead if it is that one."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            work = await ahead
            if work.after == cursor and work.batch is not None:
                return work
        return await asyncio.to_thread(self._work, cursor)

    def _work(self, cursor: int) -> _Work:
        """Read, map and encode the batch after ``cursor`` (CPU only: runs in a thread)."""
        rows, exhausted = self._read(cursor)
        if len(rows) == 0:
            return _Work(cursor, None, None, exhausted)
        batch = map_events(rows)
        return _Work(cursor, batch, self.writer.prepare(batch), exhausted)

    async def _move_cursor(self, conn: asyncpg.Connection, seq: int) -> None:
        await conn.execute(
            "UPDATE projection_cursors SET last_seq = $2, updated_at = now() WHERE name = $1",
            self.name,
            seq,
        )

    def _read(self, cursor: int) -> tuple[np.ndarray, bool]:
        """The source's rows after ``cursor``, and whether the source said it had none.

        Rows it redelivers (at or before the cursor) are dropped; if a read held nothing
        else, the source is asked again after what it sent, as long as that moves on.
        """
        after = cursor
        while True:
            try:
                rows = self.source.read_after(after, self.max_rows)
            except OSError as exc:  # not Postgres: must not be retried as if it were
                raise ProjectionError(f"event source unreadable: {exc}") from exc
            if len(rows) == 0:
                return rows, True
            last = int(rows[-1, mc.E_SEQ])
            if last > cursor:
                return rows[rows[:, mc.E_SEQ] > cursor], False
            if last <= after:
                return rows[:0], False
            after = last

    # -- the loop ----------------------------------------------------------------------------

    async def run(
        self, stop: asyncio.Event | None = None, *, until_caught_up: bool = False
    ) -> None:
        """Follow the source until ``stop`` is set (or, with ``until_caught_up``, until a
        step finds nothing new). Postgres being away is retried; anything else is raised."""
        stop = stop or asyncio.Event()
        task = asyncio.current_task()
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    applied = await self.step()
                except (*TRANSIENT, asyncpg.InterfaceError) as exc:
                    if task is not None and task.cancelling():
                        # a cancelled query can surface as "connection closed": still a cancel
                        raise asyncio.CancelledError from exc
                    if isinstance(exc, asyncpg.InterfaceError) and not self._conn_closed():
                        raise  # misuse, not Postgres going away
                    self._on_transient(exc, attempt)
                    await _sleep(self.backoff.delay(attempt), stop)
                    attempt += 1
                    continue
                attempt = 0
                if applied == 0:
                    if until_caught_up:
                        return
                    await _sleep(self.poll_interval, stop)
        finally:
            if task is not None and task.cancelling():
                self._drop_connection()  # no awaiting in a cancelled task
            else:
                await self.close()

    def _conn_closed(self) -> bool:
        return self._conn is None or self._conn.is_closed()

    async def catch_up(self) -> ProjectorStats:
        """Apply everything the source holds now (retrying while Postgres is away)."""
        await self.run(until_caught_up=True)
        return self.stats

    def _on_transient(self, exc: BaseException, attempt: int) -> None:
        self._drop_connection()
        self.stats.retries += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        log.warning(
            "ledger projector %r: Postgres unavailable (%s); retry %d in %.2f s",
            self.name,
            self.stats.last_error,
            attempt + 1,
            self.backoff.delay(attempt),
        )


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
