"""A realistic engine run for the ledger tests, and what the engine itself says it left.

The random order flow of ``tests/exchange/flow.py`` (new orders, cancels, replaces on eight
instruments, funded buyers, providers with capacity) is interleaved with scripted cases the
ledger must map: deposits and withdrawals in two assets with references, a refused
withdrawal, a trade too small to carry fees, GTD expiry, an order id reused after its order
filled, a replace then a partial fill, a self-trade decrement, a mass cancel and a halt.
The engine runs in a temporary directory with a controlled clock; its event log is what the
projector reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exchange import commands as C
from exchange.engine import Engine
from matching import codes as mc
from matching.codes import Side, STPMode, TimeInForce
from risk import codes as r
from risk.codes import InstrumentState, Role
from tests.exchange import flow

T0 = flow.T0
SECOND = 1_000_000_000
REF, TICK = flow.REF, flow.TICK
TINY = 9  # an instrument with a 1-micro-USDC tick: a trade there is too small for a fee
BUYER = 31  # a plain buyer holding USDC and SOL
SCRIPTED = 1_000_000  # scripted order ids start here, above the random flow's
SCRIPTED_INSTRUMENTS = (10, 11, 12, 13)


class Clock:
    """The engine's clock, moved by the test (GTD expiry needs time to pass)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        self.now += 1_000  # every batch a microsecond later
        return self.now


@dataclass(frozen=True)
class EngineMoney:
    """What the engine holds at the end, in the ledger's terms."""

    last_seq: int
    balances: dict[tuple[int, int], int]  # (account, asset) -> base units, non-zero only
    escrow: dict[int, int]  # instrument -> quote units
    receivable: dict[tuple[int, int], int]  # (seller, instrument) -> quote units
    resting: dict[int, tuple[int, int, int, int, int, int]]  # id -> (instr, acct, side,
    # price, qty, leaves) of every order resting in the book
    fills: int  # trades (pairs of ORDER_FILLED)


def _setup() -> list[np.ndarray]:
    extra: list[C.Command] = [
        C.ListInstrument(
            instrument=TINY,
            tick_size=1,
            lot_size=1,
            min_price=1,
            max_price=1_000_000,
            min_qty=1,
            max_qty=1_000,
            reference_price=100,
        ),
        C.RegisterCapacity(account=flow.PROVIDERS[0], instrument=TINY, gpu_hours=1_000),
    ]
    extra += [  # one instrument per scripted case, where the random flow does not trade
        C.ListInstrument(
            instrument=i,
            tick_size=TICK,
            lot_size=1,
            min_price=TICK,
            max_price=1_000_000 * TICK,
            min_qty=1,
            max_qty=10_000,
            reference_price=REF,
        )
        for i in SCRIPTED_INSTRUMENTS
    ]
    extra += [
        C.RegisterCapacity(account=a, instrument=i, gpu_hours=1_000)
        for a in (22, 23, 24, 25)
        for i in SCRIPTED_INSTRUMENTS
    ]
    extra += [
        C.OpenAccount(account=BUYER, role=Role.BUYER),
        C.Deposit(account=BUYER, asset=0, amount=50_000_000, ref=7001),
        C.Deposit(account=BUYER, asset=1, amount=2 * 10**9, ref=7002),  # 2 SOL
        C.Deposit(
            account=25, asset=0, amount=10**12, ref=7003
        ),  # a provider that also buys (self-trade case)
        C.Withdraw(account=BUYER, asset=0, amount=1_000_000, ref=8001),
        C.Withdraw(account=BUYER, asset=1, amount=10**9, ref=8002),
        C.Withdraw(
            account=BUYER, asset=0, amount=10**13, ref=8003
        ),  # refused: more than the balance
    ]
    return [flow.setup_rows(), C.rows(extra)]


