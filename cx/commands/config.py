"""``cx config show``: the effective configuration, after flags, environment and file.

Printed as TOML (a config file that ``--config`` reads back) or, with ``--json``, as JSON.
Secrets (database and Redis URLs, the Pyth API key) are shown as ``**********``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "show the effective configuration (secrets redacted)"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the effective configuration")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from cx.settings import to_json, to_toml

    sys.stdout.write(to_json(settings) + "\n" if args.json else to_toml(settings))
    return 0
