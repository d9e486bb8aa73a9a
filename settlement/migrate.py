"""SQL migrations: ``NNNN_name.sql`` files applied in order, each once, each atomically.

``schema_migrations`` records every applied file with its SHA-256. A re-run applies only
the files not recorded yet; a recorded file whose text changed since is an error (a
migration that ran must never be edited: write a new one). Concurrent runs (the server
starting while ``cx db migrate`` runs) are serialised by an advisory lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x43585F4D49475241  # "CX_MIGRA": one advisory lock for every migrator

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    sha256     text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations on disk and those recorded in the database disagree."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file name
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]  # file names applied by this run, in order
    already: list[str]  # file names found applied before


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in ``directory``, by version; refuses a malformed set."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if m is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name} and {found[version].name} share version {version}")
        found[version] = Migration(version, path.name, path.read_text())
    return [found[v] for v in sorted(found)]


async def migrate_connection(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR
) -> MigrationReport:
    """Apply the pending migrations over ``conn``."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_TABLE)
        recorded = {
            r["version"]: (r["name"], r["sha256"])
            for r in await conn.fetch("SELECT version, name, sha256 FROM schema_migrations")
        }
        known = {m.version for m in migrations}
        unknown = sorted(set(recorded) - known)
        if unknown:
            names = ", ".join(recorded[v][0] for v in unknown)
            raise MigrationError(f"the database has migrations this code does not: {names}")
        applied, already = [], []
        for m in migrations:
            if m.version in recorded:
                name, digest = recorded[m.version]
                if name != m.name or digest != m.sha256:
                    raise MigrationError(
                        f"{m.name}: changed since it was applied as {name} "
                        f"(sha256 {digest[:12]}, now {m.sha256[:12]}); add a new migration"
                    )
                already.append(m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.sha256,
                )
            applied.append(m.name)
        return MigrationReport(applied, already)
    finally:
        if not conn.is_closed():  # a broken connection released the lock with itself
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """Connect to ``url`` and apply the pending migrations."""
    conn = await asyncpg.connect(url)
    try:
        return await migrate_connection(conn, directory)
    finally:
        await conn.close()