def _scripted(clock: Clock) -> list[list[C.Command]]:
    """Blocks of commands submitted between slices of the random flow."""
    s = SCRIPTED
    gtd = clock.now + 5 * SECOND  # the GTD order's expiry
    return [
        [  # a trade of 100 micro-USDC: no fee on either side
            C.SubmitOrder(
                instrument=TINY,
                order_id=s + 1,
                account=flow.PROVIDERS[0],
                side=Side.SELL,
                price=100,
                qty=1,
            ),
            C.SubmitOrder(
                instrument=TINY, order_id=s + 2, account=BUYER, side=Side.BUY, price=100, qty=1
            ),
        ],
        [  # a GTD order, expired later by the clock
            C.SubmitOrder(
                instrument=10,
                order_id=s + 3,
                account=22,
                side=Side.SELL,
                price=REF + 5 * TICK,
                qty=5,
                tif=TimeInForce.GTD,
                expire_ts=gtd,
            ),
        ],
        [  # an id used again once its order has filled
            C.SubmitOrder(
                instrument=11, order_id=s + 4, account=23, side=Side.SELL, price=REF, qty=3
            ),
            C.SubmitOrder(
                instrument=11,
                order_id=s + 5,
                account=1,
                side=Side.BUY,
                price=REF,
                qty=3,
                tif=TimeInForce.IOC,
            ),
            C.SubmitOrder(
                instrument=11,
                order_id=s + 4,
                account=23,
                side=Side.SELL,
                price=REF + 2 * TICK,
                qty=2,
            ),
        ],
        [  # replace, then a partial fill of the replaced order
            C.SubmitOrder(
                instrument=12,
                order_id=s + 6,
                account=24,
                side=Side.SELL,
                price=REF + 3 * TICK,
                qty=10,
            ),
            C.ReplaceOrder(instrument=12, order_id=s + 6, account=24, price=REF + TICK, qty=12),
            C.SubmitOrder(
                instrument=12,
                order_id=s + 7,
                account=2,
                side=Side.BUY,
                price=REF + TICK,
                qty=4,
                tif=TimeInForce.IOC,
            ),
        ],
        [  # self-trade prevention by decrement: both orders shrink, the smaller is cancelled
            C.SubmitOrder(
                instrument=13, order_id=s + 8, account=25, side=Side.SELL, price=REF, qty=10
            ),
            C.SubmitOrder(
                instrument=13,
                order_id=s + 9,
                account=25,
                side=Side.BUY,
                price=REF,
                qty=4,
                stp=STPMode.DECREMENT_AND_CANCEL,
            ),
        ],
        [
            C.MassCancel(instrument=6, account=26),
            C.SetInstrumentStatus(instrument=5, status=InstrumentState.HALTED),
        ],
        [
            C.SetInstrumentStatus(instrument=5, status=InstrumentState.TRADING),
            C.Withdraw(account=5, asset=0, amount=10**9, ref=8004),
        ],
        [C.Deposit(account=BUYER, asset=0, amount=3_000_000, ref=7004)],
    ]


def run(data_dir: Path, *, orders: int = 6_000, seed: int = 3, batch: int = 400) -> EngineMoney:
    """Run the flow in a new engine under ``data_dir``; the engine is closed on return (its
    event log complete) and what it held is returned."""
    clock = Clock()
    engine = Engine.open(data_dir, clock=clock)
    try:
        for rows in _setup():
            engine.submit(rows)
        random_flow = flow.batches(flow.order_rows(orders, seed), batch)
        scripted = _scripted(clock)
        for i, rows in enumerate(random_flow):
            engine.submit(rows)
            if i < len(scripted):
                engine.submit(C.rows(scripted[i]))
        clock.now += 10 * SECOND  # past the GTD expiry
        engine.submit(C.rows([C.AdvanceClock()]))
        return engine_money(engine)
    finally:
        engine.close()


def engine_money(engine: Engine) -> EngineMoney:
    risk = engine.core.risk
    used = risk.used()
    balances = {
        (acct, asset): int(v)
        for acct, row in enumerate(used["balances"])
        for asset, v in enumerate(row)
        if v
    }
    escrow = {
        i: int(row[r.I_ESCROW]) for i, row in enumerate(used["instruments"]) if row[r.I_ESCROW]
    }
    receivable = {}
    for row in used["positions"]:
        if row[r.P_RECEIVABLE]:
            key = int(row[r.P_KEY])
            acct, instr = key >> r.INSTRUMENT_BITS, key & ((1 << r.INSTRUMENT_BITS) - 1)
            receivable[(acct, instr)] = int(row[r.P_RECEIVABLE])
    book = engine.core.book.snapshot()
    resting = {
        int(o[mc.S_ORDER_ID]): (
            int(o[mc.S_INSTRUMENT]),
            int(o[mc.S_ACCOUNT]),
            int(o[mc.S_SIDE]),
            int(o[mc.S_PRICE]),
            int(o[mc.S_QTY]),
            int(o[mc.S_SHOWN] + o[mc.S_HIDDEN]),
        )
        for o in book.orders
    }
    return EngineMoney(
        last_seq=int(engine.last_seq),
        balances=balances,
        escrow=escrow,
        receivable=receivable,
        resting=resting,
        fills=book.trade_id,  # trade ids are handed out one by one from 1
    )
