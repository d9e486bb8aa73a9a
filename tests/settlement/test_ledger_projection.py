"""The ledger projector against a real engine's event log and a real Postgres.

One engine flow (``ledger_flow``) is projected without interruption into the module's
database: that ledger must hold exactly the money the engine holds. Every other run
(crashed, killed, redelivered, with Postgres away, row by row) must end with the very same
rows.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import asyncpg
import ledger_db
import ledger_flow
import numpy as np
import pytest
from ledger_flow import BUYER, SCRIPTED, TINY, EngineMoney
from tcp_proxy import PostgresProxy

from exchange import commands as C
from exchange.codes import EventKind
from exchange.engine import Engine
from exchange.event_log import EventLog
from exchange.events import Deposited, Withdrawn, decode
from matching import codes as mc
from settlement.ledger import LedgerBatch, LedgerKind
from settlement.ledger_writer import BulkWriter, LedgerWriteError, RowWriter
from settlement.projector import Backoff, LedgerProjector, ProjectionError

BATCH_ROWS = 700  # small batches: the flow is projected in a few dozen transactions
FAST_RETRY = Backoff(initial=0.01, factor=2.0, cap=0.1)


def _run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def reference(pg_url: str, ledger_run: tuple[Path, EngineMoney]) -> dict[str, list[tuple]]:
    """The flow projected in one uninterrupted run: every other run must end equal."""
    events_dir, _ = ledger_run

    async def project() -> dict[str, list[tuple]]:
        with EventLog.open(events_dir) as log:
            await LedgerProjector(log, pg_url, max_rows=BATCH_ROWS).catch_up()
        return await ledger_db.dump(pg_url)

    return _run(project())


async def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.005)


# -- what the ledger holds ----------------------------------------------------------------------


async def test_ledger_holds_the_engines_own_money(
    pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    _, engine = ledger_run
    ledger = await ledger_db.money(pg_url)
    assert ledger["balances"] == engine.balances  # fee account 0 included
    assert ledger["escrow"] == engine.escrow
    assert ledger["receivable"] == engine.receivable
    assert ledger["resting"] == engine.resting  # open orders: price, qty and leaves as booked
    assert len(reference["trades"]) == engine.fills > 1000
    assert reference["projection_cursors"] == [("ledger", engine.last_seq)]
    # the ledger balance of each deposit/withdrawal equals the engine's balance after it
    conn = await asyncpg.connect(pg_url)
    try:
        running = await conn.fetch(
            """
            SELECT t.balance_after, sum(e.amount) AS ledger_after
            FROM (SELECT seq, account_id, asset_id, balance_after FROM deposits
                  UNION ALL SELECT seq, account_id, asset_id, balance_after FROM withdrawals) t
            JOIN ledger_entries e ON e.ledger_kind = 1 AND e.account_id = t.account_id
                 AND e.asset_id = t.asset_id AND e.seq <= t.seq
            GROUP BY t.seq, t.balance_after
            """
        )
        refs = {r["ref"] for r in await conn.fetch("SELECT ref FROM deposits")}
        withdrawn = await conn.fetch("SELECT account_id, asset_id, amount, ref FROM withdrawals")
    finally:
        await conn.close()
    assert running and all(r["balance_after"] == r["ledger_after"] for r in running)
    assert {7001, 7002, 7003, 7004} <= refs
    assert {(r["account_id"], r["asset_id"], r["amount"], r["ref"]) for r in withdrawn} == {
        (BUYER, 0, 1_000_000, 8001),
        (BUYER, 1, 10**9, 8002),
        (5, 0, 10**9, 8004),
    }  # 8003 was refused by the engine: no row, no entry


async def test_every_movement_balances_in_every_asset(pg_url: str, reference: dict) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT movement_id, asset_id FROM ledger_entries "
            "GROUP BY 1, 2 HAVING sum(amount) <> 0) m"
        )
        per_asset = dict(
            await conn.fetch("SELECT asset_id, sum(amount) FROM ledger_entries GROUP BY 1")
        )
        balances_total = dict(
            await conn.fetch("SELECT asset_id, sum(amount) FROM balances GROUP BY 1")
        )
        drift = await conn.fetchval(
            """
            SELECT count(*) FROM balances b FULL JOIN (
                SELECT ledger_kind, account_id, instrument_id, asset_id, sum(amount) AS total
                FROM ledger_entries GROUP BY 1, 2, 3, 4) e
            USING (ledger_kind, account_id, instrument_id, asset_id)
            WHERE b.amount IS DISTINCT FROM e.total
            """
        )
        tiny = await conn.fetch(
            "SELECT e.* FROM ledger_entries e JOIN trades t ON t.movement_id = e.movement_id "
            "WHERE t.instrument_id = $1 ORDER BY leg",
            TINY,
        )
    finally:
        await conn.close()
    assert unbalanced == 0
    assert per_asset == {0: 0, 1: 0}  # USDC and SOL
    assert balances_total == {0: 0, 1: 0}
    assert drift == 0  # the balances table is the sum of the entries
    # a 100 micro-USDC trade pays no fee: two legs, buyer out, seller's escrow in
    assert [(r["ledger_kind"], r["account_id"], r["amount"]) for r in tiny] == [
        (LedgerKind.BALANCE, BUYER, -100),
        (LedgerKind.ESCROW, 21, 100),
    ]


async def test_a_fill_moves_notional_and_fees_as_risk_books_them(
    pg_url: str, reference: dict
) -> None:
    """Order 1000006 (replaced to 2.001, 12 lots) sold 4 to an IOC buy: buyer pays notional +
    taker fee, the seller's escrow gets notional - maker fee (a rebate), the fee account both."""
    conn = await asyncpg.connect(pg_url)
    try:
        trade = await conn.fetchrow("SELECT * FROM trades WHERE sell_order_id = $1", SCRIPTED + 6)
        legs = await conn.fetch(
            "SELECT ledger_kind, account_id, instrument_id, amount FROM ledger_entries "
            "WHERE movement_id = $1 ORDER BY leg",
            trade["movement_id"],
        )
        order = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", SCRIPTED + 6)
    finally:
        await conn.close()
    notional = 2_001_000 * 4
    taker_fee, maker_fee = notional * 10 // 10_000, -(notional * 2 // 10_000)
    assert (trade["price"], trade["qty"], trade["taker_side"]) == (2_001_000, 4, 1)
    assert (trade["buy_fee"], trade["sell_fee"]) == (taker_fee, maker_fee)
    assert [tuple(r) for r in legs] == [
        (LedgerKind.BALANCE, 2, 0, -(notional + taker_fee)),
        (LedgerKind.ESCROW, 24, 12, notional - maker_fee),
        (LedgerKind.BALANCE, 0, 0, taker_fee + maker_fee),
    ]
    assert (order["price"], order["qty"], order["filled"], order["leaves"], order["status"]) == (
        2_001_000,
        12,
        4,
        8,
        2,
    )


