"""Compare every vault's balance on chain with the Postgres ledger, and report each difference.

The database is ``--url`` if given, else the configured one (``CX_DATABASE_URL``), else the
Postgres on 127.0.0.1:5432, else the embedded one under ``--data-dir``. The chain is
``--rpc-url`` or the configured one (``CX_SOLANA_RPC_URL``); ``--local-state DIR`` instead
starts the embedded runtime from its saved state (only while no server is running it).
Fills between the ledger's cursor and the settled one are accounted for from the engine's
event log (``--events``). Read-only.
Exits 0 when everything agrees, 1 when anything differs, 2 when it cannot check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "compare on-chain vault balances with the ledger (read-only)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="database URL (default: CX_DATABASE_URL, local, embedded)")
    parser.add_argument(
        "--data-dir", help="embedded Postgres data directory (default: <engine data dir>/pg)"
    )
    parser.add_argument("--rpc-url", help="Solana JSON-RPC URL (default: CX_SOLANA_RPC_URL)")
    parser.add_argument("--local-state", help="start the embedded Solana runtime from this state")
    parser.add_argument(
        "--events", help="the engine's event log directory (default: what cx serve writes)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database": {"url": args.url}, "solana": {"rpc_url": args.rpc_url}}


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import asyncpg

    from settlement.chain.errors import ChainError

    try:
        report = asyncio.run(_check(args, settings))
    except (ChainError, OSError, ValueError, asyncpg.PostgresError) as exc:
        print(f"cx reconcile: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(report.to_json().decode() + "\n")
    else:
        _print(report)
    return 0 if report.ok else 1


async def _check(args: argparse.Namespace, settings: Settings):
    from settlement import db
    from settlement.chain.reconcile import reconcile
    from settlement.chain.rpc import Backoff, ChainRpc

    data_dir = args.data_dir or settings.engine.data_dir / "pg"
    url = db.resolve_url(data_dir, settings.database.configured_url())
    rpc_url = settings.solana.rpc_url
    node = None
    if rpc_url is None:
        if not args.local_state:
            raise ValueError("no chain: give --rpc-url, CX_SOLANA_RPC_URL or --local-state")
        from settlement.localnet import LocalSolana

        node = LocalSolana(args.local_state)
        rpc_url = node.start()
    events = _events(Path(args.events or settings.engine.engine_dir / "events"))
    pool = await db.create_pool(url)
    rpc = ChainRpc(rpc_url, backoff=Backoff(retry_for=10.0))
    try:
        return await reconcile(pool, rpc, events)
    finally:
        await rpc.close()
        await pool.close()
        if events is not None:
            events.close()
        if node is not None:
            node.stop()


def _events(directory: Path):
    from exchange.event_log import EventLog

    if not (directory / "events.head").exists():
        return None
    return EventLog.open(directory)


def _print(report) -> None:
    state = "OK" if report.ok else f"{len(report.differences)} DIFFERENCE(S)"
    print(
        f"reconcile {report.checked_at}: {state}; {len(report.vaults)} vaults, "
        f"ledger at seq {report.ledger_seq}, settled to seq {report.settled_seq}"
    )
    shown = report.differences + [v for v in report.vaults if v.status == "in_flight"]
    shown += [v for v in report.pending_deposits if v not in shown]
    for v in shown:
        pending = f"  (landed, not yet credited: {v.pending_deposit})" if v.pending_deposit else ""
        who = v.kind if v.account is None else f"account {v.account}"
        print(
            f"  {v.status:9} {who:>16} asset {v.asset}  {v.address or '-'}"
            f"  chain {v.onchain if v.onchain is not None else '-'}"
            f"  ledger {v.ledger}  in transit {v.in_transit}  difference {v.difference:+d}"
            f"{pending}"
        )
    for note in report.notes:
        print(f"  note: {note}")
