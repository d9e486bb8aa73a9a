"""Settlement benchmark: the Postgres ledger and the chain, in one report.

    python -m benchmarks.settlement [--json] [--quick]

Merges ``benchmarks.settlement_ledger.run`` (``ledger_*`` keys: projector fills/s into
Postgres against row-at-a-time inserts in the same run, and its lag while the engine
produces about 10k fills/s) and, when it can be imported, ``benchmarks.settlement_chain.run``
(``chain_*`` keys and ``fills_per_transaction``: fills settled through the local Solana
runtime with netting). Each part documents its own measurements in its module.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import harness

TARGETS: dict[str, harness.Target] = {
    "ledger_fills_per_s": (">=", 100_000),
    "chain_fills_per_s": (">=", 2_000),
}
CHAIN_TARGETS = ("chain_fills_per_s",)  # left out when the chain part cannot run here


def run(quick: bool) -> dict[str, Any]:
    from benchmarks import settlement_ledger

    result = harness.start(quick)
    t = time.perf_counter()
    result |= settlement_ledger.run(quick)
    result["ledger_measurement_s"] = round(time.perf_counter() - t, 1)
    try:
        from benchmarks import settlement_chain
    except ImportError as exc:
        result["chain_missing"] = f"benchmarks.settlement_chain not importable: {exc}"
    else:
        t = time.perf_counter()
        result |= settlement_chain.run(quick)
        result["chain_measurement_s"] = round(time.perf_counter() - t, 1)
    return harness.finish(result, targets=TARGETS, optional_targets=CHAIN_TARGETS)


def print_table(result: dict[str, Any]) -> None:
    from benchmarks import settlement_ledger

    settlement_ledger.print_table(result)
    rows: list[tuple[str, str]] = [
        (key, harness.fmt(result[key]))
        for key in ("chain_fills_per_s", "fills_per_transaction")
        if key in result
    ]
    if "chain_missing" in result:
        rows.append(("chain", result["chain_missing"]))
    harness.print_measures("Settlement", rows)


def _from_args(args: argparse.Namespace, _progress: Callable[[str], None]) -> dict[str, Any]:
    return run(args.quick)


def main(argv: list[str] | None = None) -> int:
    return harness.main("settlement", _from_args, print_table, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
