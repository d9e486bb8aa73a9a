"""Scenario tests of the order book rules, run on the reference and the numba book.

Each test states which published exchange rule it follows. Prices are ``px(ticks)``
(one tick = 0.001 USDC); accounts are A, B, C, D. ``now`` is part of the state hash, so a
test that compares hashes around a command keeps that command's ``ts`` at or below ``now``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from bookkit import (
    I1,
    I2,
    LOT,
    LOT_INSTRUMENT,
    MAX_PRICE,
    MAX_QTY,
    A,
    B,
    C,
    D,
    assert_same_events,
    fills,
    kinds,
    level_view,
    make_book,
    only,
    px,
    resting,
    spec,
)

from matching import codes as c
from matching import kernel as mk
from matching import rows as mr
from matching.api import OrderBook
from matching.codes import (
    BookCommandKind,
    BookEventKind,
    BookReject,
    CancelReason,
    Liquidity,
    OrderType,
    Side,
    STPMode,
    TimeInForce,
)
from matching.fast import FastBook
from matching.reference import ReferenceBook
from matching.rows import BookEvent, decode_events
from matching.snapshot import BookSnapshot
from matching.spec import BookConfig

ACC = BookEventKind.ORDER_ACCEPTED
REJ = BookEventKind.ORDER_REJECTED
FILL = BookEventKind.ORDER_FILLED
CXL = BookEventKind.ORDER_CANCELLED
RPL = BookEventKind.ORDER_REPLACED
EXP = BookEventKind.ORDER_EXPIRED
DONE = BookEventKind.MASS_CANCEL_DONE
CREJ = BookEventKind.COMMAND_REJECTED
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
BUY, SELL = Side.BUY, Side.SELL


def cancels(events: list[BookEvent]) -> list[tuple[int, int, int, CancelReason]]:
    """``(order id, qty cancelled, leaves, reason)`` of every cancel, in event order."""
    return [(e.order_id, e.qty, e.leaves, e.cancel_reason) for e in only(events, CXL)]


# --- price-time priority, partial fills, resting ---------------------------------------


def test_price_time_priority_and_trade_at_makers_price(book: OrderBook) -> None:
    """CME Globex FIFO / Coinbase: best price first, then earliest; the maker's price."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=3, account=C, instrument=I1, side=SELL, price=px(100), qty=5)
    events = book.new_order(order_id=4, account=D, instrument=I1, side=BUY, price=px(102), qty=12)
    assert kinds(events) == [ACC] + [FILL] * 6
    assert fills(events) == [
        (2, MAKER, px(100), 5, 0),
        (4, TAKER, px(100), 5, 7),
        (3, MAKER, px(100), 5, 0),
        (4, TAKER, px(100), 5, 2),
        (1, MAKER, px(101), 2, 3),
        (4, TAKER, px(101), 2, 0),
    ]
    trade_ids = [e.trade_id for e in only(events, FILL)]
    assert trade_ids == [1, 1, 2, 2, 3, 3]
    contra = [(e.contra_order_id, e.contra_account) for e in only(events, FILL)]
    assert contra == [(4, D), (2, B), (4, D), (3, C), (4, D), (1, A)]
    assert book.best_bid_offer(I1) == (0, 0, px(101), 3)
    assert book.open_order_count() == 1


def test_sell_taker_trades_at_resting_bid_price(book: OrderBook) -> None:
    """Coinbase matching: a marketable order executes at the resting order's price."""
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(100), qty=5)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(99), qty=5)
    events = book.new_order(order_id=3, account=C, instrument=I1, side=SELL, price=px(90), qty=7)
    assert fills(events) == [
        (1, MAKER, px(100), 5, 0),
        (3, TAKER, px(100), 5, 2),
        (2, MAKER, px(99), 2, 3),
        (3, TAKER, px(99), 2, 0),
    ]


def test_partial_fill_leaves_maker_at_the_front_and_taker_rests(book: OrderBook) -> None:
    """CME: a partially filled resting order keeps its place; a GTC taker rests its rest."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=10)
    events = book.new_order(order_id=3, account=C, instrument=I1, side=BUY, price=px(100), qty=4)
    assert fills(events) == [(1, MAKER, px(100), 4, 6), (3, TAKER, px(100), 4, 0)]
    assert only(events, FILL)[0].shown == 6
    assert book.level_orders(I1, SELL, px(100)) == [1, 2]
    events = book.new_order(order_id=4, account=C, instrument=I1, side=BUY, price=px(100), qty=20)
    assert fills(events) == [
        (1, MAKER, px(100), 6, 0),
        (4, TAKER, px(100), 6, 14),
        (2, MAKER, px(100), 10, 0),
        (4, TAKER, px(100), 10, 4),
    ]
    rows = resting(book)
    assert list(rows) == [4]
    assert (rows[4]["qty"], rows[4]["filled"]) == (20, 16)
    assert (rows[4]["shown"], rows[4]["hidden"]) == (4, 0)
    assert book.best_bid_offer(I1) == (px(100), 4, 0, 0)


def test_limit_gtc_rests_without_crossing(book: OrderBook) -> None:
    """A GTC limit order that does not cross is acknowledged and rests; nothing trades."""
    ev_bid = book.new_order(
        order_id=1, account=A, instrument=I1, side=BUY, price=px(99), qty=3, seq=1
    )
    ev_ask = book.new_order(
        order_id=2, account=B, instrument=I1, side=SELL, price=px(101), qty=4, seq=2
    )
    assert ev_bid == [BookEvent(1, ACC, I1, 1, A, BUY, px(99), 3, 3, 3, 0, Liquidity.NONE, 0, 0, 0)]
    assert kinds(ev_ask) == [ACC]
    assert book.best_bid_offer(I1) == (px(99), 3, px(101), 4)
    assert book.best_bid_offer(I2) == (0, 0, 0, 0)
    assert book.open_order_count() == 2


def test_orders_on_different_instruments_never_meet(book: OrderBook) -> None:
    """Each instrument has its own book."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    events = book.new_order(order_id=2, account=B, instrument=I2, side=BUY, price=px(105), qty=5)
    assert kinds(events) == [ACC]
    assert book.best_bid_offer(I1) == (0, 0, px(100), 5)
    assert book.best_bid_offer(I2) == (px(105), 5, 0, 0)


# --- IOC, FOK, post-only, market ----------------------------------------------------------


def test_ioc_fills_what_it_can_and_cancels_the_rest(book: OrderBook) -> None:
    """Binance/Coinbase IOC: fill immediately, cancel the unfilled remainder, never rest."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=3)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(103), qty=3)
    events = book.new_order(
        order_id=3, account=B, instrument=I1, side=BUY, price=px(101), qty=10, tif=TimeInForce.IOC
    )
    assert kinds(events) == [ACC, FILL, FILL, CXL]
    assert cancels(events) == [(3, 7, 0, CancelReason.IMMEDIATE_OR_CANCEL)]
    assert book.best_bid_offer(I1) == (0, 0, px(103), 3)
    events = book.new_order(
        order_id=4, account=B, instrument=I1, side=BUY, price=px(101), qty=2, tif=TimeInForce.IOC
    )
    assert kinds(events) == [ACC, CXL]
    assert cancels(events) == [(4, 2, 0, CancelReason.IMMEDIATE_OR_CANCEL)]
    assert book.open_order_count() == 1


def test_fok_kills_when_not_fully_fillable_and_changes_nothing(book: OrderBook) -> None:
    """CME/Binance FOK: all or nothing; a killed FOK leaves the book as it was."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=3)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(101), qty=3)
    book.new_order(order_id=3, account=B, instrument=I1, side=SELL, price=px(102), qty=10)
    before = book.state_hash()
    events = book.new_order(
        order_id=4, account=C, instrument=I1, side=BUY, price=px(101), qty=7, tif=TimeInForce.FOK
    )
    assert kinds(events) == [ACC, CXL]
    assert cancels(events) == [(4, 7, 0, CancelReason.FILL_OR_KILL)]
    assert book.state_hash() == before


def test_fok_fills_completely_across_levels(book: OrderBook) -> None:
    """CME/Binance FOK: fills in full, sweeping as many levels as its limit allows."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=3)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(101), qty=3)
    book.new_order(order_id=3, account=B, instrument=I1, side=SELL, price=px(102), qty=10)
    events = book.new_order(
        order_id=4, account=C, instrument=I1, side=BUY, price=px(101), qty=6, tif=TimeInForce.FOK
    )
    assert kinds(events) == [ACC] + [FILL] * 4
    assert fills(events)[-1] == (4, TAKER, px(101), 3, 0)
    assert book.best_bid_offer(I1) == (0, 0, px(102), 10)


def test_fok_counts_hidden_iceberg_quantity(book: OrderBook) -> None:
    """An iceberg's hidden part is real liquidity: a FOK may rely on it."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=9, display_qty=2
    )
    events = book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=9, tif=TimeInForce.FOK
    )
    assert [f[3] for f in fills(events) if f[1] == TAKER] == [2, 2, 2, 2, 1]
    assert book.open_order_count() == 0


