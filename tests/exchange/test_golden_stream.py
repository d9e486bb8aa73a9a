"""A fixed command stream must keep producing the same events and the same state.

The hashes below were taken before the foundation refactor (typed ids, merged codes,
named kernel seams): any change to what the core emits or keeps shows up here first.
"""

from __future__ import annotations

from test_engine import flow_batches, run_uninterrupted

STATE_HASH = "77b19bbc1321fa713286e494688226d58ab9118d052c9d56010159e5eaf83b9c"
EVENT_HASH = "b57bac8f33cf2eb1c954b1c737c95308635c7f7a6ebe5ca05419294ee4548bd1"


def test_fixed_command_stream_hashes_are_unchanged() -> None:
    state, events = run_uninterrupted(flow_batches(20_000, seed=11, size=500))
    assert (state, events) == (STATE_HASH, EVENT_HASH)
