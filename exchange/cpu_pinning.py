"""A CPU of its own for the thread that runs the core, while helper threads work beside it.

Replay runs three threads on what is often a two-CPU machine: the core, the journal reader
and the event hasher. Left to the scheduler, a helper sometimes lands on the core's CPU
and the core waits. Pinning the core's thread to one CPU and the helpers to the others
(as LMAX-style engines pin their business-logic thread) keeps the core running. Where
thread affinity is not available, or there is a single CPU, nothing is pinned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def core_cpu() -> Iterator[frozenset[int]]:
    """Pin the calling thread to one CPU until the block ends; yields the CPUs left for
    helper threads (empty if nothing was pinned). Threads started inside the block
    inherit the pinning, so helpers call ``pin_helper`` first."""
    get = getattr(os, "sched_getaffinity", None)
    allowed = frozenset(get(0)) if get is not None else frozenset()
    if len(allowed) < 2:
        yield frozenset()
        return
    mine = min(allowed)
    os.sched_setaffinity(0, {mine})
    try:
        yield allowed - {mine}
    finally:
        os.sched_setaffinity(0, allowed)


def pin_helper(cpus: frozenset[int]) -> None:
    """Run the calling (helper) thread on ``cpus``; no-op if empty."""
    if cpus:
        os.sched_setaffinity(0, cpus)
