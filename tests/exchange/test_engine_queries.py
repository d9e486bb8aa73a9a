"""The engine's read-only queries: instrument status, balances, reservations, open orders.

One small market, worked out by hand: a buyer with USDC and SOL collateral and two bids,
a provider with an iceberg offer, then a trade. The random cross-check against the
reference core is in tests/risk/test_core_model.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from flow import T0

from exchange import commands as C
from exchange.engine import Engine
from exchange.queries import AssetBalance, OpenOrder, PositionReservation, Reservations
from matching import codes as mc
from matching.codes import Side, STPMode, TimeInForce
from risk.codes import InstrumentState, RiskEventKind, RiskReject, Role

TICK = 1_000
REF = 2_000_000
BUYER, PROVIDER, NEVER_OPENED = 1, 2, 99
USDC, SOL = 0, 1
HOUR = 3_600 * 10**9
EXPIRE = T0 + HOUR


def clock():
    calls = iter(range(10**9))
    return lambda: T0 + next(calls) * 1_000_000


def order(**fields: Any) -> C.SubmitOrder:
    return C.SubmitOrder(instrument=1, **fields)


SETUP = [
    C.ListInstrument(
        instrument=1, tick_size=TICK, lot_size=1, min_price=TICK, max_price=10**9, min_qty=1,
        max_qty=1_000, reference_price=REF,
    ),
    C.ListInstrument(
        instrument=2, tick_size=TICK, lot_size=1, min_price=TICK, max_price=10**9, min_qty=1,
        max_qty=1_000, reference_price=REF, status=InstrumentState.PRE_OPEN,
    ),
    C.OpenAccount(account=BUYER, role=Role.BUYER),
    C.OpenAccount(account=PROVIDER, role=Role.PROVIDER),
    C.Deposit(account=BUYER, asset=USDC, amount=10_000_000),  # 10 USDC
    C.RegisterCapacity(account=PROVIDER, instrument=1, gpu_hours=50),
    # 150 USDC per SOL, no confidence interval: 120 USDC after the 20% haircut
    C.SetOraclePrice(asset=SOL, price=150 * 10**8, conf=0, expo=-8, publish_time=T0 // 10**9),
    C.Deposit(account=BUYER, asset=SOL, amount=10**8),  # 0.1 SOL: 12 USDC of collateral
]  # fmt: skip
ORDERS = [
    # reserves 5 x 2.0 + 0.1% taker fee = 10.01 USDC
    order(order_id=11, account=BUYER, side=Side.BUY, price=2_000_000, qty=5),
    order(order_id=12, account=PROVIDER, side=Side.SELL, price=2_100_000, qty=7, display_qty=2),
    # reserves 2 x 1.99 + fee, rounded up = 3.98398 USDC
    order(
        order_id=13, account=BUYER, side=Side.BUY, price=1_990_000, qty=2,
        tif=TimeInForce.GTD, expire_ts=EXPIRE,
    ),
]  # fmt: skip
QUOTE_RESERVED = 10_010_000 + 3_983_980


def open_market(directory: Path) -> Engine:
    engine = Engine.open(directory, clock=clock())
    engine.submit(C.rows(SETUP))
    engine.submit(C.rows(ORDERS))
    return engine


@pytest.fixture
def engine(tmp_path: Path):
    with open_market(tmp_path) as e:
        yield e


def test_instrument_status(engine: Engine) -> None:
    assert engine.instrument_status(1) == InstrumentState.TRADING
    assert engine.instrument_status(2) == InstrumentState.PRE_OPEN
    for never_listed in (0, 3, 10**6, -1):
        assert engine.instrument_status(never_listed) is None
    engine.submit(C.rows([C.SetInstrumentStatus(instrument=1, status=InstrumentState.HALTED)]))
    assert engine.instrument_status(1) == InstrumentState.HALTED


def test_balances_split_what_open_orders_hold_back(engine: Engine) -> None:
    # collateral 10 + 12 USDC, reserved 13.99398: 8.00602 USDC of value is free
    free = 10_000_000 + 12_000_000 - QUOTE_RESERVED
    assert free == 8_006_020
    # SOL: keep the least whose value floor(0.12 * units) still covers 13.99398 - 10
    keep = 33_283_167
    assert 12 * keep // 100 >= 3_993_980 > 12 * (keep - 1) // 100
    assert engine.balances(BUYER) == (
        AssetBalance(asset=USDC, total=10_000_000, reserved=10_000_000 - free, available=free),
        AssetBalance(asset=SOL, total=10**8, reserved=keep, available=10**8 - keep),
    )
    assert engine.balances(PROVIDER) == (
        AssetBalance(USDC, 0, 0, 0),
        AssetBalance(SOL, 0, 0, 0),
    )
    assert engine.balances(NEVER_OPENED) is None


@pytest.mark.parametrize("asset", [USDC, SOL])
def test_available_is_exactly_what_a_withdrawal_is_granted(engine: Engine, asset: int) -> None:
    before = engine.balances(BUYER)
    assert before is not None
    available = before[asset].available
    (refused,) = engine.submit(
        C.rows([C.Withdraw(account=BUYER, asset=asset, amount=available + 1)])
    )
    assert refused[mc.E_REASON] == RiskReject.INSUFFICIENT_BALANCE
    (granted,) = engine.submit(C.rows([C.Withdraw(account=BUYER, asset=asset, amount=available)]))
    assert granted[mc.E_KIND] == RiskEventKind.WITHDRAWN
    after = engine.balances(BUYER)
    assert after is not None
    assert after[asset].total == before[asset].total - available
    assert after[asset].available == 0
    assert all(b.available == 0 for b in after)  # nothing more of any asset can go


def test_reservations(engine: Engine) -> None:
    assert engine.reservations(BUYER) == Reservations(
        account=BUYER,
        quote_reserved=QUOTE_RESERVED,
        open_orders=2,
        positions=(PositionReservation(1, 0, 0, 0, 7, 0, 0),),
    )
    assert engine.reservations(PROVIDER) == Reservations(
        account=PROVIDER,
        quote_reserved=0,
        open_orders=1,
        positions=(
            PositionReservation(
                instrument=1, position=0, inventory=50, inventory_reserved=7, open_buy=0,
                open_sell=7, receivable=0,
            ),
        ),
    )  # fmt: skip
    assert engine.reservations(NEVER_OPENED) is None


ICEBERG = OpenOrder(
    order_id=12,
    account=PROVIDER,
    instrument=1,
    side=Side.SELL,
    price=2_100_000,
    qty=7,
    filled=0,
    leaves=7,
    shown=2,
    display_qty=2,
    tif=TimeInForce.GTC,
    stp=STPMode.CANCEL_NEWEST,
    post_only=False,
    expire_ts=0,
)


def test_open_orders_and_one_order(engine: Engine) -> None:
    bids = engine.open_orders(BUYER)
    assert [o.order_id for o in bids] == [11, 13]
    assert bids[1] == OpenOrder(
        order_id=13, account=BUYER, instrument=1, side=Side.BUY, price=1_990_000, qty=2,
        filled=0, leaves=2, shown=2, display_qty=0, tif=TimeInForce.GTD,
        stp=STPMode.CANCEL_NEWEST, post_only=False, expire_ts=EXPIRE,
    )  # fmt: skip
    assert engine.open_orders(BUYER, instrument=1) == bids
    assert engine.open_orders(BUYER, instrument=2) == ()
    assert engine.open_orders(PROVIDER) == (ICEBERG,)
    assert engine.open_orders(NEVER_OPENED) == ()
    assert engine.order(12) == ICEBERG
    assert engine.order(11) == bids[0]
    for unknown in (0, -5, 14, 10**12):
        assert engine.order(unknown) is None


def test_answers_follow_trades_and_cancels_but_never_change_once_given(engine: Engine) -> None:
    given = engine.order(12)
    lift = order(
        order_id=14, account=BUYER, side=Side.BUY, price=2_100_000, qty=3, tif=TimeInForce.IOC
    )
    engine.submit(C.rows([lift, C.CancelOrder(instrument=1, order_id=11, account=BUYER)]))
    assert given == ICEBERG  # a copy: the trade did not reach into it
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.qty = 1  # type: ignore[misc, union-attr]
    # the taker took the 2 shown, the iceberg refilled 2 from its hidden 5, then 1 of those
    assert engine.order(12) == dataclasses.replace(ICEBERG, filled=3, leaves=4, shown=1)
    assert engine.order(11) is None and engine.order(14) is None  # cancelled; IOC never rests
    assert [o.order_id for o in engine.open_orders(BUYER)] == [13]
    provider = engine.reservations(PROVIDER)
    assert provider is not None
    # 6.3 USDC notional, plus the 2 bps maker rebate
    assert provider.positions == (PositionReservation(1, -3, 47, 4, 0, 4, 6_301_260),)
    buyer = engine.reservations(BUYER)
    assert buyer is not None
    assert (buyer.quote_reserved, buyer.open_orders) == (3_983_980, 1)
    assert buyer.positions == (PositionReservation(1, 3, 3, 0, 2, 0, 0),)


def answers(engine: Engine) -> list[list[Any]]:
    accounts = (BUYER, PROVIDER, NEVER_OPENED)
    return [
        [engine.instrument_status(i) for i in (1, 2, 3)],
        [engine.balances(a) for a in accounts],
        [engine.reservations(a) for a in accounts],
        [engine.open_orders(a) for a in accounts],
        [engine.order(i) for i in (11, 12, 13)],
    ]


@pytest.mark.parametrize("snapshot", [False, True], ids=["from-journal", "from-snapshot"])
def test_a_recovered_engine_answers_the_same(tmp_path: Path, snapshot: bool) -> None:
    with open_market(tmp_path) as engine:
        before = answers(engine)
        if snapshot:
            engine.snapshot()
    with Engine.open(tmp_path, clock=clock()) as again:
        assert again.recovery.snapshot_seq == (len(SETUP) + len(ORDERS) if snapshot else 0)
        assert answers(again) == before
