"""Child process for the SIGKILL test: runs the flow through an engine, reporting acks.

After each batch returns from ``Engine.submit`` (journaled, so acknowledged) it prints the
last sequence number; the parent kills it at a random moment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from flow import T0, batches, order_rows, setup_rows

from exchange.engine import Engine, EngineConfig

BATCH = 500


def main(data_dir: str, n: int, seed: int) -> None:
    calls = iter(range(10**9))
    engine = Engine.open(
        Path(data_dir),
        EngineConfig(snapshot_every=3_000, fsync="strict"),
        clock=lambda: T0 + next(calls) * 1_000_000,
    )
    for rows in [setup_rows(), *batches(order_rows(n, seed), BATCH)]:
        engine.submit(rows)
        print(engine.last_seq, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
