"""The exchange core of one shard: the order book and the risk arrays, one batch at a time.

``ExchangeCore.process`` takes sequenced command rows and returns event rows; it is the
deterministic part the journal replays (DESIGN principle 1). Python only grows arrays,
drains the event buffer and lists instruments; everything else happens inside
``exchange.engine_kernel.run_engine_batch``.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np

from exchange import engine_kernel as ek
from exchange import queries
from exchange.listing import decode_listing, listing_event
from exchange.queries import (
    AssetBalance,
    OpenOrder,
    PositionReservation,
    Reservations,
)
from matching import codes as mc
from matching import kernel as mk
from matching.fast import FastBook
from matching.snapshot import BookSnapshot
from matching.spec import BookConfig
from risk import codes as r
from risk import kernel as rk
from risk.codes import InstrumentState
from risk.config import RiskConfig
from risk.state import RiskState

# Positions ((account, instrument) rows) the risk arrays start with: 4 MiB with their map,
# so a busy shard does not rehash them at every doubling on its way up.
INITIAL_POSITIONS = 1 << 16


class ExchangeCore:
    """Books + risk for one shard; single writer, no clock, no I/O."""

    def __init__(self, risk: RiskConfig | None = None, book: BookConfig | None = None) -> None:
        self.risk_config = risk or RiskConfig()
        self.book = FastBook(book)
        self.risk = RiskState.create(self.risk_config, positions=INITIAL_POSITIONS)
        self._tick = ek.tick_row()

    @property
    def max_accounts(self) -> int:
        return self.book.config.max_accounts

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Run sequenced commands; returns their events in order."""
        cmds = np.ascontiguousarray(commands, dtype=np.int64)
        if cmds.ndim != 2 or cmds.shape[1] != mc.N_COMMAND_FIELDS:
            raise ValueError(f"commands must have shape (n, {mc.N_COMMAND_FIELDS})")
        drained: list[np.ndarray] = []
        self.book.reserve_events(cmds.shape[0])
        n, start, end = 0, 0, cmds.shape[0]
        max_accounts = np.int64(self.max_accounts)
        while True:
            status, start, ev, n = ek.run_engine_batch(
                self.book.state,
                self.risk.arrays,
                cmds,
                np.int64(start),
                np.int64(end),
                self.book.events_buffer,
                np.int64(n),
                self._tick,
                max_accounts,
            )
            if status == ek.DONE:
                break
            if status == ek.NEED_EVENT_ROOM:
                n = self.book.make_event_room(n, drained)
            elif status == ek.NEEDS_PYTHON:
                if n == len(ev):
                    n = self.book.make_event_room(n, drained)
                self.book.events_buffer[n] = self._list_instrument(cmds[start])
                n += 1
                start += 1
            elif status == rk.GROW_RISK_ACCOUNTS:
                self.risk.grow_accounts(int(cmds[start, mc.C_ACCOUNT]))
            elif status == rk.GROW_POSITIONS:
                self.risk.grow_positions()
            else:
                self.book.grow(status, int(cmds[start, mc.C_ACCOUNT]))
        return self.book.collect_events(n, drained)

    def _list_instrument(self, row: np.ndarray) -> np.ndarray:
        listing = decode_listing(row)
        if isinstance(listing, r.RiskReject):
            return listing_event(row, None, int(listing))
        iid = listing.spec.instrument_id
        if iid < self.risk.instruments.shape[0] and self.risk.instruments[iid, r.I_LISTED]:
            return listing_event(row, None, int(r.RiskReject.INSTRUMENT_EXISTS))
        self.book.add_instrument(listing.spec)
        if iid >= self.risk.instruments.shape[0]:
            self.risk.grow_instruments(iid)
        inst = self.risk.instruments[iid]
        inst[r.I_LISTED] = 1
        inst[r.I_STATUS] = int(listing.status)
        inst[r.I_REF_PRICE] = listing.reference_price
        inst[r.I_CUTOFF] = listing.cutoff_ts
        return listing_event(row, listing, 0)

    # -- state -------------------------------------------------------------------------------

    def state_hash(self) -> str:
        """Books and risk together; equal after an exact replay."""
        h = hashlib.blake2b(digest_size=32)
        h.update(self.book.state_hash().encode())
        h.update(self.risk.state_hash().encode())
        return h.hexdigest()

    def last_now(self) -> int:
        return int(self.risk.globals[r.G_NOW])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            book=np.frombuffer(self.book.snapshot().to_bytes(), np.uint8),
            risk=np.frombuffer(self.risk.to_bytes(), np.uint8),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, risk: RiskConfig | None = None, book: BookConfig | None = None
    ) -> ExchangeCore:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            book_bytes, risk_bytes = z["book"].tobytes(), z["risk"].tobytes()
        core = cls(risk, book)
        core.book = FastBook.restore(BookSnapshot.from_bytes(book_bytes), book)
        core.risk = RiskState.from_bytes(risk_bytes, core.risk_config)
        return core

    def open_orders(self) -> int:
        return int(self.book.state.mem[mk.G_LIVE])

    # -- queries: read-only, answered in plain integers (``exchange.queries``) -------------------

    def instrument_status(self, instrument: int) -> InstrumentState | None:
        """None if ``instrument`` was never listed."""
        ins = self.risk.instruments
        if not 0 <= instrument < ins.shape[0] or not ins[instrument, r.I_LISTED]:
            return None
        return InstrumentState(int(ins[instrument, r.I_STATUS]))

    def account_open(self, account: int) -> bool:
        accounts = self.risk.accounts
        return 0 <= account < accounts.shape[0] and bool(accounts[account, r.A_OPEN])

    def balances(self, account: int) -> tuple[AssetBalance, ...] | None:
        """Every configured asset of ``account``, by asset id; None if it is not open."""
        if not self.account_open(account):
            return None
        arrays = self.risk.arrays
        out = []
        for asset, held in enumerate(self.risk.balances[account].tolist()):
            free = int(rk.withdrawable(arrays, account, asset))
            out.append(AssetBalance(asset, held, max(held - free, 0), free))
        return tuple(out)

    def reservations(self, account: int) -> Reservations | None:
        """None if ``account`` is not open."""
        if not self.account_open(account):
            return None
        a = self.risk.accounts[account]
        rows = self.risk.positions[: int(self.risk.globals[r.G_POSITIONS])]
        mine = rows[(rows[:, r.P_KEY] >> r.INSTRUMENT_BITS) == account].tolist()
        positions = [
            PositionReservation(
                instrument=row[r.P_KEY] & ((1 << r.INSTRUMENT_BITS) - 1),
                position=row[r.P_POSITION],
                inventory=row[r.P_INVENTORY],
                inventory_reserved=row[r.P_INV_RESERVED],
                open_buy=row[r.P_OPEN_BUY],
                open_sell=row[r.P_OPEN_SELL],
                receivable=row[r.P_RECEIVABLE],
            )
            for row in mine
            if any(row[1:])
        ]
        positions.sort(key=lambda p: p.instrument)
        return Reservations(
            account=account,
            quote_reserved=int(a[r.A_RESERVED]),
            open_orders=int(a[r.A_OPEN_ORDERS]),
            positions=tuple(positions),
        )

    def account_orders(self, account: int, instrument: int | None = None) -> tuple[OpenOrder, ...]:
        """``account``'s resting orders (on ``instrument``, or on all), by order id."""
        return queries.account_orders(self.book, account, instrument)

    def order(self, order_id: int) -> OpenOrder | None:
        """The resting order ``order_id``; None if no such order rests (any more)."""
        return queries.order(self.book, order_id)
