"""LIST_INSTRUMENT: the one command that changes the shape of the arrays.

Both cores (the numba one and the reference) decode and validate it here, so they list,
refuse and report exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exchange.codes import EventKind
from exchange.commands import ListInstrument
from exchange.events import InstrumentListed
from exchange.ids import InstrumentId
from matching import codes as mc
from matching.spec import MAX_INSTRUMENT_ID, InstrumentSpec
from risk.codes import InstrumentState, RiskReject


@dataclass(frozen=True, slots=True)
class Listing:
    spec: InstrumentSpec
    reference_price: int
    status: InstrumentState
    cutoff_ts: int = 0  # from then on the window takes no orders


def decode_listing(row: np.ndarray | list[int]) -> Listing | RiskReject:
    """The listing a LIST_INSTRUMENT row describes, or why it is refused."""
    if not 0 <= int(row[mc.C_INSTRUMENT]) <= MAX_INSTRUMENT_ID:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    try:
        command = ListInstrument.from_row(row)  # the columns are ListInstrument's
        spec = command.spec()
    except ValueError:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    status, ref = command.status, command.reference_price
    if command.cutoff_ts < 0:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    if status not in (InstrumentState.PRE_OPEN, InstrumentState.TRADING):
        return RiskReject.INVALID_INSTRUMENT_SPEC
    if ref != 0 and not (spec.min_price <= ref <= spec.max_price):
        return RiskReject.INVALID_INSTRUMENT_SPEC
    return Listing(spec, ref, status, command.cutoff_ts)


def listing_event(row: np.ndarray | list[int], listing: Listing | None, code: int) -> np.ndarray:
    """INSTRUMENT_LISTED, or COMMAND_REJECTED with ``code``."""
    if listing is not None:
        return InstrumentListed(
            seq=int(row[mc.C_SEQ]),
            instrument=InstrumentId(listing.spec.instrument_id),
            status=listing.status,
            reference_price=listing.reference_price,
            max_qty=listing.spec.max_qty,
            tick_size=listing.spec.tick_size,  # what projections need to format prices
            lot_size=listing.spec.lot_size,
            cutoff_ts=listing.cutoff_ts,
        ).to_row()
    ev = np.zeros(mc.N_EVENT_FIELDS, dtype=np.int64)
    ev[mc.E_SEQ] = row[mc.C_SEQ]
    ev[mc.E_KIND] = EventKind.COMMAND_REJECTED
    ev[mc.E_INSTRUMENT] = row[mc.C_INSTRUMENT]
    ev[mc.E_PRICE] = row[mc.C_PRICE]
    ev[mc.E_QTY] = row[mc.C_QTY]
    ev[mc.E_TRADE_ID] = row[mc.C_KIND]
    ev[mc.E_REASON] = code
    return ev
