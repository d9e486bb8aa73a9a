"""The engine's batch kernel: risk and matching over one batch of commands, in numba.

For each sequenced command: time moves first (GTD orders that are due expire and release
what they reserved), then risk checks an order the book finds well formed, then the book
matches it and risk books the events it wrote. Risk's own commands (deposits, oracle
prices, limits, ...) run in the same loop, so one compiled call carries a whole batch
from the journal to the event buffer. Nothing here reads a clock or does I/O.

Like ``matching.kernel.run_batch``, it stops before a command that needs more room and
returns a status; Python grows the arrays (or drains the events) and calls again. A
stopped command has changed nothing, so re-running it is exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from matching import codes as mc
from matching import kernel as mk
from risk import codes as r
from risk import kernel as rk
from risk.state import RiskArrays

DONE = mk.DONE
NEED_EVENT_ROOM = mk.NEED_EVENT_ROOM
NEEDS_PYTHON = 20  # LIST_INSTRUMENT: the book arrays must grow in Python

NEW_ORDER = int(mc.BookCommandKind.NEW_ORDER)
CANCEL_ORDER = int(mc.BookCommandKind.CANCEL_ORDER)
REPLACE_ORDER = int(mc.BookCommandKind.REPLACE_ORDER)
MASS_CANCEL = int(mc.BookCommandKind.MASS_CANCEL)
CLOCK_TICK = int(mc.BookCommandKind.CLOCK_TICK)
LIST_INSTRUMENT = int(r.RiskCommandKind.LIST_INSTRUMENT)
FIRST_RISK_KIND = int(r.RiskCommandKind.OPEN_ACCOUNT)
EV_REJECTED = int(mc.BookEventKind.ORDER_REJECTED)
# How far ahead the kernel prefetches: hash slots AHEAD commands before, rows half-way.
AHEAD = 16


def tick_row() -> np.ndarray:
    """Scratch row the kernel uses to move the book's clock."""
    return np.zeros((1, mc.N_COMMAND_FIELDS), dtype=np.int64)


@njit(cache=True, inline="always")
def _best_price(m, instr: int, s: int) -> int:
    b = m[mk.H_BOOKS] + instr * mk.BF
    t = m[b + mk.B_BEST + s]
    if t < 0:
        return 0
    return m[b + mk.B_MIN_PRICE] + t * m[b + mk.B_TICK]


@njit(cache=True, inline="always")
def _reference(m, rs, instr: int) -> int:
    return rk.band_reference(rs, instr, _best_price(m, instr, 0), _best_price(m, instr, 1))


@njit(cache=True, inline="always")
def _order_reject(ev, n, cm, i, code):
    for f in range(mc.N_EVENT_FIELDS):
        ev[n, f] = 0
    ev[n, mc.E_SEQ] = cm[i, mc.C_SEQ]
    ev[n, mc.E_KIND] = EV_REJECTED
    ev[n, mc.E_INSTRUMENT] = cm[i, mc.C_INSTRUMENT]
    ev[n, mc.E_ORDER_ID] = cm[i, mc.C_ORDER_ID]
    ev[n, mc.E_ACCOUNT] = cm[i, mc.C_ACCOUNT]
    ev[n, mc.E_SIDE] = cm[i, mc.C_SIDE]
    ev[n, mc.E_PRICE] = cm[i, mc.C_PRICE]
    ev[n, mc.E_QTY] = cm[i, mc.C_QTY]
    ev[n, mc.E_REASON] = code
    return n + 1


@njit(cache=True, inline="always")
def _prefetch_ahead(m, rs, cm, i: int, end: int) -> None:
    """Start the dependent loads a later order command will make at random (hash slot,
    then the row it names: its position, its order, its price level), so they are cached
    when it runs. Without this, those misses were most of the kernel's time."""
    j = i + AHEAD
    if j < end:
        kind = cm[j, mc.C_KIND]
        if kind < FIRST_RISK_KIND:
            rk.prefetch_position_slot(rs, cm[j, mc.C_ACCOUNT], cm[j, mc.C_INSTRUMENT])
        if kind == NEW_ORDER or kind == CANCEL_ORDER or kind == REPLACE_ORDER:
            mk.prefetch_order_slot(m, cm[j, mc.C_ORDER_ID])  # a new id is checked unused
        if kind == NEW_ORDER or kind == REPLACE_ORDER:
            mk.prefetch_level_slot(m, cm[j, mc.C_INSTRUMENT], cm[j, mc.C_SIDE], cm[j, mc.C_PRICE])
    j = i + AHEAD // 2
    if j < end:
        kind = cm[j, mc.C_KIND]
        if kind < FIRST_RISK_KIND:
            rk.prefetch_position_row(rs, cm[j, mc.C_ACCOUNT], cm[j, mc.C_INSTRUMENT])
        if kind == CANCEL_ORDER or kind == REPLACE_ORDER:
            mk.prefetch_order_row(m, cm[j, mc.C_ORDER_ID])
        if kind == NEW_ORDER:
            mk.prefetch_level_row(m, cm[j, mc.C_INSTRUMENT], cm[j, mc.C_SIDE], cm[j, mc.C_PRICE])