async def test_order_lifecycles(pg_url: str, reference: dict) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch(
            "SELECT o.order_id, s.name, o.qty, o.leaves, o.filled FROM orders o "
            "JOIN order_statuses s USING (status) WHERE order_id >= $1 "
            "ORDER BY order_id, accepted_seq",
            SCRIPTED,
        )
    finally:
        await conn.close()
    s = SCRIPTED
    assert [tuple(r) for r in rows] == [
        (s + 1, "filled", 1, 0, 1),
        (s + 2, "filled", 1, 0, 1),
        (s + 3, "expired", 5, 0, 0),  # GTD, expired by the clock
        (s + 4, "filled", 3, 0, 3),  # filled ...
        (s + 4, "open", 2, 2, 0),  # ... then the id came back for a new order
        (s + 5, "filled", 3, 0, 3),
        (s + 6, "partially_filled", 12, 8, 4),
        (s + 7, "filled", 4, 0, 4),
        (s + 8, "open", 6, 6, 0),  # self-trade decrement took 4 off
        (s + 9, "cancelled", 4, 0, 0),
    ]


# -- same ledger whatever happens on the way ------------------------------------------------------


async def test_row_at_a_time_writer_leaves_the_same_ledger(
    fresh_pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    with EventLog.open(ledger_run[0]) as log:
        projector = LedgerProjector(log, fresh_pg_url, writer=RowWriter(), max_rows=2_000)
        await projector.catch_up()
    assert await ledger_db.dump(fresh_pg_url) == reference


class PausingWriter:
    """The bulk writer, holding its transaction open after the n-th batch's rows are
    written and before the cursor moves, until released (fault injection)."""

    name = "copy"

    def __init__(self, pause_at: int) -> None:
        self.inner = BulkWriter()
        self.calls = 0
        self.pause_at = pause_at
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    def prepare(self, batch: LedgerBatch) -> object:
        return self.inner.prepare(batch)

    async def write(self, conn: asyncpg.Connection, prepared: object) -> None:
        await self.inner.write(conn, prepared)
        self.calls += 1
        if self.calls == self.pause_at:
            self.paused.set()
            await self.release.wait()


async def test_killed_projector_resumes_to_the_same_ledger(
    fresh_pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    """The projector task is cancelled, then started again, over and over: once while it
    holds a batch's rows uncommitted, then at random moments 0-20 ms after it connects.
    Every fourth restart is cancelled only once the cursor has moved, so the run reaches the
    end on a machine too slow to commit anything within 20 ms. Nothing is applied
    twice, nothing is skipped."""
    events_dir, engine = ledger_run
    rng = random.Random(5)
    cursors = []
    restarts = 0
    async with asyncio.timeout(240):  # a few dozen batches: a bound far above a slow run
        with EventLog.open(events_dir) as log:
            writer = PausingWriter(pause_at=2)
            projector = LedgerProjector(log, fresh_pg_url, writer=writer, max_rows=500)
            task = asyncio.create_task(projector.run())
            await asyncio.wait_for(writer.paused.wait(), 60)
            assert projector._conn is not None and projector._conn.is_in_transaction()
            task.cancel()  # the second batch's rows are written, its cursor not yet moved
            with pytest.raises(asyncio.CancelledError):
                await task
            cursors.append(projector.stats.cursor)
            while cursors[-1] < engine.last_seq:
                restarts += 1
                projector = LedgerProjector(log, fresh_pg_url, max_rows=500)
                task = asyncio.create_task(projector.run())
                if restarts % 4 == 0:  # progress, however slow the machine: a cursor move
                    await _wait_for(
                        lambda p=projector, t=task, c=cursors[-1]: p.stats.cursor > c or t.done(),
                        timeout=60,
                    )
                else:
                    await _wait_for(
                        lambda p=projector, t=task: p._conn is not None or t.done(), timeout=60
                    )
                    await asyncio.sleep(rng.uniform(0.0, 0.02))
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                cursors.append(projector.stats.cursor)
    assert len(set(cursors)) > 5  # it was stopped at many places
    assert await ledger_db.dump(fresh_pg_url) == reference


async def test_connection_killed_between_rows_and_cursor(
    fresh_pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    """The server drops the projector's connection after a batch's rows are written but
    before its cursor moves: the batch is rolled back and applied again, once."""
    events_dir, engine = ledger_run
    writer = PausingWriter(pause_at=4)
    with EventLog.open(events_dir) as log:
        projector = LedgerProjector(
            log, fresh_pg_url, writer=writer, max_rows=BATCH_ROWS, backoff=FAST_RETRY
        )
        task = asyncio.create_task(projector.catch_up())
        await asyncio.wait_for(writer.paused.wait(), 60)
        admin = await asyncpg.connect(fresh_pg_url)
        try:
            held = await admin.fetchval("SELECT last_seq FROM projection_cursors")
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                projector.application_name,
            )
        finally:
            await admin.close()
        writer.release.set()
        await asyncio.wait_for(task, 30)
    assert killed == 1 and 0 < held < engine.last_seq
    assert projector.stats.retries >= 1
    assert await ledger_db.dump(fresh_pg_url) == reference


class Redelivering:
    """A source that sends the last ``back`` commands before the cursor again with each
    batch, as a transport that lost its acknowledgements would."""

    def __init__(self, log: EventLog, back: int) -> None:
        self.log, self.back = log, back

    @property
    def last_seq(self) -> int:
        return self.log.last_seq

    def read_after(self, seq: int, max_rows: int = 65_536) -> np.ndarray:
        old = self.log.read_after(max(0, seq - self.back), 1 << 30)
        old = old[old[:, mc.E_SEQ] <= seq]
        return np.concatenate([old, self.log.read_after(seq, max_rows)])


async def test_redelivered_batches_and_a_second_projector_apply_once(
    fresh_pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    with EventLog.open(ledger_run[0]) as log:
        source = Redelivering(log, back=150)
        a = LedgerProjector(source, fresh_pg_url, max_rows=400)
        b = LedgerProjector(source, fresh_pg_url, max_rows=250)  # same cursor name
        await asyncio.gather(a.catch_up(), b.catch_up())
    assert a.stats.batches > 0 and b.stats.batches > 0  # both took turns
    assert await ledger_db.dump(fresh_pg_url) == reference


async def test_postgres_away_then_back_nothing_lost(
    fresh_pg_url: str, reference: dict, ledger_run: tuple[Path, EngineMoney]
) -> None:
    """Postgres refuses connections at first, comes back, then drops every connection in
    the middle of the run: the projector retries with backoff and catches up."""
    events_dir, engine = ledger_run
    proxy = PostgresProxy(fresh_pg_url)
    commits = 0

    def on_commit(batch: LedgerBatch, _at: float) -> None:
        nonlocal commits
        commits += 1
        if commits == 3:
            proxy.drop_connections()  # the next statement finds the connection gone

    with EventLog.open(events_dir) as log:
        projector = LedgerProjector(
            log, proxy.url, max_rows=BATCH_ROWS, backoff=FAST_RETRY, on_commit=on_commit
        )
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        try:
            await _wait_for(lambda: projector.stats.retries >= 3, timeout=60)
            away = projector.lag()
            await proxy.start()
            await _wait_for(lambda: projector.stats.cursor == engine.last_seq, timeout=120)
            caught_up = projector.lag()
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            task.cancel()  # a no-op once it has stopped
            await asyncio.gather(task, return_exceptions=True)
            await proxy.stop()
    assert away.seqs == engine.last_seq and away.seconds > 0
    assert caught_up.seqs == 0 and caught_up.seconds == 0
    assert projector.stats.retries >= 4  # refused three times, then the dropped connection
    assert await ledger_db.dump(fresh_pg_url) == reference


# -- what stops the projector ----------------------------------------------------------------------


class Appending:
    """The event log, then extra event rows as if the engine had written them."""

    def __init__(self, log: EventLog, extra: np.ndarray) -> None:
        self.log, self.extra = log, extra

    @property
    def last_seq(self) -> int:
        return int(self.extra[-1, mc.E_SEQ])

    def read_after(self, seq: int, max_rows: int = 65_536) -> np.ndarray:
        rows = self.log.read_after(seq, max_rows)
        if len(rows) == 0:
            rows = self.extra[self.extra[:, mc.E_SEQ] > seq]
        return rows


def _fill_pair(seq: int, trade_id: int, sell: tuple[int, int], buy: tuple[int, int]) -> np.ndarray:
    """A trade of one lot at 2 USDC on instrument 11: sell and buy are (order id, account)."""
    rows = np.zeros((2, mc.N_EVENT_FIELDS), np.int64)
    sides = [(*sell, 2, 1), (*buy, 1, 2)]  # (order, account, side, liquidity): seller makes
    for row, (oid, acct, side, liquidity) in zip(rows, sides, strict=True):
        row[[mc.E_SEQ, mc.E_KIND, mc.E_INSTRUMENT, mc.E_ORDER_ID, mc.E_ACCOUNT, mc.E_SIDE]] = (
            seq, EventKind.ORDER_FILLED, 11, oid, acct, side,
        )  # fmt: skip
        row[[mc.E_PRICE, mc.E_QTY, mc.E_LEAVES, mc.E_TRADE_ID, mc.E_LIQUIDITY]] = (
            2_000_000, 1, 0, trade_id, liquidity,
        )  # fmt: skip
    return rows


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("duplicate trade id", asyncpg.UniqueViolationError),
        ("fill of an order the ledger does not hold", LedgerWriteError),
    ],
)
async def test_a_violation_is_raised_and_nothing_is_written(
    fresh_pg_url: str, ledger_run: tuple[Path, EngineMoney], case: str, error: type
) -> None:
    events_dir, engine = ledger_run
    seq = engine.last_seq + 1
    bid = next(oid for oid, o in sorted(engine.resting.items()) if o[2] == 1)
    live_bid, live_ask = (bid, engine.resting[bid][1]), (SCRIPTED + 4, 23)
    if case == "duplicate trade id":  # two live orders, but trade id 1 is taken
        extra = _fill_pair(seq, 1, live_ask, live_bid)
    else:
        extra = _fill_pair(seq, 10**9, live_ask, (99_000_001, 1))
    with EventLog.open(events_dir) as log:
        await LedgerProjector(log, fresh_pg_url, max_rows=5_000).catch_up()
        before = await ledger_db.dump(fresh_pg_url)
        projector = LedgerProjector(Appending(log, extra), fresh_pg_url, backoff=FAST_RETRY)
        with pytest.raises(error):
            await projector.catch_up()
    assert projector.stats.retries == 0  # not mistaken for Postgres being away
    assert await ledger_db.dump(fresh_pg_url) == before  # cursor included


async def test_lag_is_reported_and_event_less_commands_pass(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    with Engine.open(tmp_path) as engine:
        engine.submit(
            C.rows(
                [
                    C.OpenAccount(account=7, role=1),
                    C.Deposit(account=7, asset=0, amount=5_000_000, ref=1),
                ]
            )
        )
        engine.submit(C.rows([C.AdvanceClock(), C.AdvanceClock()]))  # no events
        last = engine.last_seq
    with EventLog.open(tmp_path / "events") as log:
        projector = LedgerProjector(log, fresh_pg_url)
        assert projector.lag().seqs == last
        await projector.catch_up()
        assert projector.lag().seqs == 0 and projector.lag().seconds == 0.0
    assert projector.stats.cursor == last == 4
    dumped = await ledger_db.dump(fresh_pg_url)
    assert dumped["projection_cursors"] == [("ledger", 4)]
    assert dumped["balances"] == [(1, 7, 0, 0, 5_000_000, 2), (2, 7, 0, 0, -5_000_000, 2)]


@pytest.mark.parametrize(("seed", "max_rows"), [(7, 60), (11, 5_000)])
async def test_other_flows_and_batch_sizes_hold_the_engines_money(
    fresh_pg_url: str, tmp_path: Path, seed: int, max_rows: int
) -> None:
    """Other random flows, cut into tiny or large batches, end with the engine's money; the
    external accounts hold minus what came in (deposits less withdrawals)."""
    engine = ledger_flow.run(tmp_path, orders=3_000, seed=seed, batch=250)
    with EventLog.open(tmp_path / "events") as log:
        await LedgerProjector(log, fresh_pg_url, max_rows=max_rows).catch_up()
        events = log.read_after(0, 1 << 30)
    ledger = await ledger_db.money(fresh_pg_url)
    assert ledger["balances"] == engine.balances
    assert ledger["escrow"] == engine.escrow
    assert ledger["receivable"] == engine.receivable
    assert ledger["resting"] == engine.resting
    came_in: Counter[tuple[int, int]] = Counter()
    for e in decode(events):
        if isinstance(e, Deposited | Withdrawn):
            sign = 1 if isinstance(e, Deposited) else -1
            came_in[(e.account, e.asset)] += sign * e.amount
    assert ledger["external"] == {k: -v for k, v in came_in.items() if v}


async def test_a_ledger_ahead_of_the_journal_stops_the_projector(
    fresh_pg_url: str, tmp_path: Path, ledger_run: tuple[Path, EngineMoney]
) -> None:
    """After a journal lost its tail, its event log ends before the ledger's cursor: the
    projector refuses to go on (new commands would reuse sequence numbers it holds)."""
    with EventLog.open(ledger_run[0]) as log:
        await LedgerProjector(log, fresh_pg_url).catch_up()
    with Engine.open(tmp_path) as engine:
        engine.submit(C.rows([C.OpenAccount(account=7, role=1)]))
    with EventLog.open(tmp_path / "events") as short:
        projector = LedgerProjector(short, fresh_pg_url, backoff=FAST_RETRY)
        with pytest.raises(ProjectionError, match="past the source's last seq 1"):
            await projector.catch_up()
    assert projector.stats.retries == 0
