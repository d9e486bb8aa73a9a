"""Commands to the engine and their outcome, found by reference.

Deposits and withdrawals reach the engine as ``Deposit``/``Withdraw`` commands carrying an
int64 ``ref``; the ``Deposited``/``Withdrawn`` event echoes it (column E_TRADE_ID) and a
refusal carries it in E_ORDER_ID. After a crash between submitting a command and recording
its outcome, the outcome is looked up by ``ref`` in the engine's event log: if it is not
there, the command never reached the journal and may be submitted again.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from exchange.codes import CommandKind, EventKind
from exchange.commands import Command
from matching import codes as mc

Submit = Callable[[np.ndarray], np.ndarray | Awaitable[np.ndarray]]
EngineSeq = Callable[[], int]  # the engine's last sequenced command (``Engine.last_seq``)


class EventSource(Protocol):
    """The engine's event stream (``exchange.event_log.EventLog``)."""

    @property
    def last_seq(self) -> int: ...

    def read_after(self, seq: int, max_rows: int = 65536) -> np.ndarray: ...


_DONE = {
    CommandKind.DEPOSIT: EventKind.DEPOSITED,
    CommandKind.WITHDRAW: EventKind.WITHDRAWN,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    seq: int
    ok: bool
    reason: int  # exchange.codes.RejectCode when refused
    amount: int


async def submit_command(submit: Submit, command: Command) -> np.ndarray:
    """Submit one command; its event rows (sync or async ``submit``)."""
    result = submit(np.stack([command.to_row()]))
    if inspect.isawaitable(result):
        result = await result
    return np.asarray(result, dtype=np.int64).reshape(-1, mc.N_EVENT_FIELDS)


def outcomes(rows: np.ndarray, kind: CommandKind, refs: Iterable[int]) -> dict[int, Outcome]:
    """The outcome of each ``kind`` command with one of ``refs`` among ``rows``."""
    wanted = np.fromiter(refs, dtype=np.int64)
    if len(rows) == 0 or len(wanted) == 0:
        return {}
    done = (rows[:, mc.E_KIND] == _DONE[kind]) & np.isin(rows[:, mc.E_TRADE_ID], wanted)
    refused = (
        (rows[:, mc.E_KIND] == EventKind.COMMAND_REJECTED)
        & (rows[:, mc.E_TRADE_ID] == kind)
        & np.isin(rows[:, mc.E_ORDER_ID], wanted)
    )
    out: dict[int, Outcome] = {}
    for r in rows[done].tolist():
        out[r[mc.E_TRADE_ID]] = Outcome(r[mc.E_SEQ], True, 0, r[mc.E_QTY])
    for r in rows[refused].tolist():
        out[r[mc.E_ORDER_ID]] = Outcome(r[mc.E_SEQ], False, r[mc.E_REASON], r[mc.E_QTY])
    return out


async def find_outcomes(
    events: EventSource,
    kind: CommandKind,
    refs: set[int],
    after_seq: int,
    *,
    until: int | None = None,
    timeout: float = 30.0,
    chunk: int = 65536,
) -> dict[int, Outcome]:
    """Scan the event log after ``after_seq`` for the outcomes of ``refs``.

    ``until`` is the engine's last seq: the log is appended a moment after the engine ran a
    batch, so absence means "never journaled" only once the log has caught up with it.
    """
    if until is not None:
        deadline = time.monotonic() + timeout
        while events.last_seq < until:
            if time.monotonic() > deadline:
                raise TimeoutError(f"event log at seq {events.last_seq}, the engine at {until}")
            await asyncio.sleep(0.005)
    found: dict[int, Outcome] = {}
    seq = after_seq
    head = events.last_seq
    while seq < head and len(found) < len(refs):
        rows = events.read_after(seq, chunk)
        if len(rows) == 0:
            break
        found.update(outcomes(rows, kind, refs - set(found)))
        seq = int(rows[-1, mc.E_SEQ])
    return found
