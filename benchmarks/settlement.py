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
import os
import sys
import time
from typing import Any

import orjson

from benchmarks import probes

TARGETS = {  # metric: (comparison, bound)
    "ledger_fills_per_s": (">=", 100_000),
    "chain_fills_per_s": (">=", 2_000),
}


def run(quick: bool) -> dict[str, Any]:
    from benchmarks import settlement_ledger

    result: dict[str, Any] = {"quick": quick, "machine": probes.machine_info()}
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
    result["targets"] = {
        key: {
            "target": f"{op} {bound:,}",
            "value": result[key],
            "met": bool(result[key] >= bound if op == ">=" else result[key] <= bound),
        }
        for key, (op, bound) in TARGETS.items()
        if key in result
    }
    result["peak_rss_mb"] = round(probes.peak_rss_mb(), 1)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from benchmarks import settlement_ledger

    settlement_ledger.print_table(result)
    t = Table(title="Settlement")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for key in ("chain_fills_per_s", "fills_per_transaction"):
        if key in result:
            t.add_row(key, f"{result[key]:,}")
    if "chain_missing" in result:
        t.add_row("chain", result["chain_missing"])
    for key, v in result["targets"].items():
        t.add_row(f"target {key} {v['target']}", "met" if v["met"] else "NOT MET")
    Console(width=max(100, Console().width)).print(t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.settlement", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="smaller counts, under a minute")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    result = run(args.quick)
    result["total_s"] = round(time.perf_counter() - t, 1)
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
