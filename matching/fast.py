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

MAX_INSTRUMENT_ID = 1 << 20
INITIAL_EVENT_ROWS = 16384


class FastBook(OrderBook):
    def __init__(self, config: BookConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.state: tuple = k.new_state(
            cfg.initial_orders, cfg.initial_accounts, 16, cfg.max_orders, cfg.max_accounts
        )
        self.events_buffer = np.zeros((INITIAL_EVENT_ROWS, c.N_EVENT_FIELDS), dtype=np.int64)
        self._specs: dict[int, InstrumentSpec] = {}

    # --- interface ---------------------------------------------------------------------
    def add_instrument(self, spec: InstrumentSpec) -> None:
        iid = spec.instrument_id
        if iid in self._specs:
            raise ValueError(f"instrument {iid} is already listed")
        if iid >= MAX_INSTRUMENT_ID:
            raise ValueError(f"instrument id {iid} is above the limit {MAX_INSTRUMENT_ID - 1}")
        if spec.ticks > k.MAX_TICKS:
            raise ValueError(
                f"instrument {iid} has {spec.ticks} prices; the limit is {k.MAX_TICKS}"
            )
        if iid >= self._mem[k.H_BOOK_CAP]:
            self.state = k.grow_books(self.state, iid + 1)
        w2, w1 = k.bitmap_shape(spec.ticks)
        words = w2 + 2 * w1  # per side: level 2, level 1, chunk directory
        hwm = int(self._mem[k.G_BITMAP_HWM])
        if hwm + 2 * words > self._mem[k.H_BITMAP_CAP]:
            self.state = k.grow_bitmaps(self.state, hwm + 2 * words)
        self._mem[k.G_BITMAP_HWM] = hwm + 2 * words
        bitmaps = k.arena_views(self.state)["bitmaps"][:, 0]
        for side_base in (hwm, hwm + words):
            bitmaps[side_base + w2 + w1 : side_base + words] = k.EMPTY  # no chunks yet
        row = k.arena_views(self.state)["books"][iid]
        row[:] = 0
        row[k.B_ACTIVE] = 1
        row[k.B_TICK] = spec.tick_size
        row[k.B_LOT] = spec.lot_size
        row[k.B_MIN_PRICE] = spec.min_price
        row[k.B_MAX_PRICE] = spec.max_price
        row[k.B_MIN_QTY] = spec.min_qty
        row[k.B_MAX_QTY] = spec.max_qty
        row[k.B_TICKS] = spec.ticks
        row[k.B_BITMAP : k.B_BITMAP + 2] = (hwm, hwm + words)
        row[k.B_BEST : k.B_BEST + 2] = k.EMPTY
        row[k.B_BEST_LEVEL : k.B_BEST_LEVEL + 2] = k.EMPTY
        self._specs[iid] = spec

    def process(self, commands: np.ndarray) -> np.ndarray:
        cmds = np.ascontiguousarray(commands, dtype=np.int64)
        if cmds.ndim != 2 or cmds.shape[1] != c.N_COMMAND_FIELDS:
            raise ValueError(f"commands must have shape (n, {c.N_COMMAND_FIELDS})")
        drained: list[np.ndarray] = []
        n, start, end = 0, 0, cmds.shape[0]
        while True:
            status, start, ev, n = k.run_batch(
                self.state, cmds, start, end, self.events_buffer, np.int64(n)
            )
            if status == k.DONE:
                break
            if status != k.NEED_EVENT_ROOM:
                self._grow(status, cmds[start])
            elif n:
                drained.append(ev[:n].copy())
                n = 0
            else:  # one command may write more rows than the whole buffer holds
                self.events_buffer = np.zeros((2 * len(ev), c.N_EVENT_FIELDS), dtype=np.int64)
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
        start = 0
        while True:
            status, start = k.load_orders(self.state, rows, start)
            if status == k.DONE:
                return
            self._grow(status, None if status != k.GROW_ACCOUNTS else rows[start])

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

    def reserve(self, orders: int, accounts: int) -> None:
        """Grow the pools up front so that timed runs never stop to grow."""
        while self._mem[k.H_ORDER_CAP] < min(orders, self.config.max_orders):
            self._grow(k.GROW_ORDERS, None)
        if accounts > self._mem[k.H_ACCOUNT_CAP]:
            self.state = k.grow_accounts(self.state, min(accounts, self.config.max_accounts))

    # --- growth ------------------------------------------------------------------------
    @property
    def _mem(self) -> np.ndarray:
        return self.state[0]

    def _require(self, instrument: int) -> None:
        if instrument not in self._specs:
            raise KeyError(f"unknown instrument {instrument}")

    def _grow(self, status: int, row: np.ndarray | None) -> None:
        if status == k.GROW_ORDERS:
            cap = int(self._mem[k.H_ORDER_CAP])
            self.state = k.grow_orders(self.state, min(2 * cap, self.config.max_orders))
        elif status == k.GROW_CHUNKS:
            self.state = k.grow_chunks(self.state)
        elif status == k.GROW_LEVELS:
            self.state = k.grow_levels(self.state)
        elif status == k.GROW_ACCOUNTS:
            account = int(row[c.C_ACCOUNT if row.shape[0] == c.N_COMMAND_FIELDS else c.S_ACCOUNT])
            self.state = k.grow_accounts(self.state, account + 1)
        else:
            raise RuntimeError(f"kernel returned unknown status {status}")
