"""Reading back what the projector wrote: whole tables, and the money in the engine's terms."""

from __future__ import annotations

from collections import Counter

import asyncpg

# table -> its key, for a canonical order; timestamps are left out (they differ per run)
TABLES = {
    "accounts": "account_id",
    "assets": "asset_id",
    "instruments": "instrument_id",
    "orders": "order_id, accepted_seq",
    "trades": "trade_id",
    "ledger_entries": "movement_id, leg",
    "balances": "ledger_kind, account_id, instrument_id, asset_id",
    "deposits": "seq",
    "withdrawals": "seq",
    "projection_cursors": "name",
}
_SKIP = {"updated_at"}


async def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every ledger table, in key order."""
    conn = await asyncpg.connect(url)
    try:
        out = {}
        for table, key in TABLES.items():
            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
            out[table] = [tuple(v for k, v in r.items() if k not in _SKIP) for r in rows]
        return out
    finally:
        await conn.close()


async def money(url: str) -> dict[str, dict]:
    """The ledger's balances in the shape of ``ledger_flow.EngineMoney``."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM balances WHERE amount <> 0")
        resting = await conn.fetch("SELECT * FROM orders WHERE status IN (1, 2)")
    finally:
        await conn.close()
    escrow: Counter[int] = Counter()
    out: dict[str, dict] = {"balances": {}, "receivable": {}, "external": {}}
    for r in rows:
        if r["ledger_kind"] == 1:
            out["balances"][(r["account_id"], r["asset_id"])] = r["amount"]
        elif r["ledger_kind"] == 2:
            out["external"][(r["account_id"], r["asset_id"])] = r["amount"]
        else:
            escrow[r["instrument_id"]] += r["amount"]
            out["receivable"][(r["account_id"], r["instrument_id"])] = r["amount"]
    out["escrow"] = {k: v for k, v in escrow.items() if v}
    out["resting"] = {
        r["order_id"]: (
            r["instrument_id"],
            r["account_id"],
            r["side"],
            r["price"],
            r["qty"],
            r["leaves"],
        )
        for r in resting
    }
    return out