def test_fok_level_holding_own_order_is_unfillable(book: OrderBook) -> None:
    """Documented CX rule: a level with the taker's own order makes a FOK unfillable,
    even when other accounts' orders ahead of it would suffice (STP not CANCEL_OLDEST)."""
    book.new_order(order_id=1, account=B, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    before = book.state_hash()
    for n, stp in enumerate(
        (STPMode.CANCEL_NEWEST, STPMode.CANCEL_BOTH, STPMode.DECREMENT_AND_CANCEL)
    ):
        events = book.new_order(
            order_id=10 + n,
            account=A,
            instrument=I1,
            side=BUY,
            price=px(100),
            qty=5,
            tif=TimeInForce.FOK,
            stp=stp,
        )
        assert kinds(events) == [ACC, CXL]
        assert cancels(events) == [(10 + n, 5, 0, CancelReason.FILL_OR_KILL)]
        assert book.state_hash() == before


def test_fok_own_order_on_a_level_never_reached_does_not_matter(book: OrderBook) -> None:
    """The rule is about levels the FOK needs: a better level that suffices fills it."""
    book.new_order(order_id=1, account=B, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    events = book.new_order(
        order_id=3, account=A, instrument=I1, side=BUY, price=px(101), qty=5, tif=TimeInForce.FOK
    )
    assert fills(events) == [(1, MAKER, px(100), 5, 0), (3, TAKER, px(100), 5, 0)]
    assert list(resting(book)) == [2]


def test_fok_with_cancel_oldest_skips_own_orders(book: OrderBook) -> None:
    """With CANCEL_OLDEST the own order will be cancelled, so only others' size counts."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=4)
    before = book.state_hash()
    events = book.new_order(
        order_id=3,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=5,
        tif=TimeInForce.FOK,
        stp=STPMode.CANCEL_OLDEST,
    )
    assert cancels(events) == [(3, 5, 0, CancelReason.FILL_OR_KILL)]
    assert book.state_hash() == before
    events = book.new_order(
        order_id=4,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=4,
        tif=TimeInForce.FOK,
        stp=STPMode.CANCEL_OLDEST,
    )
    assert kinds(events) == [ACC, CXL, FILL, FILL]
    assert cancels(events) == [(1, 5, 0, CancelReason.SELF_TRADE)]
    assert fills(events) == [(2, MAKER, px(100), 4, 0), (4, TAKER, px(100), 4, 0)]
    assert book.open_order_count() == 0


def test_fok_cancel_oldest_leaves_own_order_it_does_not_reach(book: OrderBook) -> None:
    """A FOK that is filled before reaching its own order leaves that order alone."""
    book.new_order(order_id=1, account=B, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    events = book.new_order(
        order_id=3,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=5,
        tif=TimeInForce.FOK,
        stp=STPMode.CANCEL_OLDEST,
    )
    assert kinds(events) == [ACC, FILL, FILL]
    assert list(resting(book)) == [2]


def test_post_only_rejected_when_it_would_take(book: OrderBook) -> None:
    """Coinbase post_only / Binance LIMIT_MAKER: rejected rather than take liquidity."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=BUY, price=px(99), qty=5)
    before = book.state_hash()
    for oid, side, price in ((3, BUY, px(101)), (4, BUY, px(150)), (5, SELL, px(99))):
        events = book.new_order(
            order_id=oid, account=B, instrument=I1, side=side, price=price, qty=1, post_only=True
        )
        assert kinds(events) == [REJ]
        assert events[0].reject_code == BookReject.POST_ONLY_WOULD_TAKE
        assert book.state_hash() == before


def test_post_only_rests_when_it_would_not_take(book: OrderBook) -> None:
    """A post-only order that does not cross rests like any limit order (GTC or GTD)."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    assert kinds(
        book.new_order(
            order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=5, post_only=True
        )
    ) == [ACC]
    events = book.new_order(
        order_id=3,
        account=B,
        instrument=I1,
        side=SELL,
        price=px(102),
        qty=5,
        post_only=True,
        tif=TimeInForce.GTD,
        expire_ts=10,
    )
    assert kinds(events) == [ACC]
    assert book.best_bid_offer(I1) == (px(100), 5, px(101), 5)
    assert book.level_orders(I1, SELL, px(102)) == [3]
    # As a maker it trades normally.
    events = book.new_order(order_id=4, account=C, instrument=I1, side=SELL, price=px(100), qty=2)
    assert fills(events)[0] == (2, MAKER, px(100), 2, 3)


def test_market_order_stops_at_protection_price(book: OrderBook) -> None:
    """CME market-with-protection: never trades beyond the protection price; the rest of
    the order is cancelled instead of resting."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    book.new_order(order_id=3, account=A, instrument=I1, side=SELL, price=px(105), qty=5)
    events = book.new_order(
        order_id=4,
        account=B,
        instrument=I1,
        side=BUY,
        price=px(101),
        qty=20,
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
    )
    assert kinds(events) == [ACC, FILL, FILL, FILL, FILL, CXL]
    assert {e.price for e in only(events, FILL)} == {px(100), px(101)}
    assert cancels(events) == [(4, 10, 0, CancelReason.IMMEDIATE_OR_CANCEL)]
    assert book.best_bid_offer(I1) == (0, 0, px(105), 5)
    assert book.open_order_count() == 1


def test_market_sell_stops_at_protection_price(book: OrderBook) -> None:
    """The protection price is a floor for a market sell."""
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=BUY, price=px(95), qty=5)
    events = book.new_order(
        order_id=3,
        account=B,
        instrument=I1,
        side=SELL,
        price=px(98),
        qty=8,
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
    )
    assert fills(events) == [(1, MAKER, px(100), 5, 0), (3, TAKER, px(100), 5, 3)]
    assert cancels(events) == [(3, 3, 0, CancelReason.IMMEDIATE_OR_CANCEL)]
    assert book.best_bid_offer(I1) == (px(95), 5, 0, 0)


def test_market_fok_is_all_or_nothing_within_protection(book: OrderBook) -> None:
    """A market FOK counts only liquidity inside its protection price."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(110), qty=5)
    before = book.state_hash()
    events = book.new_order(
        order_id=3,
        account=B,
        instrument=I1,
        side=BUY,
        price=px(105),
        qty=6,
        order_type=OrderType.MARKET,
        tif=TimeInForce.FOK,
    )
    assert cancels(events) == [(3, 6, 0, CancelReason.FILL_OR_KILL)]
    assert book.state_hash() == before


def test_market_order_on_empty_book_is_cancelled(book: OrderBook) -> None:
    events = book.new_order(
        order_id=1,
        account=B,
        instrument=I1,
        side=BUY,
        price=MAX_PRICE,
        qty=6,
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
    )
    assert kinds(events) == [ACC, CXL]
    assert book.open_order_count() == 0


# --- GTD and time -------------------------------------------------------------------------


def test_gtd_expires_on_clock_tick_reaching_expiry(book: OrderBook) -> None:
    """Time exists only as command timestamps: the order expires at the first command
    whose ts reaches expire_ts, tagged with that command's seq; queries change nothing."""
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=100,
        ts=10,
    )
    assert book.clock_tick(99, seq=7) == []
    assert book.best_bid_offer(I1) == (0, 0, px(100), 5)
    events = book.clock_tick(100, seq=8)
    assert events == [
        BookEvent(8, EXP, I1, 1, A, SELL, px(100), 5, 0, 0, 0, Liquidity.NONE, 0, 0, 0)
    ]
    assert book.open_order_count() == 0
    assert book.snapshot().now == 100


def test_gtd_expires_before_an_ordinary_command_can_trade_with_it(book: OrderBook) -> None:
    """Expiry runs at the start of the command: a crossing order arriving at expiry time
    finds the order gone and rests instead."""
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=50,
        ts=1,
    )
    events = book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=5, seq=3, ts=50
    )
    assert kinds(events) == [EXP, ACC]
    assert {e.seq for e in events} == {3}
    assert book.best_bid_offer(I1) == (px(100), 5, 0, 0)


def test_rejected_commands_also_advance_time(book: OrderBook) -> None:
    """Any sequenced command moves time forward, even one that is refused."""
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=50,
    )
    events = book.cancel(order_id=999, account=B, instrument=I1, seq=4, ts=60)
    assert kinds(events) == [EXP, CREJ]
    assert events[1].reject_code == BookReject.UNKNOWN_ORDER
    assert book.open_order_count() == 0


def test_gtd_expiry_order_is_expire_ts_then_order_id(book: OrderBook) -> None:
    """Orders due at the same command expire in (expire_ts, order_id) order."""
    book.new_order(
        order_id=5,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=200,
    )
    book.new_order(
        order_id=3,
        account=B,
        instrument=I2,
        side=BUY,
        price=px(90),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=200,
    )
    book.new_order(
        order_id=9,
        account=C,
        instrument=I1,
        side=SELL,
        price=px(101),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=300,
    )
    book.new_order(
        order_id=4,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(80),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=150,
    )
    book.new_order(
        order_id=7,
        account=D,
        instrument=I2,
        side=SELL,
        price=px(99),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=151,
    )
    events = book.clock_tick(250, seq=2)
    assert kinds(events) == [EXP] * 4
    assert [e.order_id for e in events] == [4, 7, 3, 5]
    assert list(resting(book)) == [9]


