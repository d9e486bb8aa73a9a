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
        seq, 3, oid, acct, side, 2_000_000, qty, leaves, leaves, tid, liq, fee, contra_oid,
        contra_acct,
    )  # fmt: skip


def test_a_trade_moves_notional_and_both_fees() -> None:
    batch = map_events(
        _rows(
            Deposited(1, 7, 0, 50_000_000, 50_000_000, ref=99),
            OrderAccepted(2, 3, 10, 8, Side.SELL, 2_000_000, 5, 5, 5),
            OrderAccepted(3, 3, 11, 7, Side.BUY, 2_000_000, 2, 2, 2),
            _fill(3, 10, 8, Side.SELL, 2, 3, 1, Liquidity.MAKER, -800, 11, 7),
            _fill(3, 11, 7, Side.BUY, 2, 0, 1, Liquidity.TAKER, 4_000, 10, 8),
            Withdrawn(4, 7, 0, 1_000_000, 44_996_000, ref=5),
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
            OrderReplaced(9, 3, 10, 8, Side.SELL, 2_001_000, 9, 7, 7),
            OrderCancelled(10, 3, 10, 8, Side.SELL, 2_001_000, 2, 5, 5, CancelReason.SELF_TRADE),
            OrderCancelled(11, 3, 12, 9, Side.BUY, 2_000_000, 4, 0, 0, CancelReason.USER),
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
        map_events(_rows(Deposited(5, 7, 0, 1, 1), Deposited(4, 7, 0, 1, 2)))
    with pytest.raises(LedgerMappingError, match="shape"):
        map_events(np.zeros((0, 15), np.int64))
