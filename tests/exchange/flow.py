"""A deterministic command stream for engine tests: setup, then seeded random order flow.

Vectorised so that a million commands take a second to build. Prices stay inside the
price band, buyers are funded and providers hold capacity, so most orders pass risk and
the book both rests and trades.
"""

from __future__ import annotations

import numpy as np

from exchange import commands as C
from matching import codes as mc
from risk.codes import Role

T0 = 1_800_000_000 * 1_000_000_000
TICK = 1_000
REF = 2_000_000
INSTRUMENTS = 8
BUYERS = tuple(range(1, 21))
PROVIDERS = tuple(range(21, 31))


def setup_rows() -> np.ndarray:
    cmds: list[C.Command] = [
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
        for i in range(1, INSTRUMENTS + 1)
    ]
    cmds += [C.OpenAccount(account=a, role=Role.MARKET_MAKER) for a in BUYERS]
    cmds += [C.OpenAccount(account=a, role=Role.PROVIDER) for a in PROVIDERS]
    cmds += [C.Deposit(account=a, asset=0, amount=10**15) for a in BUYERS]
    cmds += [
        C.RegisterCapacity(account=a, instrument=i, gpu_hours=10**9)
        for a in PROVIDERS
        for i in range(1, INSTRUMENTS + 1)
    ]
    return C.rows(cmds)


def order_rows(n: int, seed: int, first_order_id: int = 1) -> np.ndarray:
    """``n`` order commands: ~70% new limit orders, ~20% cancels, ~10% replaces."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, mc.N_COMMAND_FIELDS), dtype=np.int64)
    kind = rng.choice([1, 2, 3], size=n, p=[0.7, 0.2, 0.1])
    buy = rng.random(n) < 0.5
    order_id = first_order_id + np.arange(n)
    # cancels and replaces aim at an order submitted shortly before
    back = rng.integers(1, 200, size=n)
    target = np.maximum(order_id - back, first_order_id)
    account = np.where(buy, rng.choice(BUYERS, n), rng.choice(PROVIDERS, n))
    rows[:, mc.C_KIND] = kind
    rows[:, mc.C_INSTRUMENT] = rng.integers(1, INSTRUMENTS + 1, size=n)
    rows[:, mc.C_ORDER_ID] = np.where(kind == 1, order_id, target)
    rows[:, mc.C_ACCOUNT] = account
    rows[:, mc.C_SIDE] = np.where(buy, 1, 2)
    offset = rng.integers(-60, 61, size=n)  # ticks around the reference: books cross often
    rows[:, mc.C_PRICE] = REF + offset * TICK
    rows[:, mc.C_QTY] = rng.integers(1, 50, size=n)
    rows[:, mc.C_ORDER_TYPE] = 1
    rows[:, mc.C_TIF] = np.where(kind == 1, 1, 0)
    return rows


def batches(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]
