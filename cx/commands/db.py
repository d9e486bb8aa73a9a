"""The ledger database: ``cx db migrate`` applies the pending SQL migrations.

The database is ``--url`` if given, else the configured one (``CX_DATABASE_URL``), else the
database ``cx``
(created if missing) on the Postgres at 127.0.0.1:5432 if one answers, else on an embedded
Postgres with its data under ``--data-dir`` (default var/pg). Prints each migration
applied, or that there was none; exits 1 if the migrations on disk and in the database
disagree or the database is unreachable.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "ledger database tasks (migrate)"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    mig = actions.add_parser("migrate", help="apply the pending SQL migrations")
    mig.add_argument("--url", help="database URL (default: CX_DATABASE_URL, local, embedded)")
    mig.add_argument("--data-dir", default="var/pg", help="embedded Postgres data directory")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database": {"url": args.url}}


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import asyncpg

    from settlement.db import (
        DatabaseError,
        database_name,
        ensure_database,
        redact,
        resolve_url,
    )
    from settlement.migrate import MigrationError, MigrationReport, migrate

    configured = settings.database.configured_url()
    url = resolve_url(args.data_dir, configured)
    default = configured is None

    async def apply() -> MigrationReport:
        if default and await ensure_database(url):
            print(f"created database {database_name(url)}")
        return await migrate(url)

    try:
        report = asyncio.run(apply())
    except (MigrationError, DatabaseError, OSError, asyncpg.PostgresError) as exc:
        print(f"cx db migrate: {redact(url)}: {exc}", file=sys.stderr)
        return 1
    for name in report.applied:
        print(f"applied {name}")
    if not report.applied:
        print(f"up to date ({len(report.already)} migrations applied before)")
    return 0
