"""``core_cpu`` pins only the calling thread, hands the other CPUs to helpers, and undoes
itself; on a one-CPU machine it pins nothing."""

from __future__ import annotations

import os
import threading

import pytest

from exchange.cpu_pinning import core_cpu, pin_helper


def test_core_thread_gets_one_cpu_and_helpers_the_rest() -> None:
    allowed = os.sched_getaffinity(0)
    seen: dict[str, set[int]] = {}

    def helper(cpus: frozenset[int]) -> None:
        seen["inherited"] = os.sched_getaffinity(0)
        pin_helper(cpus)
        seen["helper"] = os.sched_getaffinity(0)

    with core_cpu() as others:
        inside = os.sched_getaffinity(0)
        t = threading.Thread(target=helper, args=(others,))
        t.start()
        t.join()
    assert os.sched_getaffinity(0) == allowed
    if len(allowed) < 2:
        assert others == frozenset() and inside == allowed
        return
    assert inside == {min(allowed)}
    assert others == allowed - {min(allowed)}
    assert seen["inherited"] == inside  # a thread starts with its creator's CPUs ...
    assert seen["helper"] == set(others)  # ... until it pins itself to the helpers'


def test_pinning_is_undone_when_the_block_raises() -> None:
    allowed = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError, match="replay failed"), core_cpu():
        raise RuntimeError("replay failed")
    assert os.sched_getaffinity(0) == allowed
