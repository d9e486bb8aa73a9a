"""Every order book test runs on both implementations: the reference is the oracle."""

from __future__ import annotations

import pytest
from bookkit import I1, I2, LOT_INSTRUMENT, make_book

from matching.api import OrderBook
from matching.fast import FastBook
from matching.reference import ReferenceBook

BOOK_CLASSES: list[type[OrderBook]] = [ReferenceBook, FastBook]
BOOK_IDS = ["reference", "fast"]


@pytest.fixture(params=BOOK_CLASSES, ids=BOOK_IDS)
def book_cls(request: pytest.FixtureRequest) -> type[OrderBook]:
    return request.param


@pytest.fixture
def book(book_cls: type[OrderBook]) -> OrderBook:
    """Instruments 1 and 2 (lot 1) and 3 (lot 10), default capacity."""
    return make_book(book_cls, (I1, I2, LOT_INSTRUMENT))
