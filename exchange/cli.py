"""The ``cx`` command: one entry point for every operator task, one subcommand per task.

Subcommands live in their own modules, listed in ``SUBCOMMANDS``. Adding one is a new
module with ``HELP``, ``configure(parser)`` and ``run(args) -> int``, plus one line in the
table; a subcommand of another package (``settlement.db_cmd``) lives in that package, so
``exchange`` never imports the packages built on it. Every listed module is imported to
build ``--help``, so a subcommand keeps its heavy
imports (numba kernels, servers) inside ``run``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, cast


class Subcommand(Protocol):
    """What a subcommand module provides."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# name -> module implementing it, in the order ``cx --help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "demo": "exchange.demo",
    "verify": "exchange.verify_cmd",
    "replay": "exchange.replay_cmd",
    "db": "settlement.db_cmd",
    "reconcile": "settlement.reconcile_cmd",
    "serve": "gateway.serve_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cx", description="CX: an exchange for compute capacity (GPU-hours)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = cast(Subcommand, import_module(module_name))
        sub = commands.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``cx`` command; the return value is the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.run(args))


def _version() -> str:
    try:
        return version("cx-exchange")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"
