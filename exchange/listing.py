"""LIST_INSTRUMENT: the one command that changes the shape of the arrays.

Both cores (the numba one and the reference) decode and validate it here, so they list,
refuse and report exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matching import codes as mc
from matching.spec import MAX_INSTRUMENT_ID, InstrumentSpec
from risk.codes import InstrumentState, RiskEventKind, RiskReject


@dataclass(frozen=True, slots=True)
class Listing:
    spec: InstrumentSpec
    reference_price: int
    status: InstrumentState
    cutoff_ts: int = 0  # from then on the window takes no orders


def decode_listing(row: np.ndarray | list[int]) -> Listing | RiskReject:
    """The listing a LIST_INSTRUMENT row describes, or why it is refused."""
    iid = int(row[mc.C_INSTRUMENT])
    if not 0 <= iid <= MAX_INSTRUMENT_ID:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    try:
        spec = InstrumentSpec(
            iid,
            tick_size=int(row[mc.C_ORDER_ID]),
            lot_size=int(row[mc.C_ACCOUNT]),
            min_price=int(row[mc.C_PRICE]),
            max_price=int(row[mc.C_EXPIRE_TS]),
            min_qty=int(row[mc.C_DISPLAY_QTY]),
            max_qty=int(row[mc.C_QTY]),
        )
        status = InstrumentState(int(row[mc.C_SIDE]))
    except ValueError:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    ref = int(row[mc.C_TIF])
    cutoff = int(row[mc.C_STP])
    if cutoff < 0:
        return RiskReject.INVALID_INSTRUMENT_SPEC
    if status not in (InstrumentState.PRE_OPEN, InstrumentState.TRADING):
        return RiskReject.INVALID_INSTRUMENT_SPEC
    if ref != 0 and not (spec.min_price <= ref <= spec.max_price):
        return RiskReject.INVALID_INSTRUMENT_SPEC
    return Listing(spec, ref, status, cutoff)


def listing_event(row: np.ndarray | list[int], listing: Listing | None, code: int) -> np.ndarray:
    """INSTRUMENT_LISTED, or COMMAND_REJECTED with ``code``."""
    ev = np.zeros(mc.N_EVENT_FIELDS, dtype=np.int64)
    ev[mc.E_SEQ] = row[mc.C_SEQ]
    ev[mc.E_INSTRUMENT] = row[mc.C_INSTRUMENT]
    if listing is None:
        ev[mc.E_KIND] = mc.EventKind.COMMAND_REJECTED
        ev[mc.E_PRICE] = row[mc.C_PRICE]
        ev[mc.E_QTY] = row[mc.C_QTY]
        ev[mc.E_TRADE_ID] = row[mc.C_KIND]
        ev[mc.E_REASON] = code
        return ev
    ev[mc.E_KIND] = RiskEventKind.INSTRUMENT_LISTED
    ev[mc.E_SIDE] = int(listing.status)
    ev[mc.E_PRICE] = listing.reference_price
    ev[mc.E_QTY] = listing.spec.max_qty
    ev[mc.E_LEAVES] = listing.spec.tick_size  # what projections need to format prices
    ev[mc.E_SHOWN] = listing.spec.lot_size
    ev[mc.E_TRADE_ID] = listing.cutoff_ts
    return ev
