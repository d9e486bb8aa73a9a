"""Feeds fixtures on the real Redis of ``tests/conftest.py`` (``redis_url``).

Every test gets its own key prefix under the run's; the test's keys are deleted when it
ends and the run's at the end of the session, so runs never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from servers import RUN_PREFIX, delete_matching

from feeds.marketdata.keys import Keys


@pytest.fixture
def md_keys(redis_url: str, request: pytest.FixtureRequest) -> Iterator[Keys]:
    """A key prefix of this test's own, deleted afterwards."""
    keys = Keys(f"{RUN_PREFIX}:{request.node.name}:{uuid.uuid4().hex[:6]}")
    yield keys
    delete_matching(redis_url, keys.pattern)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
