"""Re-run a journal from its first command into a fresh core and print two hashes.

The state hash covers every book and every risk array after the last command; the
event-stream hash covers every event the core produced, in order. Two runs of the same
journal print the same pair: that is the exchange's determinism, checked. Replay takes no
lock and writes nothing: it checks the journal as it reads it (CRCs, sequence, hash chain),
stops where recovery would cut a torn tail, and so can replay a running engine's journal up
to its last complete batch. Exit code 0, or 1 if the journal cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "re-run a journal and print the state hash and event-stream hash"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", help="the journal directory (holds genesis.json)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from exchange.engine import replay
    from exchange.journal import JournalCorrupt

    try:
        result = replay(args.journal)
    except (JournalCorrupt, RuntimeError, ValueError) as exc:
        print(f"cx replay: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(result.to_json())
        return 0
    rate = result.commands / result.seconds if result.seconds else 0.0
    print(f"commands      {result.commands}")
    print(f"events        {result.events}")
    print(f"state hash    {result.state_hash}")
    print(f"event hash    {result.event_hash}")
    print(f"took          {result.seconds:.3f} s ({rate:,.0f} commands/s)")
    return 0
