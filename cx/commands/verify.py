"""Check a journal's CRCs and hash chain without modifying it.

Prints the counts, the head hash (compare it with the one anchored on chain) and every
problem found; exits 0 when the journal is intact and 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "check a journal's CRCs and hash chain (read-only)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", help="the journal directory")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from exchange.journal import main_verify

    return main_verify(args.journal)