def test_gtd_partially_filled_expires_its_leaves(book: OrderBook) -> None:
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=10,
        tif=TimeInForce.GTD,
        expire_ts=20,
    )
    book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=4, tif=TimeInForce.IOC
    )
    events = book.clock_tick(20)
    assert [(e.kind, e.qty, e.leaves) for e in events] == [(EXP, 6, 0)]


def test_gtd_with_expiry_not_after_now_is_rejected(book: OrderBook) -> None:
    """GTD needs an expiry strictly after the current time; time never runs backwards."""
    book.clock_tick(100)
    before = book.state_hash()
    for expire_ts in (100, 99, 1, 0, -5):
        events = book.new_order(
            order_id=1,
            account=A,
            instrument=I1,
            side=BUY,
            price=px(100),
            qty=1,
            tif=TimeInForce.GTD,
            expire_ts=expire_ts,
            ts=100,
        )
        assert [(e.kind, e.reject_code) for e in events] == [(REJ, BookReject.INVALID_EXPIRE_TIME)]
    # A late command (ts below now) does not move time back.
    events = book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=90,
        ts=50,
    )
    assert events[0].reject_code == BookReject.INVALID_EXPIRE_TIME
    assert book.state_hash() == before
    events = book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=101,
        ts=50,
    )
    assert kinds(events) == [ACC]


def test_gtd_replace_keeps_expiry(book: OrderBook) -> None:
    """A replaced GTD order keeps its expiry, whether or not it keeps priority."""
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=30,
    )
    book.new_order(
        order_id=2,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=30,
    )
    book.replace(order_id=1, account=A, instrument=I1, price=px(101), qty=5)
    book.replace(order_id=2, account=A, instrument=I1, price=px(100), qty=3)
    events = book.clock_tick(30)
    assert sorted(e.order_id for e in only(events, EXP)) == [1, 2]
    assert book.open_order_count() == 0


# --- iceberg --------------------------------------------------------------------------------


def test_iceberg_refill_goes_to_the_back_and_depth_shows_visible_only(book: OrderBook) -> None:
    """CME iceberg: only the display quantity is visible; each refill is a new order in
    time priority, behind everything already at the level."""
    accepted = only(
        book.new_order(
            order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=3
        ),
        ACC,
    )[0]
    assert (accepted.qty, accepted.leaves, accepted.shown) == (10, 10, 3)  # shows 3 once resting
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=5)
    bids, asks = book.depth(I1)
    assert bids.shape == (0, 3)
    assert asks.tolist() == [[px(100), 3 + 5, 2]]
    events = book.new_order(order_id=3, account=C, instrument=I1, side=BUY, price=px(100), qty=3)
    maker = only(events, FILL)[0]
    assert (maker.order_id, maker.qty, maker.leaves, maker.shown) == (1, 3, 7, 3)
    assert book.level_orders(I1, SELL, px(100)) == [2, 1]
    assert book.best_bid_offer(I1) == (0, 0, px(100), 8)
    rows = resting(book)
    assert (rows[1]["shown"], rows[1]["hidden"], rows[1]["filled"]) == (3, 4, 3)
    events = book.new_order(order_id=4, account=C, instrument=I1, side=BUY, price=px(100), qty=6)
    assert fills(events) == [
        (2, MAKER, px(100), 5, 0),
        (4, TAKER, px(100), 5, 1),
        (1, MAKER, px(100), 1, 6),
        (4, TAKER, px(100), 1, 0),
    ]
    assert book.best_bid_offer(I1) == (0, 0, px(100), 2)


def test_iceberg_swept_alone_trades_one_slice_at_a_time(book: OrderBook) -> None:
    """Each refill is a separate trade; the last slice may be smaller than the display."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=3
    )
    events = book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=10)
    makers = [(e.qty, e.leaves, e.shown) for e in only(events, FILL) if e.liquidity == MAKER]
    assert makers == [(3, 7, 3), (3, 4, 3), (3, 1, 1), (1, 0, 0)]
    assert [e.trade_id for e in only(events, FILL)] == [1, 1, 2, 2, 3, 3, 4, 4]


def test_iceberg_taker_rests_with_display_slice(book: OrderBook) -> None:
    """An iceberg that trades on arrival rests its remainder, showing one slice."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=3)
    events = book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=10, display_qty=4
    )
    assert fills(events)[-1] == (2, TAKER, px(100), 3, 7)
    rows = resting(book)
    assert (rows[2]["shown"], rows[2]["hidden"], rows[2]["display"]) == (4, 3, 4)
    assert book.depth(I1)[0].tolist() == [[px(100), 4, 1]]


def test_iceberg_display_equal_to_qty_behaves_as_plain_order(book: OrderBook) -> None:
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5, display_qty=5
    )
    assert book.best_bid_offer(I1) == (0, 0, px(100), 5)


# --- cancel, mass cancel --------------------------------------------------------------------


def test_cancel_removes_the_order(book: OrderBook) -> None:
    """FIX OrderCancelRequest: the whole remaining quantity is cancelled."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=2
    )
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=3)
    events = book.cancel(order_id=1, account=A, instrument=I1, seq=5)
    assert events == [
        BookEvent(
            5, CXL, I1, 1, A, SELL, px(100), 7, 0, 0, 0, Liquidity.NONE, CancelReason.USER, 0, 0
        )
    ]
    assert book.open_order_count() == 0
    assert book.depth(I1)[1].shape == (0, 3)
    again = book.cancel(order_id=1, account=A, instrument=I1)
    assert [(e.kind, e.reject_code) for e in again] == [(CREJ, BookReject.UNKNOWN_ORDER)]


@pytest.mark.parametrize(
    ("order_id", "account", "instrument"),
    [(1, B, I1), (1, A, I2), (77, A, I1), (1, A, 99), (0, A, I1), (-1, A, I1)],
    ids=["other-account", "wrong-instrument", "unknown-id", "unknown-instrument", "0", "-1"],
)
def test_cancel_not_own_order_is_rejected_and_changes_nothing(
    book: OrderBook, order_id: int, account: int, instrument: int
) -> None:
    """Order ids are private to their owner: any mismatch is UNKNOWN_ORDER, not a leak."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10)
    before = book.state_hash()
    events = book.cancel(order_id=order_id, account=account, instrument=instrument, seq=9)
    assert [(e.seq, e.kind, e.reject_code, e.order_id) for e in events] == [
        (9, CREJ, BookReject.UNKNOWN_ORDER, order_id)
    ]
    assert book.state_hash() == before
    events = book.replace(
        order_id=order_id, account=account, instrument=instrument, price=px(100), qty=5, seq=10
    )
    assert [(e.kind, e.reject_code) for e in events] == [(CREJ, BookReject.UNKNOWN_ORDER)]
    assert book.state_hash() == before


def test_filled_or_ioc_orders_cannot_be_cancelled(book: OrderBook) -> None:
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=9, tif=TimeInForce.IOC
    )
    for oid, acct in ((1, A), (2, B)):
        assert (
            book.cancel(order_id=oid, account=acct, instrument=I1)[0].reject_code
            == BookReject.UNKNOWN_ORDER
        )


def _place_mixed(book: OrderBook) -> None:
    book.new_order(order_id=7, account=A, instrument=I1, side=SELL, price=px(105), qty=1)
    book.new_order(order_id=3, account=A, instrument=I2, side=BUY, price=px(90), qty=2)
    book.new_order(
        order_id=5, account=A, instrument=I1, side=BUY, price=px(95), qty=3, display_qty=1
    )
    book.new_order(order_id=4, account=B, instrument=I1, side=SELL, price=px(106), qty=4)
    book.new_order(
        order_id=6,
        account=A,
        instrument=I2,
        side=SELL,
        price=px(99),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=1_000,
    )


def test_mass_cancel_by_account_in_ascending_order_id(book: OrderBook) -> None:
    """Binance cancel-all / FIX OrderMassCancelRequest: every open order of the account,
    in ascending order id, then one report with the count."""
    _place_mixed(book)
    events = book.mass_cancel(account=A, seq=11)
    assert [(e.order_id, e.qty, e.reason) for e in only(events, CXL)] == [
        (3, 2, CancelReason.MASS_CANCEL),
        (5, 3, CancelReason.MASS_CANCEL),
        (6, 5, CancelReason.MASS_CANCEL),
        (7, 1, CancelReason.MASS_CANCEL),
    ]
    done = events[-1]
    assert kinds(events) == [CXL] * 4 + [DONE]
    assert (done.seq, done.account, done.instrument, done.qty) == (11, A, -1, 4)
    assert list(resting(book)) == [4]


def test_mass_cancel_by_account_and_instrument(book: OrderBook) -> None:
    _place_mixed(book)
    events = book.mass_cancel(account=A, instrument=I1, seq=12)
    assert [e.order_id for e in only(events, CXL)] == [5, 7]
    assert (events[-1].kind, events[-1].instrument, events[-1].qty) == (DONE, I1, 2)
    assert sorted(resting(book)) == [3, 4, 6]


