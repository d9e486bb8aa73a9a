"""Writing a ``LedgerBatch`` into Postgres, inside the caller's transaction.

Two writers leave the same rows behind:

- ``BulkWriter`` (the projector's): each insert-only table in one binary COPY built by
  numpy (``settlement.pgcopy``), each update in one statement over ``unnest`` arrays.
- ``RowWriter``: one statement per row (per movement for ledger entries, whose balance is
  checked per statement), the way a projector without bulk paths would write; the baseline
  the benchmark compares against, and a second path the tests check the first against.

Order within a batch: reference rows, order changes before new orders (an id whose order
closed may be reused by a new one in the same batch), trades, entries, balances, transfers.
An UPDATE that does not find every row it must change is an error, never skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import numpy as np

from settlement import pgcopy
from settlement.ledger import INSERTS, LedgerBatch

_APPLY_ORDER = (
    "accounts",
    "instruments",
    "instrument_status",
    "orders_changed",
    "orders_new",
    "trades",
    "entries",
    "balances",
    "deposits",
    "withdrawals",
)

_ORDER_CHANGE_SET = """
    price = CASE WHEN u.price > 0 THEN u.price ELSE o.price END,
    qty = CASE WHEN u.qty > 0 THEN u.qty ELSE o.qty END - u.qty_cut,
    leaves = u.leaves,
    filled = o.filled + u.filled,
    status = CASE
        WHEN u.status > 0 THEN u.status
        WHEN o.filled + u.filled > 0 THEN 2
        ELSE 1
    END,
    updated_seq = u.updated_seq
"""
_ORDER_CHANGE_COLS = "order_id, price, qty, qty_cut, leaves, filled, status, updated_seq"
_INSTRUMENT_STATUS_COLS = "instrument_id, status, updated_seq"
_BALANCE_COLS = "ledger_kind, account_id, instrument_id, asset_id, amount, updated_seq"
_BALANCE_CONFLICT = """
    ON CONFLICT (ledger_kind, account_id, instrument_id, asset_id) DO UPDATE
    SET amount = b.amount + EXCLUDED.amount, updated_seq = EXCLUDED.updated_seq
"""


class LedgerWriteError(RuntimeError):
    """The ledger disagrees with the events (e.g. a change to an order it does not hold)."""


class LedgerWriter(Protocol):
    """``prepare`` is pure CPU work on the batch (the projector may run it in a worker
    thread, for the next batch while Postgres writes this one); ``write`` sends it."""

    name: str

    def prepare(self, batch: LedgerBatch) -> Any: ...

    async def write(self, conn: asyncpg.Connection, prepared: Any) -> None: ...


@dataclass(frozen=True)
class _Copy:
    table: str
    columns: list[str]
    data: memoryview


@dataclass(frozen=True)
class _Statement:
    sql: str
    args: list[list[int]]
    expect: int | None  # rows it must change, or None
    what: str


def _unnest(rows: np.ndarray, alias: str) -> str:
    """``unnest($1::t[], ...) AS alias(cols)`` for a structured array's fields."""
    names = rows.dtype.names or ()
    fields: Mapping[str, tuple[Any, ...]] = rows.dtype.fields or {}
    args = ", ".join(f"${i + 1}::{pgcopy.pg_type(fields[n][0])}[]" for i, n in enumerate(names))
    return f"unnest({args}) AS {alias}({', '.join(names)})"


def _columns(rows: np.ndarray) -> list[list[int]]:
    return [rows[n].tolist() for n in rows.dtype.names or ()]


def _expect(status: str, expected: int, what: str) -> None:
    done = int(status.rsplit(" ", 1)[-1])
    if done != expected:
        raise LedgerWriteError(f"{what}: {expected} rows to change, {done} found")


