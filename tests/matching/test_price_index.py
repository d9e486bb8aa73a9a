"""The fast book's price index at its edges: bitmap word and chunk boundaries, the ends of
the price range, and chunks emptied and reused. Each case runs on both books; depth, best
prices and events must agree exactly."""

from __future__ import annotations

import numpy as np
import pytest
from bookkit import assert_same_events

from matching import InstrumentSpec
from matching import kernel as k
from matching import rows as mr
from matching.codes import Side
from matching.fast import FastBook
from matching.reference import ReferenceBook
from matching.spec import MAX_INSTRUMENT_ID, MAX_TICKS

TICKS = 1 << 20  # a million-odd prices: 256 chunks of 4,096 per side
SPEC = InstrumentSpec(0, tick_size=3, lot_size=1, min_price=3, max_price=3 * TICKS, min_qty=1,
                      max_qty=1_000)  # fmt: skip
# Ticks on both sides of every boundary the three bitmap levels have.
EDGE_TICKS = sorted(
    {0, 1, 62, 63, 64, 65, 4095, 4096, 4097, 262_143, 262_144, 262_145, TICKS - 2, TICKS - 1}
)


def _books() -> tuple[ReferenceBook, FastBook]:
    ref, fast = ReferenceBook(), FastBook()
    ref.add_instrument(SPEC)
    fast.add_instrument(SPEC)
    return ref, fast


def _price(tick: int) -> int:
    return SPEC.min_price + tick * SPEC.tick_size


def _order(order_id: int, side: Side, price: int) -> np.ndarray:
    """One lot from account 1 on instrument 0."""
    return mr.new_order_row(
        instrument=0, order_id=order_id, account=1, side=side, price=price, qty=1
    )


def _run(books: tuple[ReferenceBook, FastBook], rows: list[np.ndarray]) -> None:
    commands = np.stack(rows)
    ref_events, fast_events = (book.process(commands) for book in books)
    assert_same_events(ref_events, fast_events)
    ref, fast = books
    for side in (0, 1):
        assert np.array_equal(ref.depth(0, 50)[side], fast.depth(0, 50)[side])
    assert ref.state_hash() == fast.state_hash()


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_levels_on_every_boundary_are_found_in_price_order(side: Side) -> None:
    books = _books()
    _run(books, [_order(i + 1, side, _price(t)) for i, t in enumerate(EDGE_TICKS)])
    bids, asks = books[1].depth(0, 50)
    prices = (bids if side == Side.BUY else asks)[:, 0].tolist()
    expected = [_price(t) for t in EDGE_TICKS]
    assert prices == (expected[::-1] if side == Side.BUY else expected)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_best_moves_across_empty_chunks_as_levels_are_cancelled(side: Side) -> None:
    """Cancelling the best level each time makes the book look for the next one through
    empty words, empty chunks and empty level-2 words; each emptied chunk is given back."""
    books = _books()
    _run(books, [_order(i + 1, side, _price(t)) for i, t in enumerate(EDGE_TICKS)])
    best_first = EDGE_TICKS[::-1] if side == Side.BUY else EDGE_TICKS
    for tick in best_first:
        oid = EDGE_TICKS.index(tick) + 1
        _run(books, [mr.cancel_row(order_id=oid, account=1, instrument=0)])
        remaining = best_first[best_first.index(tick) + 1 :]
        bid, _, ask, _ = books[1].best_bid_offer(0)
        best = bid if side == Side.BUY else ask
        assert best == (_price(remaining[0]) if remaining else 0)
    assert books[1].open_order_count() == 0


def test_chunks_are_reused_after_they_empty() -> None:
    """Filling and emptying far-apart chunks many times must neither leak nor corrupt."""
    books = _books()
    oid = 0
    for round_ in range(40):
        base = (round_ * 40_961) % (TICKS - 64)
        rows = []
        for level in range(8):
            oid += 1
            rows.append(
                mr.new_order_row(
                    order_id=oid,
                    account=2,
                    instrument=0,
                    side=Side.SELL,
                    price=_price(base + 64 * level),
                    qty=2,
                )
            )
        rows.append(
            mr.new_order_row(
                order_id=oid + 1,
                account=3,
                instrument=0,
                side=Side.BUY,
                price=_price(TICKS - 1),
                qty=16,
            )
        )
        oid += 1
        _run(books, rows)  # the buy sweeps all eight levels, emptying their chunks
        assert books[1].open_order_count() == 0
    mem = books[1].state.mem  # the free list holds every chunk again
    free, n = int(mem[k.G_FREE_CHUNK]), 0
    chunks = k.arena_views(books[1].state)["chunks"]
    while free != k.EMPTY:
        n += 1
        free = int(chunks[free, 0])
    assert n == int(mem[k.H_CHUNK_CAP])


def test_specs_beyond_the_index_limits_are_refused_for_both_books() -> None:
    with pytest.raises(ValueError, match="prices in the range"):
        InstrumentSpec(0, tick_size=1, lot_size=1, min_price=1, max_price=MAX_TICKS + 1,
                       min_qty=1, max_qty=1)  # fmt: skip
    with pytest.raises(ValueError, match="instrument_id"):
        InstrumentSpec(MAX_INSTRUMENT_ID + 1, tick_size=1, lot_size=1, min_price=1,
                       max_price=10, min_qty=1, max_qty=1)  # fmt: skip
    widest = InstrumentSpec(MAX_INSTRUMENT_ID, tick_size=1, lot_size=1, min_price=1,
                            max_price=MAX_TICKS, min_qty=1, max_qty=1)  # fmt: skip
    ref, fast = ReferenceBook(), FastBook()
    for book in (ref, fast):
        book.add_instrument(widest)
    iid = MAX_INSTRUMENT_ID
    rows = [
        mr.new_order_row(
            instrument=iid, order_id=1, account=0, side=Side.SELL, price=MAX_TICKS, qty=1
        ),
        mr.new_order_row(instrument=iid, order_id=2, account=0, side=Side.SELL, price=1, qty=1),
        mr.new_order_row(
            instrument=iid, order_id=3, account=1, side=Side.BUY, price=MAX_TICKS, qty=2
        ),
    ]
    assert_same_events(ref.process(np.stack(rows)), fast.process(np.stack(rows)))
    assert ref.state_hash() == fast.state_hash()