def test_mass_cancel_with_nothing_to_cancel_reports_zero(book: OrderBook) -> None:
    _place_mixed(book)
    before = book.state_hash()
    events = book.mass_cancel(account=C)
    assert [(e.kind, e.qty) for e in events] == [(DONE, 0)]
    assert book.mass_cancel(account=B, instrument=I2)[-1].qty == 0
    assert book.state_hash() == before


# --- replace --------------------------------------------------------------------------------


def test_replace_qty_decrease_keeps_time_priority(book: OrderBook) -> None:
    """CME: reducing quantity at the same price keeps the order's place in the queue."""
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(100), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=10)
    events = book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=6, seq=3)
    assert [(e.seq, e.kind, e.price, e.qty, e.leaves, e.shown) for e in events] == [
        (3, RPL, px(100), 6, 6, 6)
    ]
    assert book.level_orders(I1, BUY, px(100)) == [1, 2]
    assert book.best_bid_offer(I1) == (px(100), 16, 0, 0)
    # Unchanged quantity and price is a decrease by zero: still first.
    book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=6)
    assert book.level_orders(I1, BUY, px(100)) == [1, 2]


def test_replace_qty_increase_loses_time_priority(book: OrderBook) -> None:
    """CME: increasing quantity sends the order to the back of its level."""
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(100), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=10)
    events = book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=11)
    assert [(e.kind, e.qty, e.leaves) for e in events] == [(RPL, 11, 11)]
    assert book.level_orders(I1, BUY, px(100)) == [2, 1]


def test_replace_price_change_loses_priority_even_when_moved_back(book: OrderBook) -> None:
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(100), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=10)
    book.replace(order_id=1, account=A, instrument=I1, price=px(99), qty=10)
    book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=10)
    assert book.level_orders(I1, BUY, px(100)) == [2, 1]
    assert book.level_orders(I1, BUY, px(99)) == []


def test_replace_to_crossing_price_trades_as_taker(book: OrderBook) -> None:
    """A replace that crosses the spread takes liquidity, at the resting price."""
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(99), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(101), qty=4)
    events = book.replace(order_id=1, account=A, instrument=I1, price=px(102), qty=10)
    assert kinds(events) == [RPL, FILL, FILL]
    assert fills(events) == [(2, MAKER, px(101), 4, 0), (1, TAKER, px(101), 4, 6)]
    rows = resting(book)
    assert (rows[1]["price"], rows[1]["qty"], rows[1]["filled"], rows[1]["shown"]) == (
        px(102),
        10,
        4,
        6,
    )


def test_replace_qty_counts_the_filled_part(book: OrderBook) -> None:
    """FIX OrderQty on a replace is the new total, filled part included."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(100), qty=10)
    book.new_order(order_id=3, account=B, instrument=I1, side=BUY, price=px(100), qty=4)
    book.replace(
        order_id=1, account=A, instrument=I1, price=px(100), qty=8
    )  # leaves 6 -> 4: a decrease, keeps the front
    rows = resting(book)
    assert (rows[1]["qty"], rows[1]["filled"], rows[1]["shown"]) == (8, 4, 4)
    assert book.level_orders(I1, SELL, px(100)) == [1, 2]


def test_replace_below_filled_is_rejected(book: OrderBook) -> None:
    """The new total must exceed what is already filled."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=4)
    before = book.state_hash()
    for qty in (4, 3, 1):
        events = book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=qty)
        assert [(e.kind, e.reject_code) for e in events] == [
            (CREJ, BookReject.REPLACE_BELOW_FILLED)
        ]
        assert book.state_hash() == before
    events = book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=5)
    assert [(e.kind, e.leaves) for e in events] == [(RPL, 1)]


def test_replace_iceberg_decrease_cuts_hidden_first(book: OrderBook) -> None:
    """Reducing an iceberg takes from its hidden reserve before the visible slice."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=3
    )
    book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=5)
    rows = resting(book)
    assert (rows[1]["shown"], rows[1]["hidden"]) == (3, 2)
    book.replace(order_id=1, account=A, instrument=I1, price=px(100), qty=2)
    rows = resting(book)
    assert (rows[1]["shown"], rows[1]["hidden"]) == (2, 0)
    assert book.best_bid_offer(I1) == (0, 0, px(100), 2)


def test_replace_of_post_only_to_crossing_price_is_rejected(book: OrderBook) -> None:
    """A post-only order stays post-only through a replace."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    book.new_order(
        order_id=2, account=B, instrument=I1, side=BUY, price=px(99), qty=5, post_only=True
    )
    before = book.state_hash()
    events = book.replace(order_id=2, account=B, instrument=I1, price=px(101), qty=5)
    assert [(e.kind, e.reject_code) for e in events] == [(CREJ, BookReject.POST_ONLY_WOULD_TAKE)]
    assert book.state_hash() == before
    assert kinds(book.replace(order_id=2, account=B, instrument=I1, price=px(100), qty=5)) == [RPL]


# --- self-trade prevention ------------------------------------------------------------------


def _stp_book(book: OrderBook) -> None:
    """B's 3 at the front, then A's own 5, then C's 4, all asks at 100."""
    book.new_order(order_id=1, account=B, instrument=I1, side=SELL, price=px(100), qty=3)
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=3, account=C, instrument=I1, side=SELL, price=px(100), qty=4)


def test_stp_cancel_newest_is_the_default(book: OrderBook) -> None:
    """Binance EXPIRE_TAKER: the taker's remainder is cancelled at its own order."""
    _stp_book(book)
    events = book.new_order(order_id=9, account=A, instrument=I1, side=BUY, price=px(100), qty=10)
    assert kinds(events) == [ACC, FILL, FILL, CXL]
    assert fills(events)[1] == (9, TAKER, px(100), 3, 7)
    assert cancels(events) == [(9, 7, 0, CancelReason.SELF_TRADE)]
    assert book.level_orders(I1, SELL, px(100)) == [2, 3]
    assert book.best_bid_offer(I1)[:2] == (0, 0)


def test_stp_cancel_oldest_cancels_resting_and_goes_on(book: OrderBook) -> None:
    """Binance EXPIRE_MAKER: the resting own order is cancelled; the taker keeps trading."""
    _stp_book(book)
    events = book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=10,
        stp=STPMode.CANCEL_OLDEST,
    )
    assert kinds(events) == [ACC, FILL, FILL, CXL, FILL, FILL]
    assert cancels(events) == [(2, 5, 0, CancelReason.SELF_TRADE)]
    assert fills(events)[-1] == (9, TAKER, px(100), 4, 3)
    assert book.best_bid_offer(I1) == (px(100), 3, 0, 0)
    assert list(resting(book)) == [9]


def test_stp_cancel_both(book: OrderBook) -> None:
    """Binance EXPIRE_BOTH: both the resting own order and the taker's rest go."""
    _stp_book(book)
    events = book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=10,
        stp=STPMode.CANCEL_BOTH,
    )
    assert kinds(events) == [ACC, FILL, FILL, CXL, CXL]
    assert cancels(events) == [
        (2, 5, 0, CancelReason.SELF_TRADE),
        (9, 7, 0, CancelReason.SELF_TRADE),
    ]
    assert book.level_orders(I1, SELL, px(100)) == [3]


def test_stp_decrement_taker_larger(book: OrderBook) -> None:
    """Coinbase/CME decrement-and-cancel: both shrink by the smaller size; the smaller
    (here the resting order) is gone, the taker goes on with what is left."""
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=1)
    events = book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=8,
        stp=STPMode.DECREMENT_AND_CANCEL,
    )
    assert kinds(events) == [ACC, CXL, CXL, FILL, FILL]
    assert cancels(events) == [
        (1, 5, 0, CancelReason.SELF_TRADE),
        (9, 5, 3, CancelReason.SELF_TRADE),
    ]
    assert fills(events)[-1] == (9, TAKER, px(100), 1, 2)
    rows = resting(book)
    assert list(rows) == [9]
    assert (rows[9]["qty"], rows[9]["filled"], rows[9]["shown"]) == (3, 1, 2)


def test_stp_decrement_resting_larger_takes_hidden_first(book: OrderBook) -> None:
    """The resting iceberg shrinks from its hidden reserve first and keeps its place."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=3
    )
    book.new_order(order_id=2, account=B, instrument=I1, side=SELL, price=px(100), qty=2)
    events = book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=5,
        stp=STPMode.DECREMENT_AND_CANCEL,
    )
    assert kinds(events) == [ACC, CXL, CXL]
    resting_cxl, taker_cxl = only(events, CXL)
    assert (resting_cxl.order_id, resting_cxl.qty, resting_cxl.leaves, resting_cxl.shown) == (
        1,
        5,
        5,
        3,
    )
    assert (taker_cxl.order_id, taker_cxl.qty, taker_cxl.leaves) == (9, 5, 0)
    rows = resting(book)
    assert (rows[1]["qty"], rows[1]["shown"], rows[1]["hidden"]) == (5, 3, 2)
    assert book.level_orders(I1, SELL, px(100)) == [1, 2]
    assert book.best_bid_offer(I1) == (0, 0, px(100), 5)


def test_stp_decrement_beyond_hidden_reduces_visible(book: OrderBook) -> None:
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=10, display_qty=3
    )
    book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=8,
        stp=STPMode.DECREMENT_AND_CANCEL,
    )
    rows = resting(book)
    assert (rows[1]["qty"], rows[1]["shown"], rows[1]["hidden"]) == (2, 2, 0)
    assert book.best_bid_offer(I1) == (0, 0, px(100), 2)


def test_stp_decrement_equal_sizes_cancels_both(book: OrderBook) -> None:
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    events = book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=5,
        stp=STPMode.DECREMENT_AND_CANCEL,
    )
    assert cancels(events) == [
        (1, 5, 0, CancelReason.SELF_TRADE),
        (9, 5, 0, CancelReason.SELF_TRADE),
    ]
    assert book.open_order_count() == 0


def test_stp_mode_of_the_taker_applies(book: OrderBook) -> None:
    """Binance: the taker's STP mode decides, whatever the maker asked for."""
    book.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        stp=STPMode.CANCEL_OLDEST,
    )
    events = book.new_order(order_id=2, account=A, instrument=I1, side=BUY, price=px(100), qty=5)
    assert cancels(events) == [(2, 5, 0, CancelReason.SELF_TRADE)]
    assert list(resting(book)) == [1]


