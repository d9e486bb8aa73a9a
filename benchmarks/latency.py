"""Open-loop latency of the fast book at a constant offered rate, without coordinated omission.

Command ``i`` is due at ``t0 + i / rate`` whatever happened before it. A compiled driver
spins until the next command is due, then drains every command whose arrival time has
passed in one ``run_batch`` call (as an engine empties its queue), reads the clock and
charges each of them ``completion - intended arrival``. A stall therefore shows up in the
latency of every command that queued behind it, which a closed loop (send, wait, send)
would hide by simply sending less while the engine is slow.

The clock is libc's ``clock_gettime(CLOCK_MONOTONIC)`` called through ctypes from nopython
code, about 22 ns a read here. A ctypes function is baked into the compiled code as an
address, so the driver cannot go in numba's on-disk cache and is compiled in each process
(``compile_driver`` reports how long that takes). Not caching it is also what we want: a
cached caller would keep a stale copy of ``run_batch`` after the kernel changes.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from matching import codes as c
from matching import kernel
from matching.fast import FastBook

CLOCK_MONOTONIC = 1
NS_PER_S = 1_000_000_000
DONE = 0  # run_batch status: every command processed; anything else: a pool must grow

_libc = ctypes.CDLL(None)
_clock_gettime = _libc.clock_gettime
_clock_gettime.argtypes = [ctypes.c_int, ctypes.c_void_p]
_clock_gettime.restype = ctypes.c_int


@njit(cache=False)
def _now_ns(buf: np.ndarray) -> int:
    _clock_gettime(CLOCK_MONOTONIC, buf.ctypes.data)
    return buf[0] * NS_PER_S + buf[1]


def _make_driver(run_batch: Callable) -> Callable:
    """Compile-time binding of the kernel entry point into the driver loop."""

    @njit(cache=False)
    def drive(state, cmds, start, t0, rate, ev, lat, stats):
        """Process ``cmds[start:]`` open loop; command ``k`` arrives at ``t0 + k*1e9/rate``.

        Returns ``(status, next index, event buffer)``. A status other than DONE means the
        command at ``next index`` needs a pool to grow: the caller handles it and calls
        again from the index after it, with the same ``t0``. ``stats`` accumulates
        [batches, largest batch, commands].
        """
        buf = np.zeros(2, dtype=np.int64)
        n = cmds.shape[0]
        i = start
        while i < n:
            due = t0 + (i * NS_PER_S) // rate
            t = _now_ns(buf)
            while t < due:
                t = _now_ns(buf)
            end = i + 1
            while end < n and t0 + (end * NS_PER_S) // rate <= t:
                end += 1
            # Events are dropped after each batch, as an engine hands them to its outputs.
            # (An int64 zero, not a literal 0: that would compile a second run_batch.)
            status, stop, ev, _ = run_batch(state, cmds, i, end, ev, np.int64(0))
            done = _now_ns(buf)
            for k in range(i, stop):
                lat[k] = done - (t0 + (k * NS_PER_S) // rate)
            stats[0] += 1
            stats[1] = max(stats[1], stop - i)
            stats[2] += stop - i
            if status != DONE:
                return status, stop, ev
            i = end
        return DONE, n, ev

    return drive


_DRIVER: Callable | None = None


def compile_driver() -> float:
    """Compile the driver on a throwaway book; return the seconds it took."""
    global _DRIVER
    t = time.perf_counter()
    _DRIVER = _make_driver(kernel.run_batch)
    _now_ns(np.zeros(2, dtype=np.int64))
    book = FastBook()
    cmds = np.zeros((1, c.N_COMMAND_FIELDS), dtype=np.int64)
    cmds[0, c.C_KIND] = c.BookCommandKind.CLOCK_TICK
    lat = np.zeros(1, dtype=np.int64)
    stats = np.zeros(3, dtype=np.int64)
    _DRIVER(book.state, cmds, 0, time.monotonic_ns(), 1_000_000, book.events_buffer, lat, stats)
    return time.perf_counter() - t


@dataclass(frozen=True)
class LatencyRun:
    """Per-command latencies of one open-loop run, plus how the engine batched them."""

    latency_ns: np.ndarray
    batches: int
    largest_batch: int
    pool_growths: int
    seconds: float

    def summary_us(self) -> dict[str, float]:
        p50, p99, p999 = np.percentile(self.latency_ns, [50, 99, 99.9])
        return {
            "p50": round(float(p50) / 1e3, 3),
            "p99": round(float(p99) / 1e3, 3),
            "p999": round(float(p999) / 1e3, 3),
            "max": round(float(self.latency_ns.max()) / 1e3, 3),
            "mean_batch": round(len(self.latency_ns) / max(1, self.batches), 2),
            "largest_batch": self.largest_batch,
            "pool_growths": self.pool_growths,
            "commands": len(self.latency_ns),
        }


def run_open_loop(book: FastBook, cmds: np.ndarray, rate: int) -> LatencyRun:
    """Offer ``cmds`` to ``book`` at ``rate`` commands per second and time each one.

    Pools should be sized so they never grow (``Workload.config``); if one must, the
    driver stops, Python grows it by processing that one command through ``book.process``,
    and the stall is charged to the commands behind it like any other.
    """
    if _DRIVER is None:
        compile_driver()
    assert _DRIVER is not None
    cmds = np.ascontiguousarray(cmds, dtype=np.int64)
    n = len(cmds)
    lat = np.zeros(n, dtype=np.int64)
    stats = np.zeros(3, dtype=np.int64)
    growths = 0
    start = 0
    t0 = time.monotonic_ns() + 1_000_000  # first command due 1 ms from now
    while start < n:
        status, stop, ev = _DRIVER(
            book.state, cmds, start, t0, rate, book.events_buffer, lat, stats
        )
        book.events_buffer = ev
        if status == DONE:
            break
        growths += 1
        book.process(cmds[stop : stop + 1])  # grows the pool, then applies the command
        lat[stop] = time.monotonic_ns() - (t0 + (stop * NS_PER_S) // rate)
        start = stop + 1
    seconds = (time.monotonic_ns() - t0) / 1e9
    return LatencyRun(lat, int(stats[0]), int(stats[1]), growths, seconds)