@njit(cache=True, inline="always")
def _borrowed(rs):
    """Borrowed views carry no reference count: without them every inlined risk helper
    that picks an array out of ``rs`` pays an atomic incref/decref pair."""
    return RiskArrays(
        mk.borrow(rs.accounts),
        mk.borrow(rs.balances),
        mk.borrow(rs.instruments),
        mk.borrow(rs.assets),
        mk.borrow(rs.positions),
        mk.borrow(rs.pmap),
        mk.borrow(rs.globals),
    )


@njit(cache=True, nogil=True)  # the engine journals the batch in another thread meanwhile
def run_engine_batch(book, rs, cmds, start, end, ev, n, tick, max_accounts):
    """Process ``cmds[start:end]``; returns ``(status, next index, ev, events written)``.

    ``book`` is the book's ``matching.kernel.BookState``, ``rs`` the ``risk.state.RiskArrays``.
    """
    m = mk.borrow(book.mem)
    cm = mk.borrow(cmds)
    cap = ev.shape[0]
    rs = _borrowed(rs)
    g = rs.globals
    for i in range(start, end):
        _prefetch_ahead(m, rs, cm, i, end)
        need = rk.needs_growth(rs, cm, i)
        if need != 0:
            return need, i, ev, n
        ts = cm[i, mc.C_TS]
        if ts > g[r.G_NOW]:
            g[r.G_NOW] = ts
        if ts > m[mk.G_NOW] or mk.expiry_pending(m):
            tick[0, mc.C_SEQ] = cm[i, mc.C_SEQ]
            tick[0, mc.C_TS] = ts
            tick[0, mc.C_KIND] = CLOCK_TICK
            n0 = n
            status, _, ev, n = mk.run_batch(book, tick, np.int64(0), np.int64(1), ev, n)
            rk.apply_events(rs, ev, n0, n, 0, 0, 0)
            if status != DONE:
                return status, i, ev, n
        kind = cm[i, mc.C_KIND]
        if kind >= FIRST_RISK_KIND:
            if kind == LIST_INSTRUMENT:
                return NEEDS_PYTHON, i, ev, n
            if n + 1 > cap:
                return NEED_EVENT_ROOM, i, ev, n
            n = rk.run_command(rs, cm, i, ev, n, max_accounts)
            continue
        old_price = 0
        old_leaves = 0
        validated = False
        if kind == NEW_ORDER and mk.validate_new(m, cm, i) == 0:
            validated = True
            instr = cm[i, mc.C_INSTRUMENT]
            code = rk.check_new(
                rs,
                cm[i, mc.C_ACCOUNT],
                instr,
                cm[i, mc.C_SIDE],
                cm[i, mc.C_PRICE],
                cm[i, mc.C_QTY],
                _reference(m, rs, instr),
                g[r.G_NOW],
            )
            if code != 0:
                if n + 1 > cap:
                    return NEED_EVENT_ROOM, i, ev, n
                n = _order_reject(ev, n, cm, i, code)
                continue
        elif kind == REPLACE_ORDER:
            slot = mk.owned_slot(m, cm, i)
            if slot != mk.EMPTY:
                o = m[mk.H_ORDERS] + slot * mk.OF
                instr = mk.instrument_of(m, o)
                old_price = m[o + mk.O_PRICE]
                old_leaves = m[o + mk.O_SHOWN] + m[o + mk.O_HIDDEN]
                price = cm[i, mc.C_PRICE]
                qty = cm[i, mc.C_QTY]
                filled = m[o + mk.O_FILLED]
                b = m[mk.H_BOOKS] + instr * mk.BF
                if mk.check_price_qty(m, b, price, qty) == 0 and qty > filled:
                    code = rk.check_replace(
                        rs,
                        cm[i, mc.C_ACCOUNT],
                        instr,
                        mk.side_of(m, o),
                        old_price,
                        old_leaves,
                        price,
                        qty,
                        qty - filled,
                        _reference(m, rs, instr),
                        g[r.G_NOW],
                    )
                    if code != 0:
                        if n + 1 > cap:
                            return NEED_EVENT_ROOM, i, ev, n
                        n = rk.reject_command(ev, n, cm, i, code)
                        continue
        n0 = n
        status, _, ev, n = mk.run_batch(book, cm, np.int64(i), np.int64(i + 1), ev, n, validated)
        if status != DONE:
            return status, i, ev, n
        rk.apply_events(rs, ev, n0, n, cm[i, mc.C_PRICE], old_price, old_leaves)
    return DONE, end, ev, n