def test_stp_ioc_taker_cancelled_by_stp_gets_no_second_cancel(book: OrderBook) -> None:
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5)
    events = book.new_order(
        order_id=2, account=A, instrument=I1, side=BUY, price=px(100), qty=5, tif=TimeInForce.IOC
    )
    assert kinds(events) == [ACC, CXL]
    assert cancels(events) == [(2, 5, 0, CancelReason.SELF_TRADE)]


# --- validation -----------------------------------------------------------------------------

NOW = 50
MAX_ACCOUNTS = 64


def _validation_book(cls: type[OrderBook]) -> OrderBook:
    """Resting orders to collide with; order 1 is 4 filled, order 5 is post-only."""
    book = make_book(
        cls, (I1, LOT_INSTRUMENT), config=BookConfig(initial_accounts=8, max_accounts=MAX_ACCOUNTS)
    )
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=10, ts=NOW)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(97), qty=5, ts=NOW)
    book.new_order(
        order_id=10,
        account=C,
        instrument=I1,
        side=BUY,
        price=px(101),
        qty=4,
        tif=TimeInForce.IOC,
        ts=NOW,
    )
    book.new_order(
        order_id=4, account=A, instrument=LOT_INSTRUMENT, side=SELL, price=px(101), qty=20, ts=NOW
    )
    book.new_order(
        order_id=5, account=B, instrument=I1, side=BUY, price=px(98), qty=5, post_only=True, ts=NOW
    )
    return book


def _new(**changes: int) -> np.ndarray:
    """A valid resting buy from B; ``changes`` break one thing about it."""
    row = mr.new_order_row(
        order_id=100, account=B, instrument=I1, side=BUY, price=px(96), qty=5, seq=77, ts=NOW
    )
    for name, value in changes.items():
        row[getattr(c, f"C_{name.upper()}")] = value
    return row


def _cmd(row: np.ndarray) -> np.ndarray:
    row[c.C_SEQ], row[c.C_TS] = 77, NOW
    return row


GTD, IOC, FOK = TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK
MARKET = OrderType.MARKET

# (id, command row, expected code); NEW_ORDER rows give ORDER_REJECTED, others COMMAND_REJECTED.
BAD_INPUTS: list[tuple[str, Callable[[], np.ndarray], BookReject]] = [
    ("kind-0", lambda: _new(kind=0), BookReject.INVALID_COMMAND),
    ("kind-99", lambda: _new(kind=99), BookReject.INVALID_COMMAND),
    ("instrument-99", lambda: _new(instrument=99), BookReject.UNKNOWN_INSTRUMENT),
    ("instrument-neg", lambda: _new(instrument=-1), BookReject.UNKNOWN_INSTRUMENT),
    (
        "mass-instrument-99",
        lambda: _cmd(mr.mass_cancel_row(account=A, instrument=99)),
        BookReject.UNKNOWN_INSTRUMENT,
    ),
    ("account-neg", lambda: _new(account=-1), BookReject.INVALID_ACCOUNT),
    ("account-max", lambda: _new(account=MAX_ACCOUNTS), BookReject.INVALID_ACCOUNT),
    ("mass-account-neg", lambda: _cmd(mr.mass_cancel_row(account=-1)), BookReject.INVALID_ACCOUNT),
    (
        "mass-account-max",
        lambda: _cmd(mr.mass_cancel_row(account=MAX_ACCOUNTS)),
        BookReject.INVALID_ACCOUNT,
    ),
    ("order-id-0", lambda: _new(order_id=0), BookReject.INVALID_ORDER_ID),
    ("order-id-neg", lambda: _new(order_id=-3), BookReject.INVALID_ORDER_ID),
    ("side-0", lambda: _new(side=0), BookReject.INVALID_SIDE),
    ("side-3", lambda: _new(side=3), BookReject.INVALID_SIDE),
    ("type-0", lambda: _new(order_type=0), BookReject.INVALID_ORDER_TYPE),
    ("type-3", lambda: _new(order_type=3), BookReject.INVALID_ORDER_TYPE),
    ("tif-0", lambda: _new(tif=0), BookReject.INVALID_TIME_IN_FORCE),
    ("tif-5", lambda: _new(tif=5), BookReject.INVALID_TIME_IN_FORCE),
    ("market-gtc", lambda: _new(order_type=MARKET), BookReject.INVALID_TIME_IN_FORCE),
    (
        "market-gtd",
        lambda: _new(order_type=MARKET, tif=GTD, expire_ts=NOW + 10),
        BookReject.INVALID_TIME_IN_FORCE,
    ),
    ("stp-neg", lambda: _new(stp=-1), BookReject.INVALID_STP_MODE),
    ("stp-4", lambda: _new(stp=4), BookReject.INVALID_STP_MODE),
    ("post-only-2", lambda: _new(post_only=2), BookReject.INVALID_POST_ONLY),
    ("post-only-neg", lambda: _new(post_only=-1), BookReject.INVALID_POST_ONLY),
    ("post-only-ioc", lambda: _new(post_only=1, tif=IOC), BookReject.INVALID_POST_ONLY),
    ("post-only-fok", lambda: _new(post_only=1, tif=FOK), BookReject.INVALID_POST_ONLY),
    (
        "post-only-market",
        lambda: _new(post_only=1, order_type=MARKET, tif=IOC),
        BookReject.INVALID_POST_ONLY,
    ),
    ("price-0", lambda: _new(price=0), BookReject.PRICE_OUT_OF_RANGE),
    ("price-neg", lambda: _new(price=-px(96)), BookReject.PRICE_OUT_OF_RANGE),
    ("price-above-max", lambda: _new(price=MAX_PRICE + px(1)), BookReject.PRICE_OUT_OF_RANGE),
    (
        "market-protection-0",
        lambda: _new(order_type=MARKET, tif=IOC, price=0),
        BookReject.PRICE_OUT_OF_RANGE,
    ),
    ("price-off-tick", lambda: _new(price=px(96) + 500), BookReject.PRICE_OFF_TICK),
    ("qty-0", lambda: _new(qty=0), BookReject.QUANTITY_OUT_OF_RANGE),
    ("qty-neg", lambda: _new(qty=-5), BookReject.QUANTITY_OUT_OF_RANGE),
    ("qty-above-max", lambda: _new(qty=MAX_QTY + 1), BookReject.QUANTITY_OUT_OF_RANGE),
    (
        "qty-below-lot-min",
        lambda: _new(instrument=LOT_INSTRUMENT, qty=LOT - 1),
        BookReject.QUANTITY_OUT_OF_RANGE,
    ),
    ("qty-off-lot", lambda: _new(instrument=LOT_INSTRUMENT, qty=15), BookReject.QUANTITY_OFF_LOT),
    ("display-neg", lambda: _new(display_qty=-1), BookReject.INVALID_DISPLAY_QUANTITY),
    ("display-above-qty", lambda: _new(display_qty=6), BookReject.INVALID_DISPLAY_QUANTITY),
    (
        "display-off-lot",
        lambda: _new(instrument=LOT_INSTRUMENT, qty=20, display_qty=5),
        BookReject.INVALID_DISPLAY_QUANTITY,
    ),
    ("display-ioc", lambda: _new(display_qty=2, tif=IOC), BookReject.INVALID_DISPLAY_QUANTITY),
    (
        "display-market",
        lambda: _new(display_qty=2, order_type=MARKET, tif=IOC),
        BookReject.INVALID_DISPLAY_QUANTITY,
    ),
    ("gtd-expire-now", lambda: _new(tif=GTD, expire_ts=NOW), BookReject.INVALID_EXPIRE_TIME),
    ("gtd-expire-past", lambda: _new(tif=GTD, expire_ts=1), BookReject.INVALID_EXPIRE_TIME),
    ("gtc-with-expire", lambda: _new(expire_ts=NOW + 10), BookReject.INVALID_EXPIRE_TIME),
    (
        "ioc-with-expire",
        lambda: _new(tif=IOC, expire_ts=NOW + 10),
        BookReject.INVALID_EXPIRE_TIME,
    ),
    ("duplicate-own-id", lambda: _new(order_id=2), BookReject.DUPLICATE_ORDER_ID),
    ("duplicate-other-id", lambda: _new(order_id=1), BookReject.DUPLICATE_ORDER_ID),
    (
        "duplicate-id-other-instrument",
        lambda: _new(order_id=4, tif=IOC),
        BookReject.DUPLICATE_ORDER_ID,
    ),
    (
        "post-only-buy-crosses",
        lambda: _new(post_only=1, price=px(101)),
        BookReject.POST_ONLY_WOULD_TAKE,
    ),
    (
        "post-only-sell-crosses",
        lambda: _new(post_only=1, side=SELL, price=px(97)),
        BookReject.POST_ONLY_WOULD_TAKE,
    ),
    (
        "cancel-unknown",
        lambda: _cmd(mr.cancel_row(order_id=999, account=B, instrument=I1)),
        BookReject.UNKNOWN_ORDER,
    ),
    (
        "cancel-not-owner",
        lambda: _cmd(mr.cancel_row(order_id=1, account=B, instrument=I1)),
        BookReject.UNKNOWN_ORDER,
    ),
    (
        "replace-unknown",
        lambda: _cmd(mr.replace_row(order_id=999, account=B, instrument=I1, price=px(96), qty=5)),
        BookReject.UNKNOWN_ORDER,
    ),
    (
        "replace-price-0",
        lambda: _cmd(mr.replace_row(order_id=2, account=B, instrument=I1, price=0, qty=5)),
        BookReject.PRICE_OUT_OF_RANGE,
    ),
    (
        "replace-price-off-tick",
        lambda: _cmd(mr.replace_row(order_id=2, account=B, instrument=I1, price=px(97) + 1, qty=5)),
        BookReject.PRICE_OFF_TICK,
    ),
    (
        "replace-qty-0",
        lambda: _cmd(mr.replace_row(order_id=2, account=B, instrument=I1, price=px(97), qty=0)),
        BookReject.QUANTITY_OUT_OF_RANGE,
    ),
    (
        "replace-qty-off-lot",
        lambda: _cmd(
            mr.replace_row(order_id=4, account=A, instrument=LOT_INSTRUMENT, price=px(101), qty=25)
        ),
        BookReject.QUANTITY_OFF_LOT,
    ),
    (
        "replace-below-filled",
        lambda: _cmd(mr.replace_row(order_id=1, account=A, instrument=I1, price=px(101), qty=4)),
        BookReject.REPLACE_BELOW_FILLED,
    ),
    (
        "replace-post-only-crosses",
        lambda: _cmd(mr.replace_row(order_id=5, account=B, instrument=I1, price=px(101), qty=5)),
        BookReject.POST_ONLY_WOULD_TAKE,
    ),
]


