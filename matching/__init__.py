"""Order books: price-time priority matching for many instruments, one writer.

``FastBook`` (numba kernels) and ``ReferenceBook`` (plain Python) share one interface,
one command/event layout and one snapshot format. This package imports nothing else of CX.
"""

from matching.api import OrderBook
from matching.reference import ReferenceBook
from matching.snapshot import BookSnapshot
from matching.spec import BookConfig, InstrumentSpec

__all__ = ["BookConfig", "BookSnapshot", "InstrumentSpec", "OrderBook", "ReferenceBook"]
