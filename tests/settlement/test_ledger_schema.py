"""The ledger's schema on a real Postgres: its constraints, its migrations, finding the server."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from cx import cli
from settlement import db, pgcopy
from settlement.ledger import ENTRY
from settlement.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate

COLS = "movement_id, leg, seq, movement_kind, ledger_kind, account_id, instrument_id, asset_id"
INSERT = f"INSERT INTO ledger_entries ({COLS}, amount, ref) VALUES "


def _entry(movement: int, leg: int, asset: int, amount: int) -> str:
    return f"({movement}, {leg}, {movement >> 20}, 3, 1, {leg + 1}, 0, {asset}, {amount}, 0)"


# -- the double-entry constraint -----------------------------------------------------------------


async def test_an_unbalanced_movement_is_refused(pg_url: str) -> None:
    m = 77 << 20
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await conn.execute(INSERT + f"{_entry(m, 0, 0, -5)}, {_entry(m, 1, 0, 4)}")
        assert refused.value.constraint_name == "ledger_entries_balanced"
        assert "does not balance" in str(refused.value)
        with pytest.raises(asyncpg.CheckViolationError):  # one leg alone is never balanced
            await conn.execute(INSERT + _entry(m, 0, 0, -5))
        with pytest.raises(asyncpg.CheckViolationError):  # balanced in total, not per asset
            await conn.execute(INSERT + f"{_entry(m, 0, 0, -5)}, {_entry(m, 1, 1, 5)}")
        await conn.execute(  # balanced in each asset: accepted
            INSERT
            + ", ".join(
                [_entry(m, 0, 0, -5), _entry(m, 1, 0, 5), _entry(m, 2, 1, 7), _entry(m, 3, 1, -7)]
            )
        )
        count = "SELECT count(*) FROM ledger_entries WHERE movement_id = $1"
        assert await conn.fetchval(count, m) == 4
    finally:
        await conn.close()


async def test_an_unbalanced_copy_is_refused_and_the_ledger_is_append_only(pg_url: str) -> None:
    rows = np.zeros(3, ENTRY)
    rows["movement_id"] = 78 << 20
    rows["seq"] = 78
    rows["leg"] = [0, 1, 2]
    rows["movement_kind"] = rows["ledger_kind"] = 1
    rows["amount"] = [-10, 6, 3]
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.copy_to_table(
                "ledger_entries",
                source=pgcopy.encode(rows, ENTRY.names),
                columns=list(ENTRY.names),
                format="binary",
            )
        rows["amount"][2] = 4
        await conn.copy_to_table(
            "ledger_entries",
            source=pgcopy.encode(rows, ENTRY.names),
            columns=list(ENTRY.names),
            format="binary",
        )
        got = await conn.fetch(
            "SELECT leg, amount FROM ledger_entries WHERE movement_id = $1 ORDER BY leg", 78 << 20
        )
        assert [tuple(r) for r in got] == [(0, -10), (1, 6), (2, 4)]
        for change in (
            "UPDATE ledger_entries SET amount = amount",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
        ):
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(change)
        with pytest.raises(asyncpg.CheckViolationError):  # a zero amount is no entry
            await conn.execute(INSERT + f"{_entry(79 << 20, 0, 0, 0)}")
    finally:
        await conn.close()


# -- migrations ----------------------------------------------------------------------------------


@pytest.fixture
def empty_db(pg_server_url: str):
    url = asyncio.run(db.create_database(pg_server_url, "cx_test"))
    yield url
    asyncio.run(db.drop_database(url))


async def test_migrations_apply_once_in_order_and_are_recorded(empty_db: str) -> None:
    files = [m.name for m in discover()]
    assert files[0] == "0001_ledger.sql" and files == sorted(files)
    first = await migrate(empty_db)
    again = await migrate(empty_db)
    assert first.applied == files and first.already == []
    assert again.applied == [] and again.already == files
    conn = await asyncpg.connect(empty_db)
    try:
        recorded = await conn.fetch("SELECT version, name, sha256 FROM schema_migrations")
        tables = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", "public"
            )
        }
    finally:
        await conn.close()
    assert [(r["version"], r["name"], r["sha256"]) for r in recorded] == [
        (m.version, m.name, m.sha256) for m in discover()
    ]
    assert tables >= {
        "accounts",
        "api_keys",
        "assets",
        "instruments",
        "orders",
        "trades",
        "ledger_entries",
        "balances",
        "deposits",
        "withdrawals",
        "projection_cursors",
        "schema_migrations",
    }


async def test_migration_mistakes_are_clear_errors(empty_db: str, tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_ledger.sql", mig)
    (mig / "0002_more.sql").write_text("CREATE TABLE more_things (x int);\n")
    assert (await migrate(empty_db, mig)).applied == ["0001_ledger.sql", "0002_more.sql"]

    # an applied file edited afterwards
    (mig / "0002_more.sql").write_text("CREATE TABLE more_things (x bigint);\n")
    with pytest.raises(MigrationError, match=r"0002_more\.sql: changed since it was applied"):
        await migrate(empty_db, mig)
    (mig / "0002_more.sql").write_text("CREATE TABLE more_things (x int);\n")

    # a failing migration leaves nothing of itself behind
    (mig / "0003_broken.sql").write_text("CREATE TABLE half_done (x int);\nSELECT 1/0;\n")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(empty_db, mig)
    conn = await asyncpg.connect(empty_db)
    try:
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 2
    finally:
        await conn.close()

    # a misnamed file, two files for one version, a database ahead of the code
    (mig / "0003_broken.sql").rename(mig / "3_broken.sql")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        await migrate(empty_db, mig)
    (mig / "3_broken.sql").unlink()
    (mig / "0002_other.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="share version 2"):
        await migrate(empty_db, mig)
    (mig / "0002_other.sql").unlink()
    (mig / "0002_more.sql").unlink()
    with pytest.raises(MigrationError, match=r"has migrations this code does not: 0002_more\.sql"):
        await migrate(empty_db, mig)


async def test_a_reader_pool_sees_the_schema(pg_url: str) -> None:
    pool = await db.create_pool(pg_url, max_size=2)
    try:
        names = await pool.fetch("SELECT name FROM order_statuses ORDER BY status")
    finally:
        await pool.close()
    assert [r["name"] for r in names] == [
        "open",
        "partially_filled",
        "filled",
        "cancelled",
        "expired",
    ]


def test_cx_db_migrate(empty_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["db", "migrate", "--url", empty_db]) == 0
    applied = capsys.readouterr().out.split("\n")
    assert applied[:-1] == [f"applied {m.name}" for m in discover()]
    assert cli.main(["db", "migrate", "--url", empty_db]) == 0
    assert capsys.readouterr().out.startswith("up to date")
    bad = db.with_database(empty_db, "cx_no_such_database")
    assert cli.main(["db", "migrate", "--url", bad]) == 1
    assert "cx_no_such_database" in capsys.readouterr().err


# -- finding the server --------------------------------------------------------------------------


def test_database_url_resolution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_server_url: str
) -> None:
    configured = "postgresql://someone@db.example:5433/cx"
    assert db.resolve_url(tmp_path / "pg", configured) == configured
    monkeypatch.delenv(db.ENV_URL, raising=False)  # ``cx`` would read it; resolve_url does not
    if db.postgres_answers(db.LOCAL_HOST, db.LOCAL_PORT):
        assert db.resolve_url(tmp_path / "pg") == "postgresql://postgres@127.0.0.1:5432/cx"
    with socket.socket() as other:  # something listening that is not Postgres
        other.bind(("127.0.0.1", 0))
        other.listen()
        assert not db.postgres_answers("127.0.0.1", other.getsockname()[1], timeout=0.3)
    assert db.with_database("postgresql://u:pw@h:1/a?host=/tmp", "b") == (
        "postgresql://u:pw@h:1/b?host=/tmp"
    )
    assert db.redact("postgresql://u:secret@h/a") == "postgresql://u:***@h/a"


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")
def test_embedded_postgres_when_nothing_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No CX_DATABASE_URL and nothing on the local port: a real Postgres from the pgserver
    wheel starts with its data under the given directory; ``cx db migrate`` creates the
    database ``cx`` there and migrates it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.delenv(db.ENV_URL, raising=False)
    monkeypatch.setattr(db, "LOCAL_PORT", closed_port)
    data = tmp_path / "pg"
    try:
        assert cli.main(["db", "migrate", "--data-dir", str(data)]) == 0
        assert (data / "PG_VERSION").exists()
        out = capsys.readouterr().out.splitlines()
        assert out == ["created database cx"] + [f"applied {m.name}" for m in discover()]
        url = db.resolve_url(data)  # the same server, still running
        assert db.database_name(url) == "cx"
        assert asyncio.run(db.ensure_database(url)) is False

        async def kinds() -> int:
            conn = await asyncpg.connect(url)
            try:
                return await conn.fetchval("SELECT count(*) FROM movement_kinds")
            finally:
                await conn.close()

        assert asyncio.run(kinds()) == 3
    finally:
        db.stop_embedded(data)
    with pytest.raises((OSError, asyncpg.PostgresError)):  # stopped
        asyncio.run(asyncpg.connect(url, timeout=2))