@pytest.mark.parametrize(
    ("make_row", "code"),
    [(m, code) for _, m, code in BAD_INPUTS],
    ids=[n for n, _, _ in BAD_INPUTS],
)
def test_invalid_input_is_rejected_and_changes_nothing(
    book_cls: type[OrderBook], make_row: Callable[[], np.ndarray], code: BookReject
) -> None:
    """Validate fully before mutating: a reject carries its code and changes nothing."""
    book = _validation_book(book_cls)
    before = book.state_hash()
    row = make_row()
    events = book.submit(row)
    is_order = row[c.C_KIND] == BookCommandKind.NEW_ORDER
    assert [(e.seq, e.kind, e.reject_code) for e in events] == [
        (77, REJ if is_order else CREJ, code)
    ]
    e = events[0]
    assert (e.order_id, e.account, e.trade_id) == (row[c.C_ORDER_ID], row[c.C_ACCOUNT], 0)
    if is_order:
        assert (e.instrument, e.side, e.price, e.qty) == (
            row[c.C_INSTRUMENT],
            row[c.C_SIDE],
            row[c.C_PRICE],
            row[c.C_QTY],
        )
    assert book.state_hash() == before
    # The base order itself is fine: the reject was about the one broken field.
    assert kinds(book.submit(_new())) == [ACC]


def test_every_reject_code_has_a_bad_input() -> None:
    """Keep the table above complete when a code is added (ORDER_POOL_FULL: own test)."""
    covered = {code for _, _, code in BAD_INPUTS} | {BookReject.ORDER_POOL_FULL}
    assert covered == set(BookReject) - {BookReject.OK}


def test_validation_runs_in_a_fixed_order(book_cls: type[OrderBook]) -> None:
    """With several faults the first check in the fixed order reports (ascending code);
    both implementations must agree on which one."""
    book = make_book(
        book_cls, (I1, LOT_INSTRUMENT), config=BookConfig(initial_orders=2, max_orders=3)
    )
    book.new_order(
        order_id=1, account=A, instrument=LOT_INSTRUMENT, side=SELL, price=px(101), qty=10
    )
    book.new_order(order_id=2, account=A, instrument=I1, side=SELL, price=px(101), qty=10)
    book.new_order(order_id=3, account=A, instrument=I1, side=SELL, price=px(102), qty=10)
    fixes: list[tuple[dict[str, int], BookReject]] = [
        ({"instrument": LOT_INSTRUMENT}, BookReject.INVALID_ACCOUNT),
        ({"account": B}, BookReject.INVALID_ORDER_ID),
        ({"order_id": 1}, BookReject.INVALID_SIDE),
        ({"side": BUY}, BookReject.INVALID_ORDER_TYPE),
        ({"order_type": OrderType.LIMIT}, BookReject.INVALID_TIME_IN_FORCE),
        ({"tif": TimeInForce.GTC}, BookReject.INVALID_STP_MODE),
        ({"stp": STPMode.CANCEL_NEWEST}, BookReject.INVALID_POST_ONLY),
        ({"post_only": 1}, BookReject.PRICE_OUT_OF_RANGE),
        ({"price": px(101) + 1}, BookReject.PRICE_OFF_TICK),
        ({"price": px(101)}, BookReject.QUANTITY_OUT_OF_RANGE),
        ({"qty": 15}, BookReject.QUANTITY_OFF_LOT),
        ({"qty": 20}, BookReject.INVALID_DISPLAY_QUANTITY),
        ({"display_qty": 10}, BookReject.INVALID_EXPIRE_TIME),
        ({"expire_ts": 0}, BookReject.DUPLICATE_ORDER_ID),
        ({"order_id": 50}, BookReject.ORDER_POOL_FULL),
    ]
    fields = {
        "instrument": 99,
        "account": -1,
        "order_id": 0,
        "side": 0,
        "order_type": 0,
        "tif": 0,
        "stp": 9,
        "post_only": 2,
        "price": 0,
        "qty": 0,
        "display_qty": -1,
        "expire_ts": 7,
    }
    book.clock_tick(NOW)
    before = book.state_hash()
    assert book.submit(_new(**fields))[0].reject_code == BookReject.UNKNOWN_INSTRUMENT
    for fix, code in fixes:
        fields.update(fix)
        events = book.submit(_new(**fields))
        assert [(e.kind, e.reject_code) for e in events] == [(REJ, code)], fix
        assert book.state_hash() == before
    book.cancel(order_id=3, account=A, instrument=I1)
    assert book.submit(_new(**fields))[0].reject_code == BookReject.POST_ONLY_WOULD_TAKE
    fields["price"] = px(100)
    assert kinds(book.submit(_new(**fields))) == [ACC]


def test_order_pool_full_refuses_and_never_overwrites(book_cls: type[OrderBook]) -> None:
    """exchange-core style capacity: at max_orders new resting orders are refused; the
    existing ones are untouched, and a freed slot can be used again."""
    book = make_book(book_cls, (I1, I2), config=BookConfig(initial_orders=4, max_orders=4))
    book.new_order(order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=5)
    book.new_order(
        order_id=2, account=B, instrument=I1, side=SELL, price=px(101), qty=5, display_qty=1
    )
    book.new_order(order_id=3, account=A, instrument=I1, side=BUY, price=px(99), qty=5)
    book.new_order(
        order_id=4,
        account=C,
        instrument=I2,
        side=SELL,
        price=px(50),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=1_000,
    )
    before, rows_before = book.state_hash(), resting(book)
    for oid, tif, expire in ((5, TimeInForce.GTC, 0), (6, TimeInForce.GTD, 500)):
        events = book.new_order(
            order_id=oid,
            account=D,
            instrument=I1,
            side=BUY,
            price=px(98),
            qty=1,
            tif=tif,
            expire_ts=expire,
        )
        assert [(e.kind, e.reject_code) for e in events] == [(REJ, BookReject.ORDER_POOL_FULL)]
    assert book.state_hash() == before
    assert resting(book) == rows_before
    # Orders that cannot rest still trade; filling order 1 frees a slot.
    events = book.new_order(
        order_id=7, account=D, instrument=I1, side=BUY, price=px(101), qty=6, tif=TimeInForce.IOC
    )
    assert fills(events) == [
        (1, MAKER, px(101), 5, 0),
        (7, TAKER, px(101), 5, 1),
        (2, MAKER, px(101), 1, 4),
        (7, TAKER, px(101), 1, 0),
    ]
    assert kinds(
        book.new_order(order_id=8, account=D, instrument=I1, side=BUY, price=px(98), qty=1)
    ) == [ACC]
    assert book.open_order_count() == 4
    # Churn through the pool many times: every order keeps its own attributes.
    expected = resting(book)
    for k in range(20):
        oldest = min(expected)
        cancelled = book.cancel(
            order_id=oldest,
            account=expected[oldest]["account"],
            instrument=expected[oldest]["instrument"],
        )
        assert cancels(cancelled)[0][:2] == (
            oldest,
            expected[oldest]["shown"] + expected[oldest]["hidden"],
        )
        del expected[oldest]
        oid = 100 + k
        assert kinds(
            book.new_order(
                order_id=oid,
                account=A + k % 4,
                instrument=I2,
                side=BUY,
                price=px(10 + k),
                qty=1 + k,
            )
        ) == [ACC]
        assert book.new_order(
            order_id=1000 + k, account=A, instrument=I2, side=BUY, price=px(1), qty=1
        )[0].reject_code == (BookReject.ORDER_POOL_FULL)
        expected[oid] = resting(book)[oid]
        assert resting(book) == expected
        assert book.open_order_count() == 4


