"""Instrument names in the ledger: events carry only an instrument's id, so whoever lists
instruments records their names here once the projector has written the rows."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg


async def name_instruments(pool: asyncpg.Pool, names: Mapping[str, int]) -> int:
    """Give each unnamed ledger instrument row in ``names`` (name -> id) its name; returns
    how many instrument rows carry a name now. Rows not projected yet stay unnamed: call
    again later."""
    if names:
        await pool.execute(
            "UPDATE instruments i SET name = v.name"
            " FROM unnest($1::text[], $2::bigint[]) AS v(name, id)"
            " WHERE i.instrument_id = v.id AND i.name IS NULL",
            list(names),
            list(names.values()),
        )
    return int(await pool.fetchval("SELECT count(*) FROM instruments WHERE name IS NOT NULL"))
