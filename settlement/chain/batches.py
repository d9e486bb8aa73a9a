"""Settlement batches: the fills after the chain cursor, netted, cut into transactions.

A batch is cut from the engine's event log (``read_after(cursor)``): its fills are netted
per (from vault, to vault, asset) (``netting``), the transfers are packed into as few
transactions as fit in 1232 bytes, each with its own marker (``batch:<id>``, then
``batch:<id>:<k>``) and a Memo naming the batch, the commands it covers and the journal
head hash. The batch row, its transactions and the advanced cursor are written in one
Postgres transaction, so a crash can neither lose fills nor cut them twice; the
``Sender`` then drives each transaction to confirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import numpy as np

from exchange.codes import EventKind
from matching import codes as mc
from risk.codes import FEE_ACCOUNT
from settlement.chain import programs
from settlement.chain.context import ChainContext
from settlement.chain.engine_io import EventSource
from settlement.chain.netting import Transfer, net_fills
from settlement.chain.sender import PlannedTransfer, PumpStats, Sender, record_tx
from settlement.chain.txsize import TxSizer
from settlement.chain.vaults import Vaults

log = logging.getLogger(__name__)

CURSOR = "chain_settlement"
JournalHead = Callable[[], tuple[int, bytes]]  # (last journaled seq, its batch hash)


@dataclass(frozen=True, slots=True)
class CutBatch:
    batch_id: int
    first_seq: int
    last_seq: int
    fills: int
    transfers: int
    parts: int


def memo_text(batch_id: int, part: int, first: int, last: int, journal: tuple[int, bytes]) -> str:
    seq, head = journal
    return f"cx settle batch={batch_id} part={part} seq={first}-{last} journal={seq}:{head.hex()}"


async def read_cursor(conn: asyncpg.Connection | asyncpg.Pool, name: str = CURSOR) -> int:
    value = await conn.fetchval("SELECT last_seq FROM projection_cursors WHERE name = $1", name)
    return int(value or 0)


def next_chunk(events: EventSource, cursor: int, max_rows: int) -> tuple[np.ndarray, int]:
    """Rows after ``cursor`` and the cursor after them: the log's head when everything up
    to it was read (commands without events included), else the last command read."""
    head = events.last_seq
    if head <= cursor:
        return np.empty((0, mc.N_EVENT_FIELDS), dtype=np.int64), cursor
    rows = events.read_after(cursor, max_rows)
    if len(rows) == 0:
        return rows, head
    last = int(rows[-1, mc.E_SEQ])
    more = events.read_after(last, 1)
    truncated = len(more) > 0 and int(more[0, mc.E_SEQ]) <= head
    return rows, last if truncated else max(last, head)


class Settler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ctx: ChainContext,
        vaults: Vaults,
        sender: Sender,
        events: EventSource,
        journal_head: JournalHead,
        *,
        max_rows: int = 65536,
    ) -> None:
        self._pool = pool
        self._ctx = ctx
        self._vaults = vaults
        self._sender = sender
        self._events = events
        self._journal_head = journal_head
        self.max_rows = max_rows

    async def cut(self) -> list[CutBatch]:
        """Cut batches from every fill after the cursor (up to the log's head now)."""
        out: list[CutBatch] = []
        while True:
            cursor = await read_cursor(self._pool)
            rows, new_cursor = next_chunk(self._events, cursor, self.max_rows)
            if new_cursor == cursor:
                return out
            batch = await self._cut_one(rows, cursor, new_cursor)
            if batch is not None:
                out.append(batch)

    async def _cut_one(self, rows: np.ndarray, cursor: int, new_cursor: int) -> CutBatch | None:
        netted = net_fills(rows)
        # Every newly opened account gets its vaults, before the cursor passes its opening.
        opened = rows[rows[:, mc.E_KIND] == EventKind.ACCOUNT_OPENED][:, mc.E_ACCOUNT]
        accounts = {int(a) for a in opened} | {
            r.account for t in netted.transfers for r in (t.source, t.dest) if r.account
        }
        accounts.discard(FEE_ACCOUNT)
        if accounts:
            await self._vaults.ensure(accounts)
        async with self._pool.acquire() as conn, conn.transaction():
            # The cursor row is locked first: a second settler on this database waits here
            # and then sees the advanced cursor, so no fill is cut twice.
            locked = await conn.fetchval(
                "SELECT last_seq FROM projection_cursors WHERE name = $1 FOR UPDATE", CURSOR
            )
            if int(locked or 0) != cursor:
                return None
            batch = None
            if netted.fills:
                batch = await self._insert(conn, netted.transfers, netted.fills, cursor, new_cursor)
            await conn.execute(
                "INSERT INTO projection_cursors (name, last_seq) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET last_seq = $2, updated_at = now()",
                CURSOR,
                new_cursor,
            )
        return batch

    async def _insert(
        self,
        conn: asyncpg.Connection,
        transfers: list[Transfer],
        fills: int,
        cursor: int,
        last: int,
    ) -> CutBatch:
        batch_id = await conn.fetchval("SELECT nextval('settlement_batch_ids')")
        journal = self._stable_head()
        first = cursor + 1
        planned = [self._plan(t) for t in transfers]
        parts = self._pack(batch_id, first, last, journal, planned)
        await conn.execute(
            "INSERT INTO settlement_batches (batch_id, first_seq, last_seq, fills, transfers,"
            " parts, journal_seq, head_hash, state) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'pending')",
            batch_id,
            first,
            last,
            fills,
            len(planned),
            len(parts),
            journal[0],
            journal[1].hex(),
        )
        for k, part in enumerate(parts):
            await record_tx(
                conn,
                purpose="batch",
                marker=programs.batch_marker_seed(batch_id, k),
                memo=memo_text(batch_id, k, first, last, journal),
                transfers=part,
                batch_id=batch_id,
                part=k,
            )
        log.info("batch %d: seq %d-%d, %d fills, %d transfers in %d transactions",
                 batch_id, first, last, fills, len(planned), len(parts))  # fmt: skip
        return CutBatch(batch_id, first, last, fills, len(planned), len(parts))

    def _stable_head(self) -> tuple[int, bytes]:
        """The journal head, read until two reads agree: the journal may be appending in
        another thread, and a seq must never be paired with another batch's hash."""
        head = self._journal_head()
        for _ in range(100):
            again = self._journal_head()
            if again == head:
                return head
            head = again
        raise RuntimeError("the journal head did not settle")

    def _plan(self, t: Transfer) -> PlannedTransfer:
        source = self._vaults.get(t.source).address
        dest = self._vaults.get(t.dest).address
        return PlannedTransfer(source, dest, t.source.asset, t.amount)

    def _pack(
        self,
        batch_id: int,
        first: int,
        last: int,
        journal: tuple[int, bytes],
        transfers: list[PlannedTransfer],
    ) -> list[list[PlannedTransfer]]:
        """Greedy: as many transfers per transaction as its byte limit allows."""
        parts: list[list[PlannedTransfer]] = []
        current: list[PlannedTransfer] = []
        sizer = self._new_part(batch_id, 0, first, last, journal)
        for t in transfers:
            ix = self._sender.transfer_ix(t)
            if current and not sizer.fits([ix]):
                parts.append(current)
                current = []
                sizer = self._new_part(batch_id, len(parts), first, last, journal)
            sizer.add([ix])
            current.append(t)
        if current:
            parts.append(current)
        return parts

    def _new_part(self, batch_id, part, first, last, journal) -> TxSizer:
        sizer = TxSizer(self._ctx.authority_key)
        marker = programs.batch_marker_seed(batch_id, part)
        sizer.add(
            self._sender.instructions(
                marker, memo_text(batch_id, part, first, last, journal), [], None
            )
        )
        return sizer

    async def step(self) -> tuple[list[CutBatch], PumpStats]:
        """Cut what is new, then advance every open transaction by one step."""
        batches = await self.cut()
        return batches, await self._sender.pump()