# --- queries --------------------------------------------------------------------------------


def test_depth_best_bid_offer_and_level_orders(book: OrderBook) -> None:
    """L2 depth: best first on each side, (price, visible qty, order count) per level."""
    assert book.best_bid_offer(I1) == (0, 0, 0, 0)
    bids, asks = book.depth(I1)
    assert bids.shape == asks.shape == (0, 3)
    book.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(99), qty=2)
    book.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=3)
    book.new_order(
        order_id=3, account=C, instrument=I1, side=BUY, price=px(99), qty=4, display_qty=1
    )
    book.new_order(order_id=4, account=A, instrument=I1, side=BUY, price=px(97), qty=5)
    book.new_order(order_id=5, account=B, instrument=I1, side=SELL, price=px(103), qty=6)
    book.new_order(order_id=6, account=C, instrument=I1, side=SELL, price=px(102), qty=7)
    book.new_order(order_id=7, account=D, instrument=I1, side=SELL, price=px(102), qty=8)
    bids, asks = book.depth(I1)
    assert bids.dtype == asks.dtype == np.int64
    assert bids.tolist() == [[px(100), 3, 1], [px(99), 3, 2], [px(97), 5, 1]]
    assert asks.tolist() == [[px(102), 15, 2], [px(103), 6, 1]]
    bids, asks = book.depth(I1, 2)
    assert bids.tolist() == [[px(100), 3, 1], [px(99), 3, 2]]
    assert asks.tolist() == [[px(102), 15, 2], [px(103), 6, 1]]
    bids, asks = book.depth(I1, 1)
    assert (bids.shape, asks.shape) == ((1, 3), (1, 3))
    assert book.best_bid_offer(I1) == (px(100), 3, px(102), 15)
    assert book.level_orders(I1, BUY, px(99)) == [1, 3]
    assert book.level_orders(I1, SELL, px(102)) == [6, 7]
    assert book.level_orders(I1, SELL, px(99)) == []
    assert book.level_orders(I1, BUY, px(98)) == []
    assert level_view(book, I1, BUY) == [(px(100), [2]), (px(99), [1, 3]), (px(97), [4])]
    assert book.open_order_count() == 7
    assert book.best_bid_offer(I2) == (0, 0, 0, 0)


def test_every_event_carries_the_seq_of_its_command(book: OrderBook) -> None:
    """Events are tagged with the sequence number of the command that caused them, also
    when many commands travel in one batch and for expiries a command triggers."""
    rows = np.stack(
        [
            mr.new_order_row(
                order_id=1, account=A, instrument=I1, side=SELL, price=px(100), qty=5, seq=101, ts=1
            ),
            mr.new_order_row(
                order_id=2,
                account=A,
                instrument=I1,
                side=SELL,
                price=px(101),
                qty=5,
                tif=TimeInForce.GTD,
                expire_ts=5,
                seq=102,
                ts=2,
            ),
            mr.new_order_row(
                order_id=3, account=B, instrument=I1, side=BUY, price=px(100), qty=2, seq=103, ts=3
            ),
            mr.replace_row(
                order_id=1, account=A, instrument=I1, price=px(100), qty=10, seq=104, ts=4
            ),
            mr.new_order_row(
                order_id=4,
                account=C,
                instrument=I1,
                side=BUY,
                price=px(101),
                qty=20,
                tif=TimeInForce.IOC,
                seq=105,
                ts=5,
            ),
            mr.cancel_row(order_id=1, account=A, instrument=I1, seq=106, ts=6),
            mr.mass_cancel_row(account=B, seq=107, ts=7),
            mr.clock_tick_row(8, seq=108),
            mr.cancel_row(order_id=42, account=A, instrument=I1, seq=109, ts=9),
        ]
    )
    events = decode_events(book.process(rows))
    by_seq = [(e.seq, e.kind) for e in events]
    assert by_seq == [
        (101, ACC),
        (102, ACC),
        (103, ACC),
        (103, FILL),
        (103, FILL),
        (104, RPL),
        (105, EXP),
        (105, ACC),
        (105, FILL),
        (105, FILL),
        (105, CXL),
        (106, CREJ),  # order 1 was filled by the IOC
        (107, DONE),
        (109, CREJ),
    ]


def test_empty_batch_gives_no_events(book: OrderBook) -> None:
    out = book.process(np.zeros((0, c.N_COMMAND_FIELDS), dtype=np.int64))
    assert out.shape == (0, c.N_EVENT_FIELDS)
    assert out.dtype == np.int64


def test_batch_equals_one_command_at_a_time(book_cls: type[OrderBook]) -> None:
    """Batching is a transport detail: it must not change a single event."""
    rows = _follow_up_commands()
    one_by_one = make_book(book_cls, (I1, I2, LOT_INSTRUMENT))
    batched = make_book(book_cls, (I1, I2, LOT_INSTRUMENT))
    _build_rich_state(one_by_one)
    _build_rich_state(batched)
    single = np.concatenate([one_by_one.process(r.reshape(1, -1)) for r in rows])
    assert_same_events(single, batched.process(rows))
    assert one_by_one.state_hash() == batched.state_hash()


def test_listing_an_instrument_twice_is_refused(book: OrderBook) -> None:
    with pytest.raises(ValueError):
        book.add_instrument(spec(I1))


# --- snapshot and restore ---------------------------------------------------------------------


def _build_rich_state(book: OrderBook) -> None:
    """Every kind of resting order: partial fills, icebergs, GTD, post-only, STP modes."""
    book.new_order(
        order_id=1, account=A, instrument=I1, side=SELL, price=px(101), qty=10, display_qty=3, ts=1
    )
    book.new_order(
        order_id=2,
        account=B,
        instrument=I1,
        side=SELL,
        price=px(101),
        qty=4,
        stp=STPMode.CANCEL_BOTH,
        ts=2,
    )
    book.new_order(
        order_id=3,
        account=C,
        instrument=I1,
        side=SELL,
        price=px(103),
        qty=6,
        tif=TimeInForce.GTD,
        expire_ts=40,
        ts=3,
    )
    book.new_order(
        order_id=4,
        account=D,
        instrument=I1,
        side=BUY,
        price=px(101),
        qty=5,
        tif=TimeInForce.IOC,
        ts=4,
    )
    book.new_order(
        order_id=5,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(99),
        qty=7,
        post_only=True,
        stp=STPMode.CANCEL_OLDEST,
        ts=5,
    )
    book.new_order(
        order_id=6,
        account=B,
        instrument=I1,
        side=BUY,
        price=px(99),
        qty=2,
        tif=TimeInForce.GTD,
        expire_ts=20,
        ts=6,
    )
    book.new_order(
        order_id=7, account=C, instrument=I2, side=BUY, price=px(50), qty=9, display_qty=2, ts=7
    )
    book.new_order(
        order_id=8,
        account=D,
        instrument=LOT_INSTRUMENT,
        side=SELL,
        price=px(70),
        qty=30,
        display_qty=10,
        ts=8,
    )
    book.new_order(
        order_id=9,
        account=A,
        instrument=I1,
        side=BUY,
        price=px(98),
        qty=8,
        stp=STPMode.DECREMENT_AND_CANCEL,
        ts=9,
    )
    book.replace(order_id=9, account=A, instrument=I1, price=px(98), qty=6, ts=10)


def _follow_up_commands() -> np.ndarray:
    """Commands that exercise every kind of order the rich state holds."""
    return np.stack(
        [
            mr.new_order_row(
                order_id=20, account=D, instrument=I1, side=BUY, price=px(103), qty=12, seq=1, ts=11
            ),
            mr.new_order_row(
                order_id=21,
                account=A,
                instrument=I1,
                side=SELL,
                price=px(98),
                qty=20,
                stp=STPMode.CANCEL_OLDEST,
                seq=2,
                ts=12,
            ),
            mr.clock_tick_row(20, seq=3),
            mr.replace_row(
                order_id=7, account=C, instrument=I2, price=px(50), qty=12, seq=4, ts=21
            ),
            mr.new_order_row(
                order_id=22, account=D, instrument=I2, side=SELL, price=px(49), qty=5, seq=5, ts=22
            ),
            mr.new_order_row(
                order_id=23,
                account=C,
                instrument=LOT_INSTRUMENT,
                side=BUY,
                price=px(71),
                qty=20,
                seq=6,
                ts=23,
            ),
            mr.new_order_row(
                order_id=1, account=B, instrument=I1, side=BUY, price=px(90), qty=1, seq=7, ts=24
            ),
            mr.new_order_row(
                order_id=24,
                account=B,
                instrument=I1,
                side=BUY,
                price=px(80),
                qty=1,
                tif=TimeInForce.GTD,
                expire_ts=41,
                seq=8,
                ts=25,
            ),
            mr.clock_tick_row(41, seq=9),
            mr.mass_cancel_row(account=A, seq=10, ts=42),
            mr.new_order_row(
                order_id=25,
                account=D,
                instrument=I1,
                side=SELL,
                price=px(60),
                qty=50,
                tif=TimeInForce.IOC,
                seq=11,
                ts=43,
            ),
        ]
    )


