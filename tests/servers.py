"""Helpers behind the server fixtures of ``tests/conftest.py``, importable by any test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import redis

from settlement import db
from settlement.migrate import migrate

RUN_PREFIX = f"cx-test:{uuid.uuid4().hex[:12]}"


def migrated_database(server_url: str, *, run_migrations: bool = True) -> Iterator[str]:
    async def create() -> str:
        url = await db.create_database(server_url, "cx_test")
        try:
            if run_migrations:
                await migrate(url)
        except BaseException:
            await db.drop_database(url)
            raise
        return url

    url = asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(db.drop_database(url))


def delete_matching(url: str, pattern: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()
