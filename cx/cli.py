"""The ``cx`` command: one entry point for every operator task, one subcommand per task.

Subcommands live in their own modules, listed in ``SUBCOMMANDS``. Adding one is a new
module with ``HELP``, ``configure(parser)`` and ``run(args, settings) -> int`` (and, if some
of its flags are configuration, ``overrides(args)``), plus one line in the table. Every
listed module is imported to build ``--help``, so a subcommand keeps its heavy imports
(numba kernels, servers) inside ``run``.

The configuration is built here, once, before the subcommand runs: its flags over the
environment over the config file (``--config FILE`` or ``CX_CONFIG``) over the defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol, cast

from cx.settings import ConfigError, Settings, load


class Subcommand(Protocol):
    """What a subcommand module provides."""

    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings) -> int: ...


# name -> module implementing it, in the order ``cx --help`` lists them.
SUBCOMMANDS: dict[str, str] = {
    "demo": "cx.book_demo.demo",
    "verify": "cx.commands.verify",
    "replay": "cx.commands.replay",
    "db": "cx.commands.db",
    "reconcile": "cx.commands.reconcile",
    "serve": "cx.commands.serve",
    "config": "cx.commands.config",
    "key": "cx.commands.key",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cx", description="CX: an exchange for compute capacity (GPU-hours)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help="a TOML configuration file (default: CX_CONFIG, else none)",
    )  # fmt: skip
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
        sub.set_defaults(run=module.run, overrides=getattr(module, "overrides", None))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``cx`` command; the return value is the process exit code."""
    args = build_parser().parse_args(argv)
    flags: dict[str, Any] = args.overrides(args) if args.overrides else {}
    try:
        settings = load(flags, config_file=args.config)
    except ConfigError as exc:
        print(f"cx: configuration: {exc}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


def _version() -> str:
    try:
        return version("cx-exchange")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"
