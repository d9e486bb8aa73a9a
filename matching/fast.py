"""The fast order book: the numba kernels of ``matching.kernel`` behind the book interface.

Python here only owns the arrays: it grows a pool when the kernel stops before a command
that needs more room (the command is then re-run, nothing half-applied), and it turns
queries into kernel calls. All matching happens in compiled code.
"""

from __future__ import annotations

import numpy as np

from matching import codes as c
from matching import kernel as k
from matching.api import OrderBook
from matching.codes import Side
from matching.snapshot import BookSnapshot, spec_row
from matching.spec import BookConfig, InstrumentSpec

INITIAL_EVENT_ROWS = 16384
MAX_RESERVED_EVENT_ROWS = 1 << 18  # 31 MiB: batches beyond that drain the buffer as they go


def _event_buffer(rows: int) -> np.ndarray:
    """Written through once, so that no page fault lands in the middle of a batch."""
    buffer = np.empty((rows, c.N_EVENT_FIELDS), dtype=np.int64)
    buffer.fill(0)
    return buffer


def _pow2_above(n: int) -> int:
    """The smallest power of two greater than ``n``: room for ``n`` and a free slot."""
    return 1 << int(n).bit_length()


class FastBook(OrderBook):
    def __init__(self, config: BookConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.state: k.BookState = k.new_state(
            cfg.initial_orders,
            cfg.initial_accounts,
            cfg.initial_instruments,
            cfg.max_orders,
            cfg.max_accounts,
        )
        self.events_buffer = _event_buffer(INITIAL_EVENT_ROWS)
        self._specs: dict[int, InstrumentSpec] = {}

    # --- interface ---------------------------------------------------------------------
    def add_instrument(self, spec: InstrumentSpec) -> None:
        iid = spec.instrument_id
        if iid in self._specs:
            raise ValueError(f"instrument {iid} is already listed")
        self.state = k.add_book(
            self.state,
            iid,
            (spec.tick_size, spec.lot_size, spec.min_price, spec.max_price)
            + (spec.min_qty, spec.max_qty, spec.ticks),
        )
        self._specs[iid] = spec

    def process(self, commands: np.ndarray) -> np.ndarray:
        cmds = np.ascontiguousarray(commands, dtype=np.int64)
        if cmds.ndim != 2 or cmds.shape[1] != c.N_COMMAND_FIELDS:
            raise ValueError(f"commands must have shape (n, {c.N_COMMAND_FIELDS})")
        drained: list[np.ndarray] = []
        self.reserve_events(cmds.shape[0])
        n, start, end = 0, 0, cmds.shape[0]
        while True:
            status, start, _, n = k.run_batch(
                self.state, cmds, start, end, self.events_buffer, np.int64(n)
            )
            if status == k.DONE:
                break
            if status == k.NEED_EVENT_ROOM:
                n = self.make_event_room(n, drained)
            else:
                self.grow(status, int(cmds[start, c.C_ACCOUNT]))
        return self.collect_events(n, drained)

    def reserve_events(self, commands: int) -> None:
        """Size the event buffer for a batch of ``commands`` (about two events each, up to
        ``MAX_RESERVED_EVENT_ROWS``), so a typical batch runs without stopping to drain it
        and its events are copied out once."""
        want = min(2 * commands, MAX_RESERVED_EVENT_ROWS)
        if len(self.events_buffer) < want:
            rows = len(self.events_buffer)
            while rows < want:
                rows *= 2
            self.events_buffer = _event_buffer(rows)

    def make_event_room(self, n: int, drained: list[np.ndarray]) -> int:
        """Set aside the ``n`` event rows written so far (returns the rows now in use, 0);
        if there are none, double the buffer: one command may need more than it holds."""
        if n:
            drained.append(self.events_buffer[:n].copy())
        else:
            self.events_buffer = _event_buffer(2 * len(self.events_buffer))
        return 0

    def collect_events(self, n: int, drained: list[np.ndarray]) -> np.ndarray:
        """Everything set aside plus the buffer's first ``n`` rows, as one array."""
        drained.append(self.events_buffer[:n].copy())
        return drained[0] if len(drained) == 1 else np.concatenate(drained)

    def snapshot(self) -> BookSnapshot:
        g = self._mem
        specs = [spec_row(self._specs[i]) for i in sorted(self._specs)]
        return BookSnapshot(
            np.array(specs, dtype=np.int64).reshape(-1, 7),
            k.snapshot_orders(self.state),
            int(g[k.G_TRADE_ID]),
            int(g[k.G_NOW]),
        )

    def _load_orders(self, snapshot: BookSnapshot) -> None:
        g = self._mem
        g[k.G_TRADE_ID], g[k.G_NOW] = snapshot.trade_id, snapshot.now
        rows = np.ascontiguousarray(snapshot.orders, dtype=np.int64)
        self._size_for(rows)
        start = 0
        while True:
            status, start = k.load_orders(self.state, rows, start)
            if status == k.DONE:
                return
            self.grow(status, int(rows[start, c.S_ACCOUNT]))

    def _size_for(self, rows: np.ndarray) -> None:
        """Grow the arena once to what ``rows`` (snapshot orders) need: orders, price
        levels and bitmap chunks (one per book side and 4,096 ticks). Growing at every
        doubling instead copies the whole arena a dozen times for a million orders."""
        if not len(rows):
            return
        instr = rows[:, c.S_INSTRUMENT]
        if not all(int(i) in self._specs for i in np.unique(instr).tolist()):
            return  # load_orders grows (or refuses) as it goes
        n = max(self._specs) + 1
        base, tick = np.zeros(n, np.int64), np.ones(n, np.int64)
        for iid, spec in self._specs.items():
            base[iid], tick[iid] = spec.min_price, spec.tick_size
        ticks = (rows[:, c.S_PRICE] - base[instr]) // tick[instr]
        book_side = (instr * 2 + rows[:, c.S_SIDE]) << 40
        levels = len(np.unique(book_side | ticks))
        chunks = len(np.unique(book_side | (ticks >> 12)))
        self.state = k.grow_to(
            self.state,
            min(_pow2_above(len(rows)), self.config.max_orders),
            _pow2_above(levels),
            _pow2_above(chunks),
        )

    def depth(self, instrument: int, levels: int = 10) -> tuple[np.ndarray, np.ndarray]:
        self._require(instrument)
        return (
            k.depth(self.state, instrument, int(Side.BUY), levels),
            k.depth(self.state, instrument, int(Side.SELL), levels),
        )

    def level_orders(self, instrument: int, side: Side, price: int) -> list[int]:
        self._require(instrument)
        return k.level_order_ids(self.state, instrument, int(side), price).tolist()

    def open_order_count(self) -> int:
        return int(self._mem[k.G_LIVE])

    def order(self, order_id: int) -> np.ndarray | None:
        row = k.order_row(self.state, np.int64(order_id))
        return row if len(row) else None

    def account_orders(self, account: int, instrument: int = -1) -> np.ndarray:
        return k.account_order_rows(self.state, np.int64(account), np.int64(instrument))

    # --- growth ------------------------------------------------------------------------
    @property
    def _mem(self) -> np.ndarray:
        return self.state.mem

    def _require(self, instrument: int) -> None:
        if instrument not in self._specs:
            raise KeyError(f"unknown instrument {instrument}")

    def grow(self, status: int, account: int) -> None:
        """Make room for the command ``run_batch`` stopped at with a GROW_* ``status``
        (``account`` is that command's account); the caller then runs it again. A caller
        that drives the kernel itself (``exchange.core``) hands its statuses here."""
        if status == k.GROW_ORDERS:
            cap = int(self._mem[k.H_ORDER_CAP])
            self.state = k.grow_orders(self.state, min(2 * cap, self.config.max_orders))
        elif status == k.GROW_CHUNKS:
            self.state = k.grow_chunks(self.state)
        elif status == k.GROW_LEVELS:
            self.state = k.grow_levels(self.state)
        elif status == k.GROW_ACCOUNTS:
            self.state = k.grow_accounts(self.state, account + 1)
        else:
            raise RuntimeError(f"kernel returned unknown status {status}")
