"""Instrument status moves: one table (``risk.codes.STATUS_TRANSITIONS``), obeyed by both cores."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from exchange import commands as C
from exchange.codes import EventKind, RejectCode
from exchange.core import ExchangeCore
from exchange.ids import InstrumentId
from exchange.reference_core import ReferenceCore
from matching import codes as mc
from risk.codes import (
    HIGHEST_STATUS,
    STATUS_TRANSITIONS,
    TRANSITION_BITS,
    InstrumentState,
    can_transition,
)

TICK = 1_000
TS = 1_800_000_000 * 10**9
TARGETS = range(HIGHEST_STATUS + 2)  # every status, and 0 and one past the highest: no status


def test_the_kernel_bits_are_the_table() -> None:
    assert set(STATUS_TRANSITIONS) == set(InstrumentState)
    assert HIGHEST_STATUS == max(InstrumentState) == len(TRANSITION_BITS) - 1
    for old in InstrumentState:
        for new in InstrumentState:
            assert bool(TRANSITION_BITS[old] >> new & 1) == can_transition(old, new)
    assert TRANSITION_BITS[0] == 0


def _path(to: InstrumentState) -> list[InstrumentState]:
    """Allowed moves from PRE_OPEN (a listing's first status) to ``to``."""
    paths = {InstrumentState.PRE_OPEN: [InstrumentState.PRE_OPEN]}
    queue = deque([InstrumentState.PRE_OPEN])
    while queue:
        at = queue.popleft()
        for nxt in sorted(STATUS_TRANSITIONS[at]):
            if nxt not in paths:
                paths[nxt] = [*paths[at], nxt]
                queue.append(nxt)
    return paths[to]


def _status(instrument: int, status: int) -> np.ndarray:
    row = C.SetInstrumentStatus(
        instrument=InstrumentId(instrument), status=InstrumentState.TRADING
    ).to_row()
    row[mc.C_SIDE] = status  # may be no status at all
    return row


@pytest.mark.parametrize("core_cls", [ReferenceCore, ExchangeCore])
def test_both_cores_allow_exactly_the_moves_of_the_table(core_cls: type) -> None:
    core = core_cls()
    setup: list[np.ndarray] = []
    attempts: dict[int, tuple[InstrumentState, int]] = {}  # instrument -> (from, to)
    for old in InstrumentState:
        for new in TARGETS:
            instrument = 1 + len(attempts)
            attempts[instrument] = (old, new)
            listing = C.ListInstrument(
                instrument=InstrumentId(instrument),
                tick_size=TICK,
                lot_size=1,
                min_price=TICK,
                max_price=1_000 * TICK,
                min_qty=1,
                max_qty=100,
                status=InstrumentState.PRE_OPEN,
            )
            setup.append(listing.to_row())
            setup += [_status(instrument, step) for step in _path(old)[1:]]
    setup_rows = np.stack(setup)
    setup_rows[:, mc.C_SEQ] = np.arange(1, len(setup) + 1)
    setup_rows[:, mc.C_TS] = TS
    events = core.process(setup_rows)
    assert not np.isin(events[:, mc.E_KIND], [EventKind.COMMAND_REJECTED]).any()

    tries = np.stack([_status(i, new) for i, (_, new) in attempts.items()])
    tries[:, mc.C_SEQ] = np.arange(len(setup) + 1, len(setup) + 1 + len(tries))
    tries[:, mc.C_TS] = TS
    events = np.asarray(core.process(tries))
    assert len(events) == len(attempts)
    for row in events:
        old, new = attempts[int(row[mc.E_INSTRUMENT])]
        allowed = 1 <= new <= HIGHEST_STATUS and can_transition(old, InstrumentState(new))
        if allowed:
            assert row[mc.E_KIND] == EventKind.INSTRUMENT_STATUS_CHANGED, (old, new)
            assert (row[mc.E_SIDE], row[mc.E_QTY]) == (new, old)
        else:
            assert row[mc.E_KIND] == EventKind.COMMAND_REJECTED, (old, new)
            assert row[mc.E_REASON] == RejectCode.INVALID_STATUS_TRANSITION
