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
        C.ListInstrument(TINY, 1, 1, 1, 1_000_000, 1, 1_000, reference_price=100),
        C.RegisterCapacity(flow.PROVIDERS[0], TINY, 1_000),
    ]
    extra += [  # one instrument per scripted case, where the random flow does not trade
        C.ListInstrument(i, TICK, 1, TICK, 1_000_000 * TICK, 1, 10_000, reference_price=REF)
        for i in SCRIPTED_INSTRUMENTS
    ]
    extra += [
        C.RegisterCapacity(a, i, 1_000) for a in (22, 23, 24, 25) for i in SCRIPTED_INSTRUMENTS
    ]
    extra += [
        C.OpenAccount(BUYER, Role.BUYER),
        C.Deposit(BUYER, 0, 50_000_000, ref=7001),
        C.Deposit(BUYER, 1, 2 * 10**9, ref=7002),  # 2 SOL
        C.Deposit(25, 0, 10**12, ref=7003),  # a provider that also buys (self-trade case)
        C.Withdraw(BUYER, 0, 1_000_000, ref=8001),
        C.Withdraw(BUYER, 1, 10**9, ref=8002),
        C.Withdraw(BUYER, 0, 10**13, ref=8003),  # refused: more than the balance
    ]
    return [flow.setup_rows(), C.rows(extra)]


def _scripted(clock: Clock) -> list[list[C.Command]]:
    """Blocks of commands submitted between slices of the random flow."""
    s = SCRIPTED
    gtd = clock.now + 5 * SECOND  # the GTD order's expiry
    return [
        [  # a trade of 100 micro-USDC: no fee on either side
            C.SubmitOrder(TINY, s + 1, flow.PROVIDERS[0], Side.SELL, 100, 1),
            C.SubmitOrder(TINY, s + 2, BUYER, Side.BUY, 100, 1),
        ],
        [  # a GTD order, expired later by the clock
            C.SubmitOrder(
                10, s + 3, 22, Side.SELL, REF + 5 * TICK, 5, tif=TimeInForce.GTD, expire_ts=gtd
            ),
        ],
        [  # an id used again once its order has filled
            C.SubmitOrder(11, s + 4, 23, Side.SELL, REF, 3),
            C.SubmitOrder(11, s + 5, 1, Side.BUY, REF, 3, tif=TimeInForce.IOC),
            C.SubmitOrder(11, s + 4, 23, Side.SELL, REF + 2 * TICK, 2),
        ],
        [  # replace, then a partial fill of the replaced order
            C.SubmitOrder(12, s + 6, 24, Side.SELL, REF + 3 * TICK, 10),
            C.ReplaceOrder(12, s + 6, 24, REF + TICK, 12),
            C.SubmitOrder(12, s + 7, 2, Side.BUY, REF + TICK, 4, tif=TimeInForce.IOC),
        ],
        [  # self-trade prevention by decrement: both orders shrink, the smaller is cancelled
            C.SubmitOrder(13, s + 8, 25, Side.SELL, REF, 10),
            C.SubmitOrder(13, s + 9, 25, Side.BUY, REF, 4, stp=STPMode.DECREMENT_AND_CANCEL),
        ],
        [C.MassCancel(6, 26), C.SetInstrumentStatus(5, InstrumentState.HALTED)],
        [C.SetInstrumentStatus(5, InstrumentState.TRADING), C.Withdraw(5, 0, 10**9, ref=8004)],
        [C.Deposit(BUYER, 0, 3_000_000, ref=7004)],
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
