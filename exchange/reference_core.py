"""The reference core: ``ReferenceBook`` + ``RiskModel``, in plain Python.

It follows the same steps as the compiled engine kernel (time first, then risk's verdict
on a well-formed order, then the book, then booking its events) with independent data
structures, so that running both on one command stream checks the kernel's every
decision (tests/exchange/test_core_model.py).
"""

from __future__ import annotations

import numpy as np

from exchange import queries
from exchange.codes import CommandKind, EventKind
from exchange.listing import decode_listing, listing_event
from exchange.queries import (
    OpenOrder,
    PositionReservation,
    Reservations,
)
from matching import codes as mc
from matching.reference import ReferenceBook
from matching.spec import BookConfig
from risk.codes import InstrumentState, RiskCommandKind, RiskReject
from risk.config import RiskConfig
from risk.reference import Instrument, RiskModel, reject


class ReferenceCore:
    def __init__(self, risk: RiskConfig | None = None, book: BookConfig | None = None) -> None:
        self.book = ReferenceBook(book)
        self.risk = RiskModel(risk or RiskConfig())

    def process(self, commands: np.ndarray) -> np.ndarray:
        out: list[list[int]] = []
        for row in np.asarray(commands, dtype=np.int64).tolist():
            out += self._one(row)
        return np.array(out, dtype=np.int64).reshape(-1, mc.N_EVENT_FIELDS)

    def _book(self, row: list[int]) -> list[list[int]]:
        return self.book.process(np.array([row], dtype=np.int64)).tolist()

    def _one(self, row: list[int]) -> list[list[int]]:
        self.risk.now = max(self.risk.now, row[mc.C_TS])
        tick = [0] * mc.N_COMMAND_FIELDS
        tick[mc.C_SEQ], tick[mc.C_TS], tick[mc.C_KIND] = row[mc.C_SEQ], row[mc.C_TS], 5
        expired = self._book(tick)
        self.risk.apply_events(expired, 0, 0, 0)
        kind = row[mc.C_KIND]
        if kind == RiskCommandKind.LIST_INSTRUMENT:
            return expired + [self._list(row)]
        if kind >= RiskCommandKind.OPEN_ACCOUNT:
            return expired + [self.risk.run_command(row, self.book.config.max_accounts)]
        old_price = old_leaves = 0
        book = self.book
        if kind == CommandKind.NEW_ORDER and book.validate_new(row) == 0:
            instr = row[mc.C_INSTRUMENT]
            code = self.risk.check_new(
                row[mc.C_ACCOUNT],
                instr,
                row[mc.C_SIDE],
                row[mc.C_PRICE],
                row[mc.C_QTY],
                self._ref(instr),
            )
            if code:
                return expired + [_order_reject(row, code)]
        elif kind == CommandKind.REPLACE_ORDER:
            o = book.owned_order(row)
            if o is not None:
                old_price, old_leaves = o.price, o.leaves
                spec = book.instrument_spec(o.instrument)
                assert spec is not None  # a resting order's instrument is listed
                price, qty = row[mc.C_PRICE], row[mc.C_QTY]
                if book.check_price_qty(spec, price, qty) == 0 and qty > o.filled:
                    code = self.risk.check_replace(
                        row[mc.C_ACCOUNT],
                        o.instrument,
                        o.side,
                        old_price,
                        old_leaves,
                        price,
                        qty,
                        qty - o.filled,
                        self._ref(o.instrument),
                    )
                    if code:
                        return expired + [reject(row, code)]
        events = self._book(row)
        self.risk.apply_events(events, row[mc.C_PRICE], old_price, old_leaves)
        return expired + events

    def _ref(self, instr: int) -> int:
        bid, _, ask, _ = self.book.best_bid_offer(instr)
        return self.risk.band_reference(instr, bid, ask)

    def _list(self, row: list[int]) -> list[int]:
        listing = decode_listing(row)
        if isinstance(listing, RiskReject):
            return listing_event(row, None, int(listing)).tolist()
        iid = listing.spec.instrument_id
        if iid in self.risk.instruments:
            return listing_event(row, None, int(RiskReject.INSTRUMENT_EXISTS)).tolist()
        self.book.add_instrument(listing.spec)
        self.risk.instruments[iid] = Instrument(
            int(listing.status), listing.reference_price, cutoff=listing.cutoff_ts
        )
        return listing_event(row, listing, 0).tolist()

    # -- queries, as ``ExchangeCore`` answers them (balances need the kernel's valuation) -----

    def instrument_status(self, instrument: int) -> InstrumentState | None:
        ins = self.risk.instruments.get(instrument)
        return None if ins is None else InstrumentState(ins.status)

    def reservations(self, account: int) -> Reservations | None:
        a = self.risk.accounts.get(account)
        if a is None:
            return None
        fields = ("position", "inventory", "inv_reserved", "open_buy", "open_sell", "receivable")
        positions = [
            PositionReservation(instr, *(getattr(p, f) for f in fields))
            for (acct, instr), p in sorted(self.risk.positions.items())
            if acct == account and any(getattr(p, f) for f in fields)
        ]
        return Reservations(account, a.reserved, a.open_orders, tuple(positions))

    def account_orders(self, account: int, instrument: int | None = None) -> tuple[OpenOrder, ...]:
        return queries.account_orders(self.book, account, instrument)

    def order(self, order_id: int) -> OpenOrder | None:
        return queries.order(self.book, order_id)


def _order_reject(row: list[int], code: int) -> list[int]:
    e = [0] * mc.N_EVENT_FIELDS
    e[mc.E_SEQ] = row[mc.C_SEQ]
    e[mc.E_KIND] = EventKind.ORDER_REJECTED
    e[mc.E_INSTRUMENT] = row[mc.C_INSTRUMENT]
    e[mc.E_ORDER_ID] = row[mc.C_ORDER_ID]
    e[mc.E_ACCOUNT] = row[mc.C_ACCOUNT]
    e[mc.E_SIDE] = row[mc.C_SIDE]
    e[mc.E_PRICE] = row[mc.C_PRICE]
    e[mc.E_QTY] = row[mc.C_QTY]
    e[mc.E_REASON] = int(code)
    return e
