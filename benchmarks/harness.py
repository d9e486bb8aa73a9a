"""What every benchmark shares: its command line, its report's frame, targets and tables.

A benchmark module measures; this module does the rest the same way for all of them:

- ``main`` parses ``--json`` / ``--quick`` (and a benchmark's own options), prints progress
  to stderr as ``[benchmarks.NAME] ...``, times the run (``total_s``) and prints the report
  as one JSON document or as rich tables, with the targets table last.
- ``start`` / ``finish`` frame the report: ``quick`` and ``machine`` (CPU, versions, load
  average at the start) first; then the benchmark's measurements; then ``targets`` (each
  ``{"target": ">= 1,000,000", "value": ..., "met": bool}``), ``peak_rss_mb``, the load
  average at the end and the notes. The benchmarks' ``run`` functions call them, so a
  report is the same whether it comes from the command line or from a test.
- ``ratio`` is how a figure is compared with the baseline measured in the same run: these
  2-core machines are shared and noisy, so a ratio is what compares across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from benchmarks import probes

Target = tuple[str, int | float]  # (">=" or "<=", bound)
Progress = Callable[[str], None]
Run = Callable[[argparse.Namespace, Progress], dict[str, Any]]


def machine_info() -> dict[str, Any]:
    """The machine and library versions behind a report, and its load when the run began."""
    import numba

    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other processes competing for the cores."""
    return [round(x, 2) for x in os.getloadavg()]


def start(quick: bool) -> dict[str, Any]:
    """The head of a report, taken before anything is measured."""
    return {"quick": quick, "machine": machine_info()}


def evaluate_targets(
    result: Mapping[str, Any], targets: Mapping[str, Target], *, optional: Collection[str] = ()
) -> dict[str, Any]:
    """Each target against its figure in ``result``. A figure that is missing (or None)
    did not meet its target, unless it is ``optional``: a part that could not run here
    (settlement's chain without the Solana packages) is left out instead."""
    return {
        key: verdict(target, result.get(key))
        for key, target in targets.items()
        if key not in optional or key in result
    }


def verdict(target: Target, value: Any) -> dict[str, Any]:
    """``{"target": ">= 100,000", "value": value, "met": bool}``; None never meets it."""
    op, bound = target
    if op not in (">=", "<="):
        raise ValueError(f"unknown comparison {op!r}")
    met = value is not None and (value >= bound if op == ">=" else value <= bound)
    return {"target": f"{op} {bound:,}", "value": value, "met": bool(met)}


def finish(
    result: dict[str, Any],
    *,
    targets: Mapping[str, Target] | None = None,
    optional_targets: Collection[str] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The tail of a report: targets (if the benchmark has any), peak RSS, the load
    average at the end, and the notes that say what each figure means."""
    if targets is not None:
        result["targets"] = evaluate_targets(result, targets, optional=optional_targets)
    result["peak_rss_mb"] = round(probes.peak_rss_mb(), 1)
    result["machine"]["load_average_at_end"] = load_average()
    if notes:
        result["notes"] = list(notes)
    return result


def ratio(value: float, baseline: float, digits: int) -> float:
    """``value`` over the baseline measured in the same run, rounded to ``digits``."""
    return round(value / baseline, digits)


# -- tables --------------------------------------------------------------------------------


def console(min_width: int = 100) -> Any:
    """A rich console at least ``min_width`` wide (pipes default to 80 columns, which
    truncates the names)."""
    from rich.console import Console

    out = Console()
    return out if out.width >= min_width else Console(width=min_width)


def fmt(value: Any) -> str:
    """A figure for a table: thousands separated, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}"


def print_measures(title: str, rows: Iterable[tuple[str, str]], min_width: int = 100) -> None:
    """A two-column table: what was measured, and the figure."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("measure")
    t.add_column("value", justify="right")
    for name, value in rows:
        t.add_row(name, value)
    console(min_width).print(t)


def print_targets(targets: Mapping[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="Targets")
    for col in ("metric", "target", "value", "met"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for key, v in targets.items():
        t.add_row(key, v["target"], fmt(v["value"]), "yes" if v["met"] else "NO")
    console().print(t)


# -- the command line ----------------------------------------------------------------------


def main(
    name: str,
    run: Run,
    table: Callable[[dict[str, Any]], None],
    *,
    description: str | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
) -> int:
    """``python -m benchmarks.NAME [--json] [--quick] ...``: run, then print the report.

    ``run(args, progress)`` returns the report (``start`` ... ``finish``); ``arguments``
    adds a benchmark's own options to the parser.
    """
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="smaller counts, under a minute")
    if arguments is not None:
        arguments(parser)
    args = parser.parse_args(argv)

    def progress(msg: str) -> None:
        print(f"[benchmarks.{name}] {msg}", file=sys.stderr, flush=True)

    t = time.perf_counter()
    result = run(args, progress)
    result["total_s"] = round(time.perf_counter() - t, 1)
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        table(result)
        if result.get("targets"):
            print_targets(result["targets"])
    return 0