class BulkWriter:
    name = "copy"

    def prepare(self, batch: LedgerBatch) -> list[_Copy | _Statement]:
        """The batch as COPY streams and set-based statements, in apply order."""
        ops: list[_Copy | _Statement] = []
        for part in _APPLY_ORDER:
            rows = getattr(batch, part)
            if len(rows) == 0:
                continue
            names = list(rows.dtype.names)
            if part in INSERTS:
                ops.append(_Copy(INSERTS[part], names, pgcopy.encode(rows, names)))
            elif part == "orders_changed":
                sql = (
                    f"UPDATE orders o SET {_ORDER_CHANGE_SET} FROM {_unnest(rows, 'u')} "
                    "WHERE o.order_id = u.order_id AND o.status IN (1, 2)"
                )
                ops.append(_Statement(sql, _columns(rows), len(rows), "orders changed by events"))
            elif part == "instrument_status":
                sql = (
                    "UPDATE instruments i SET status = u.status, updated_seq = u.updated_seq "
                    f"FROM {_unnest(rows, 'u')} WHERE i.instrument_id = u.instrument_id"
                )
                ops.append(_Statement(sql, _columns(rows), len(rows), "instrument status changes"))
            elif part == "balances":
                sql = (
                    f"INSERT INTO balances AS b ({_BALANCE_COLS}) "
                    f"SELECT * FROM {_unnest(rows, 'u')} {_BALANCE_CONFLICT}"
                )
                ops.append(_Statement(sql, _columns(rows), None, "balances"))
            else:  # pragma: no cover - a part added to the batch but not here
                raise AssertionError(part)
        return ops

    async def write(self, conn: asyncpg.Connection, prepared: list[_Copy | _Statement]) -> None:
        for op in prepared:
            if isinstance(op, _Copy):
                await conn.copy_to_table(
                    op.table, source=op.data, columns=op.columns, format="binary"
                )
            else:
                status = await conn.execute(op.sql, *op.args)
                if op.expect is not None:
                    _expect(status, op.expect, op.what)


class RowWriter:
    name = "rows"

    def prepare(self, batch: LedgerBatch) -> LedgerBatch:
        return batch

    async def write(self, conn: asyncpg.Connection, batch: LedgerBatch) -> None:
        for part in _APPLY_ORDER:
            rows = getattr(batch, part)
            if len(rows) == 0:
                continue
            if part == "entries":
                await self._entries(conn, rows)
            elif part in INSERTS:
                names = rows.dtype.names or ()
                sql = (
                    f"INSERT INTO {INSERTS[part]} ({', '.join(names)}) "
                    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(names)))})"
                )
                for row in rows.tolist():
                    await conn.execute(sql, *row)
            elif part == "orders_changed":
                sql = (
                    f"UPDATE orders o SET {_ORDER_CHANGE_SET} "
                    "FROM (VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint, "
                    f"$6::bigint, $7::smallint, $8::bigint)) AS u({_ORDER_CHANGE_COLS}) "
                    "WHERE o.order_id = u.order_id AND o.status IN (1, 2)"
                )
                for row in rows.tolist():
                    _expect(await conn.execute(sql, *row), 1, f"order {row[0]} changed by events")
            elif part == "instrument_status":
                sql = (
                    "UPDATE instruments SET status = $2, updated_seq = $3 WHERE instrument_id = $1"
                )
                for row in rows.tolist():
                    _expect(await conn.execute(sql, *row), 1, f"instrument {row[0]} status")
            elif part == "balances":
                sql = (
                    f"INSERT INTO balances AS b ({_BALANCE_COLS}) "
                    f"VALUES ($1, $2, $3, $4, $5, $6) {_BALANCE_CONFLICT}"
                )
                for row in rows.tolist():
                    await conn.execute(sql, *row)
            else:  # pragma: no cover
                raise AssertionError(part)

    async def _entries(self, conn: asyncpg.Connection, entries: np.ndarray) -> None:
        """One INSERT per movement: its legs in one statement (the balance check's unit)."""
        names = entries.dtype.names or ()
        width = len(names)
        statements: dict[int, str] = {}
        movement = entries["movement_id"]
        cuts = np.flatnonzero(np.r_[True, movement[1:] != movement[:-1], True])
        values = entries.tolist()
        for a, b in itertools.pairwise(cuts):
            legs = int(b - a)
            sql = statements.get(legs)
            if sql is None:
                groups = ", ".join(
                    "(" + ", ".join(f"${j * width + i + 1}" for i in range(width)) + ")"
                    for j in range(legs)
                )
                sql = statements[legs] = (
                    f"INSERT INTO ledger_entries ({', '.join(names)}) VALUES {groups}"
                )
            await conn.execute(sql, *(v for row in values[a:b] for v in row))
