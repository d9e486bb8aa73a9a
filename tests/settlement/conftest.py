"""Databases for the settlement tests, on a real Postgres.

``CX_DATABASE_URL`` if set, else the Postgres on 127.0.0.1:5432 if it answers, else an
embedded one (pgserver) under this session's temporary directory. Every database a test
gets is created for it, migrated, and dropped afterwards.

- ``pg_server_url``: the server (its maintenance database), once per session.
- ``pg_url``: a migrated database shared by one test module.
- ``fresh_pg_url``: a migrated database for one test.
- ``ledger_run``: the engine flow the ledger tests project (``ledger_flow``), run once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from settlement import db
from settlement.migrate import migrate

if TYPE_CHECKING:
    from ledger_flow import EngineMoney


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get(db.ENV_URL):
        yield os.environ[db.ENV_URL]
    elif db.postgres_answers(db.LOCAL_HOST, db.LOCAL_PORT):
        yield db.LOCAL_URL
    else:
        data = tmp_path_factory.mktemp("pg") / "data"
        yield db.start_embedded(data)
        db.stop_embedded(data)


def _migrated_database(server_url: str) -> Iterator[str]:
    async def create() -> str:
        url = await db.create_database(server_url, "cx_test")
        try:
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


@pytest.fixture(scope="module")
def pg_url(pg_server_url: str) -> Iterator[str]:
    yield from _migrated_database(pg_server_url)


@pytest.fixture
def fresh_pg_url(pg_server_url: str) -> Iterator[str]:
    yield from _migrated_database(pg_server_url)


@pytest.fixture(scope="session")
def ledger_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EngineMoney]:
    """The engine flow of ``ledger_flow``, run once: its event log directory and what the
    engine held at the end."""
    import ledger_flow  # the engine: only for the tests that use it

    root = tmp_path_factory.mktemp("engine")
    money = ledger_flow.run(root)
    return root / "events", money