def _roundtrip(book: OrderBook, target_cls: type[OrderBook]) -> OrderBook:
    data = book.snapshot().to_bytes()
    return target_cls.restore(BookSnapshot.from_bytes(data))


@pytest.mark.parametrize("target_cls", [ReferenceBook, FastBook], ids=["to-reference", "to-fast"])
def test_snapshot_restore_gives_same_state_and_behaviour(
    book_cls: type[OrderBook], target_cls: type[OrderBook]
) -> None:
    """Snapshot + replay = live state, across implementations: restored books hash the
    same, answer the same queries and produce the same events from then on."""
    live = make_book(book_cls, (I1, I2, LOT_INSTRUMENT))
    _build_rich_state(live)
    snap = live.snapshot()
    assert snap.trade_id > 0 and snap.now == 10
    restored = _roundtrip(live, target_cls)
    assert restored.state_hash() == live.state_hash()
    assert np.array_equal(restored.snapshot().orders, snap.orders)
    assert np.array_equal(restored.snapshot().specs, snap.specs)
    assert restored.open_order_count() == live.open_order_count()
    for iid in (I1, I2, LOT_INSTRUMENT):
        for got, want in zip(restored.depth(iid), live.depth(iid), strict=True):
            assert np.array_equal(got, want)
        for side in (BUY, SELL):
            assert level_view(restored, iid, side) == level_view(live, iid, side)
    rows = _follow_up_commands()
    want = live.process(rows)
    got = restored.process(rows)
    assert_same_events(want, got)
    assert len(want) > 30
    assert restored.state_hash() == live.state_hash()


def test_restore_keeps_trade_id_and_clock(book_cls: type[OrderBook]) -> None:
    """Trade ids continue after a restore and expiries still follow the restored clock."""
    live = make_book(book_cls, (I1,))
    live.new_order(
        order_id=1,
        account=A,
        instrument=I1,
        side=SELL,
        price=px(100),
        qty=5,
        tif=TimeInForce.GTD,
        expire_ts=100,
        ts=60,
    )
    live.new_order(order_id=2, account=B, instrument=I1, side=BUY, price=px(100), qty=2, ts=61)
    restored = _roundtrip(live, book_cls)
    assert restored.snapshot().now == 61
    events = restored.new_order(
        order_id=3, account=C, instrument=I1, side=BUY, price=px(100), qty=1, ts=62
    )
    assert only(events, FILL)[0].trade_id == 2
    events = restored.new_order(
        order_id=4,
        account=C,
        instrument=I1,
        side=BUY,
        price=px(100),
        qty=1,
        tif=TimeInForce.GTD,
        expire_ts=61,
        ts=0,
    )
    assert events[0].reject_code == BookReject.INVALID_EXPIRE_TIME
    assert kinds(restored.clock_tick(100)) == [EXP]


def test_restore_into_small_config_grows_pool(book_cls: type[OrderBook]) -> None:
    """Pools start small and grow by doubling: restore must not need a big initial pool."""
    live = make_book(book_cls, (I1,))
    for oid in range(1, 40):
        live.new_order(
            order_id=oid,
            account=oid % 5,
            instrument=I1,
            side=BUY if oid % 2 else SELL,
            price=px(100 + (-1) ** oid * (oid % 7 + 1)),
            qty=oid,
        )
    restored = type(live).restore(live.snapshot(), BookConfig(initial_orders=1, initial_accounts=1))
    assert restored.state_hash() == live.state_hash()
    assert restored.open_order_count() == 39


def test_snapshot_is_canonical(book: OrderBook) -> None:
    """Orders per instrument ascending, bids then asks, best level first, FIFO inside."""
    _build_rich_state(book)
    orders = book.snapshot().orders
    keys = [
        (int(r[c.S_INSTRUMENT]), int(r[c.S_SIDE]), int(r[c.S_PRICE]), int(r[c.S_ORDER_ID]))
        for r in orders
    ]
    assert keys == [
        (I1, BUY, px(99), 5),
        (I1, BUY, px(99), 6),
        (I1, BUY, px(98), 9),
        (I1, SELL, px(101), 2),
        (I1, SELL, px(101), 1),
        (I1, SELL, px(103), 3),
        (I2, BUY, px(50), 7),
        (LOT_INSTRUMENT, SELL, px(70), 8),
    ]
    row1 = next(r for r in orders if r[c.S_ORDER_ID] == 1)
    assert row1[[c.S_QTY, c.S_FILLED, c.S_SHOWN, c.S_HIDDEN, c.S_DISPLAY]].tolist() == [
        10,
        3,
        3,
        4,
        3,
    ]
    row3 = next(r for r in orders if r[c.S_ORDER_ID] == 3)
    assert row3[[c.S_TIF, c.S_EXPIRE_TS]].tolist() == [TimeInForce.GTD, 40]
    row5 = next(r for r in orders if r[c.S_ORDER_ID] == 5)
    assert row5[[c.S_STP, c.S_POST_ONLY]].tolist() == [STPMode.CANCEL_OLDEST, 1]


def test_snapshot_bytes_refuse_wrong_shapes() -> None:
    bad = BookSnapshot(np.zeros((1, 3), dtype=np.int64), np.zeros((0, c.N_SNAPSHOT_FIELDS)), 0, 0)
    with pytest.raises(ValueError):
        BookSnapshot.from_bytes(bad.to_bytes())


def test_state_hash_tracks_state_not_history(book_cls: type[OrderBook]) -> None:
    """Two books reaching the same state by different paths hash the same; a different
    state hashes differently."""
    one = make_book(book_cls, (I1,))
    two = make_book(book_cls, (I1,))
    one.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(99), qty=5)
    two.new_order(order_id=1, account=A, instrument=I1, side=BUY, price=px(99), qty=9)
    two.replace(order_id=1, account=A, instrument=I1, price=px(99), qty=5)
    assert one.state_hash() == two.state_hash()
    two.new_order(order_id=2, account=A, instrument=I1, side=BUY, price=px(98), qty=1)
    assert one.state_hash() != two.state_hash()


def test_queries_on_an_unlisted_instrument_raise_key_error(book: OrderBook) -> None:
    """Queries are not commands: asking about an unlisted instrument is a caller bug."""
    with pytest.raises(KeyError):
        book.depth(99)
    with pytest.raises(KeyError):
        book.level_orders(99, BUY, px(100))


def test_restore_of_a_wide_book_sizes_the_pool_once_and_behaves_the_same() -> None:
    """Thousands of orders on thousands of levels spread over many 4,096-tick bitmap
    chunks, restored into the smallest pools (``_size_for`` grows the arena to fit before
    loading): the restored book is the live one (hash, levels, and the events of orders
    that sweep it)."""
    rng = np.random.default_rng(5)
    live = make_book(FastBook, (I1, I2))
    oid = 0
    for iid in (I1, I2):
        for _ in range(2_500):
            oid += 1
            side = BUY if rng.random() < 0.5 else SELL
            off = int(rng.integers(1, 60_000))  # up to ~15 chunks away from the middle
            price = px(100_000 - off if side == BUY else 100_000 + off)
            live.new_order(
                order_id=oid,
                account=int(rng.integers(1, 40)),
                instrument=iid,
                side=side,
                price=price,
                qty=int(rng.integers(1, 9)),
            )
    small = BookConfig(initial_orders=1, initial_accounts=1)
    restored = FastBook.restore(live.snapshot(), small)
    assert int(restored.state.mem[mk.H_ORDER_CAP]) >= live.open_order_count()
    assert restored.state_hash() == live.state_hash()
    for iid in (I1, I2):
        for side in (BUY, SELL):
            assert level_view(restored, iid, side) == level_view(live, iid, side)
    sweep = [(oid + 1, I1, BUY, px(200_000)), (oid + 2, I2, SELL, px(1))]
    for new_id, iid, side, price in sweep:
        want = live.new_order(
            order_id=new_id,
            account=99,
            instrument=iid,
            side=side,
            price=price,
            qty=5_000,
            tif=TimeInForce.IOC,
        )
        got = restored.new_order(
            order_id=new_id,
            account=99,
            instrument=iid,
            side=side,
            price=price,
            qty=5_000,
            tif=TimeInForce.IOC,
        )
        assert want == got and len(want) > 100
    assert restored.state_hash() == live.state_hash()
