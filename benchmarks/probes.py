"""Measurements that need a fresh interpreter, and the process facts around them.

The JIT compile is only cold in a process that has never loaded the kernel, and a
book's memory is only readable in a process that holds nothing else, so both run as
``python -c`` children of the benchmark, against a NUMBA_CACHE_DIR it chooses.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent


# Runs in a fresh interpreter: the memory the many_instruments prefill costs, measured
# without the rest of the benchmark's arrays in the same process.
MEMORY_PROBE = """
import contextlib, json, sys
from benchmarks.probes import own_peak_rss_mb, rss_mb
from benchmarks.workloads import instrument_spec, many_instruments_prefill, probe_commands
from matching.fast import FastBook
warm = FastBook()
warm.add_instrument(instrument_spec(0))
warm.process(probe_commands())
w = many_instruments_prefill(int(sys.argv[1]), int(sys.argv[2]))
before = rss_mb()
# Restart the peak (VmHWM) here, where the kernel allows it: generating the rows is not
# the book's cost.
with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
    f.write("5")
book = w.build(FastBook)
orders = len(w.prefill)
del w  # the prefill's command rows: part of the peak, not of the book
print(json.dumps({
    "orders": orders,
    "rss_before_mb": round(before, 1),
    "rss_after_prefill_mb": round(rss_mb(), 1),
    "peak_rss_mb": round(own_peak_rss_mb(), 1),  # since just before the build
    "book_arrays_mb": round(sum(a.nbytes for a in book.state) / 2**20, 1),
}))
"""

# Runs in a fresh interpreter: import the fast book and push one command of each kind
# through it, one per call, which compiles (or loads) every path of the kernel.
JIT_PROBE = """
import time
t0 = time.perf_counter()
import numba, numpy
t1 = time.perf_counter()
from matching.fast import FastBook
from benchmarks.workloads import instrument_spec, probe_commands
book = FastBook()
book.add_instrument(instrument_spec(0))
for row in probe_commands():
    book.process(row.reshape(1, -1))
print(t1 - t0, time.perf_counter() - t1)
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def own_peak_rss_mb() -> float:
    """Peak RSS of this process's own address space (VmHWM). Unlike ru_maxrss, which a
    spawned child inherits from its parent's peak at fork, it starts afresh at exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


def start_probe(code: str, cache_dir: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def measure_prefill_memory(cache_dir: str, instruments: int, per_instrument: int) -> dict[str, Any]:
    """RSS of a fresh process before and after the many_instruments prefill."""
    proc = start_probe(MEMORY_PROBE, cache_dir, str(instruments), str(per_instrument))
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        return {"error": stderr.strip().splitlines()[-1:]}
    return orjson.loads(stdout)


def finish_jit_probe(proc: subprocess.Popen[str], label: str) -> dict[str, Any]:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        return {f"jit_{label}_s": None, f"jit_{label}_error": stderr.strip().splitlines()[-1:]}
    import_s, jit_s = (float(v) for v in stdout.split())
    return {f"jit_{label}_s": round(jit_s, 3), f"jit_{label}_numba_import_s": round(import_s, 3)}


def matching_mtimes() -> list[float]:
    return [p.stat().st_mtime for p in sorted((REPO / "matching").glob("*.py"))]
