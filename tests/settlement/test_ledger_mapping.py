"""``settlement.ledger.map_events`` on hand-written events: the money rule, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from exchange.events import (
    Deposited,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderReplaced,
    Withdrawn,
)
from matching.codes import CancelReason, Liquidity, Side
from settlement.ledger import LedgerKind, LedgerMappingError, MovementKind, map_events


def _rows(*events) -> np.ndarray:
    return np.stack([e.to_row() for e in events])


def _pick(rows: np.ndarray, *cols: str) -> list[tuple[int, ...]]:
    return [tuple(int(r[c]) for c in cols) for r in rows]


def _fill(seq, oid, acct, side, qty, leaves, tid, liq, fee, contra_oid, contra_acct):
    return OrderFilled(
        seq=seq,
        instrument=3,
        order_id=oid,
        account=acct,
        side=side,
        price=2_000_000,
        qty=qty,
        leaves=leaves,
        shown=leaves,
        trade_id=tid,
        liquidity=liq,
        fee=fee,
        contra_order_id=contra_oid,
        contra_account=contra_acct,
    )


def test_a_trade_moves_notional_and_both_fees() -> None:
    batch = map_events(
        _rows(
            Deposited(seq=1, account=7, asset=0, amount=50_000_000, balance=50_000_000, ref=99),
            OrderAccepted(
                seq=2,
                instrument=3,
                order_id=10,
                account=8,
                side=Side.SELL,
                price=2_000_000,
                qty=5,
                leaves=5,
                shown=5,
            ),
            OrderAccepted(
                seq=3,
                instrument=3,
                order_id=11,
                account=7,
                side=Side.BUY,
                price=2_000_000,
                qty=2,
                leaves=2,
                shown=2,
            ),
            _fill(3, 10, 8, Side.SELL, 2, 3, 1, Liquidity.MAKER, -800, 11, 7),
            _fill(3, 11, 7, Side.BUY, 2, 0, 1, Liquidity.TAKER, 4_000, 10, 8),
            Withdrawn(seq=4, account=7, asset=0, amount=1_000_000, balance=44_996_000, ref=5),
        )
    )
    entries = _pick(
        batch.entries,
        *("movement_id", "movement_kind", "ledger_kind", "account_id", "instrument_id"),
        *("amount", "ref"),
    )
    assert entries == [
        (1 << 20, MovementKind.DEPOSIT, LedgerKind.EXTERNAL, 7, 0, -50_000_000, 99),
        (1 << 20, MovementKind.DEPOSIT, LedgerKind.BALANCE, 7, 0, 50_000_000, 99),
        (3 << 20, MovementKind.FILL, LedgerKind.BALANCE, 7, 0, -4_004_000, 1),
        (3 << 20, MovementKind.FILL, LedgerKind.ESCROW, 8, 3, 4_000_800, 1),
        (3 << 20, MovementKind.FILL, LedgerKind.BALANCE, 0, 0, 3_200, 1),
        (4 << 20, MovementKind.WITHDRAWAL, LedgerKind.BALANCE, 7, 0, -1_000_000, 5),
        (4 << 20, MovementKind.WITHDRAWAL, LedgerKind.EXTERNAL, 7, 0, 1_000_000, 5),
    ]
    trade = batch.trades[0]
    assert (trade["buy_order_id"], trade["sell_order_id"], trade["taker_side"]) == (11, 10, 1)
    assert (trade["buy_fee"], trade["sell_fee"]) == (4_000, -800)
    balances = {
        (int(b["ledger_kind"]), int(b["account_id"]), int(b["instrument_id"])): int(b["amount"])
        for b in batch.balances
    }
    assert balances == {
        (1, 0, 0): 3_200,
        (1, 7, 0): 50_000_000 - 4_004_000 - 1_000_000,
        (2, 7, 0): -49_000_000,
        (3, 8, 3): 4_000_800,
    }
    orders = _pick(batch.orders_new, "order_id", "leaves", "filled", "status")
    assert sorted(orders) == [(10, 3, 2, 2), (11, 0, 2, 3)]  # partially filled; filled


def test_changes_to_orders_accepted_earlier() -> None:
    batch = map_events(
        _rows(
            OrderReplaced(
                seq=9,
                instrument=3,
                order_id=10,
                account=8,
                side=Side.SELL,
                price=2_001_000,
                qty=9,
                leaves=7,
                shown=7,
            ),
            OrderCancelled(
                seq=10,
                instrument=3,
                order_id=10,
                account=8,
                side=Side.SELL,
                price=2_001_000,
                qty=2,
                leaves=5,
                shown=5,
                reason=CancelReason.SELF_TRADE,
            ),
            OrderCancelled(
                seq=11,
                instrument=3,
                order_id=12,
                account=9,
                side=Side.BUY,
                price=2_000_000,
                qty=4,
                leaves=0,
                shown=0,
                reason=CancelReason.USER,
            ),
        )
    )
    assert len(batch.orders_new) == 0
    changes = _pick(batch.orders_changed, "order_id", "price", "qty", "qty_cut", "leaves", "status")
    assert changes == [
        (10, 2_001_000, 9, 2, 5, 0),  # replaced, then cut by a self-trade decrement; live
        (12, 0, 0, 0, 0, 4),  # cancelled, price and quantity untouched
    ]


def test_malformed_streams_are_refused() -> None:
    half = _fill(3, 11, 7, Side.BUY, 2, 0, 1, Liquidity.TAKER, 4_000, 10, 8)
    with pytest.raises(LedgerMappingError, match="other side"):
        map_events(_rows(half))
    other = _fill(3, 10, 8, Side.SELL, 3, 0, 1, Liquidity.MAKER, 0, 11, 7)  # qty differs
    with pytest.raises(LedgerMappingError, match="do not pair"):
        map_events(_rows(other, half))
    with pytest.raises(LedgerMappingError, match="sequence order"):
        map_events(
            _rows(
                Deposited(seq=5, account=7, asset=0, amount=1, balance=1),
                Deposited(seq=4, account=7, asset=0, amount=1, balance=2),
            )
        )
    with pytest.raises(LedgerMappingError, match="shape"):
        map_events(np.zeros((0, 15), np.int64))
