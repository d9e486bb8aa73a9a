"""Serve the embedded local Solana node (JSON-RPC over LiteSVM) until stopped.

Prints the URL on the first line of stdout once it serves; Ctrl-C or SIGTERM stops it
cleanly and saves the chain state under --state-dir. With --exit-with-parent it also
stops when its stdin closes (used by LocalSolanaProcess).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

HELP = "serve the embedded local Solana node (JSON-RPC over LiteSVM)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default="var/solana", help="where chain state is kept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899, help="0 picks a free port")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when stdin closes")


def run(args: argparse.Namespace) -> int:
    from .node import LocalSolana

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.exit_with_parent:

        def watch_stdin() -> None:
            # The raw fd, not sys.stdin: a daemon thread blocked inside a buffered reader
            # makes interpreter shutdown abort ("could not acquire lock for <stdin>").
            while os.read(0, 4096):
                pass
            done.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    with LocalSolana(args.state_dir, args.host, args.port) as node:
        print(node.url, flush=True)
        done.wait()
    return 0
