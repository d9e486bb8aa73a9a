"""Command rows for the engine benchmark, generated with numpy before any timing starts.

The engine benchmark needs millions of commands, too many for the oracle-driven Python
generator of ``benchmarks.workloads``. Cancels and replaces must still name orders that
rest, so the flow is split by price instead of tracked by an oracle:

- *passive* orders rest deep in the book, at least ``DEEP_MIN_TICKS`` from the reference
  price. Every aggressive price stays within ``ZONE_TICKS`` of it, so nothing ever trades
  against a passive order, and each one's later replaces and cancel (by its own account)
  are known to find it resting. Each passive order gets a lifetime (exponential, mean
  ``LIFETIME`` commands); it is cancelled at the end of it unless the run ends first, and
  replaces land at random times inside it.
- *zone* orders are GTC limit orders within ``ZONE_TICKS`` of the reference on a random
  side: about half cross what rests in the zone and trade, the rest wait there to be hit.
  They are never cancelled.
- *IOC* orders take what they can in the zone and cancel the remainder.

All prices stay within a few percent of the reference, well inside risk's 20% band around
the last trade. Every account is a provider with a large USDC deposit and registered
capacity on every instrument, so collateral and inventory never refuse an order; the only
refusals expected are self-trade cancels (an account's zone order meeting its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exchange import commands as cmd
from exchange.codes import CommandKind
from exchange.ids import InstrumentId
from matching import codes as mc
from matching.codes import OrderType, Side, TimeInForce
from risk.codes import Role

TICK = 1_000  # micro-USDC: a tick of 0.001 USDC per GPU-hour
REFERENCE_PRICE = 2_000_000  # 2 USDC per GPU-hour
ZONE_TICKS = 5  # aggressive prices: reference +- 5 ticks (+-0.25%)
DEEP_MIN_TICKS = 10  # passive prices: at least 10 ticks away ...
DEEP_MAX_TICKS = 300  # ... and at most 300 (15%: inside the 20% band around any zone trade)
DEEP_MEAN_TICKS = 30
LIFETIME = 50_000  # mean commands a passive order rests before its cancel
DEPOSIT = 10**13  # micro-USDC per account: 10M USDC, far more than any run reserves
CAPACITY = 10**7  # GPU-hours registered per (account, instrument)
MAX_QTY = 100
FIRST_ACCOUNT = 1  # account 0 is the fee account, opened at genesis


@dataclass(frozen=True)
class Mix:
    """Shares of the flow by command; cancels follow from the passive orders' lifetimes."""

    passive: float = 0.36
    zone: float = 0.16
    ioc: float = 0.05
    replace: float = 0.12
    # cancels: about passive * (1 - LIFETIME / n), the passive orders whose life ends in the run


@dataclass(frozen=True)
class Flow:
    """Prebuilt command rows (seq and ts zero: the sequencer stamps them)."""

    commands: np.ndarray
    first_order_id: int
    next_order_id: int
    stats: dict[str, object] = field(default_factory=dict)


def setup_rows(instruments: int, accounts: int, capacity: int = CAPACITY) -> np.ndarray:
    """List the instruments, open provider accounts, fund them and register capacity."""
    listing = [
        cmd.ListInstrument(
            instrument=InstrumentId(i),
            tick_size=TICK,
            lot_size=1,
            min_price=TICK,
            max_price=1_000_000_000,
            min_qty=1,
            max_qty=100_000,
            reference_price=REFERENCE_PRICE,
        )
        for i in range(instruments)
    ]
    acct = np.arange(FIRST_ACCOUNT, FIRST_ACCOUNT + accounts, dtype=np.int64)
    opened = _kind_rows(cmd.OpenAccount.KIND, len(acct))
    opened[:, mc.C_ACCOUNT] = acct
    opened[:, mc.C_SIDE] = Role.PROVIDER  # OpenAccount.role lives in C_SIDE
    funded = _kind_rows(cmd.Deposit.KIND, len(acct))
    funded[:, mc.C_ACCOUNT] = acct
    funded[:, mc.C_INSTRUMENT] = 0  # USDC
    funded[:, mc.C_QTY] = DEPOSIT
    cap = _kind_rows(cmd.RegisterCapacity.KIND, len(acct) * instruments)
    cap[:, mc.C_ACCOUNT] = np.repeat(acct, instruments)
    cap[:, mc.C_INSTRUMENT] = np.tile(np.arange(instruments, dtype=np.int64), len(acct))
    cap[:, mc.C_QTY] = capacity
    return np.concatenate([cmd.rows(listing), opened, funded, cap])


def _kind_rows(kind: int, n: int) -> np.ndarray:
    rows = np.zeros((n, mc.N_COMMAND_FIELDS), dtype=np.int64)
    rows[:, mc.C_KIND] = kind
    return rows


def _deep_prices(rng: np.random.Generator, side: np.ndarray, mean: int) -> np.ndarray:
    off = DEEP_MIN_TICKS - 1 + rng.geometric(1.0 / (mean - DEEP_MIN_TICKS + 1), len(side))
    off = np.minimum(off, DEEP_MAX_TICKS)
    return np.where(side == Side.BUY, REFERENCE_PRICE - off * TICK, REFERENCE_PRICE + off * TICK)


def _sides(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, Side.BUY, Side.SELL).astype(np.int64)


def flow(
    n: int,
    *,
    instruments: int,
    accounts: int,
    first_order_id: int = 1,
    seed: int = 7,
    mix: Mix = Mix(),  # frozen: a shared default is safe
    lifetime: int = LIFETIME,
) -> Flow:
    """``n`` commands of order flow (see the module docstring), in one int64 array;
    passive orders live ``lifetime`` commands on average before their cancel."""
    rng = np.random.default_rng(seed)
    m = int(n * 1.1)  # generate a little more, then keep the first n in time order
    n_passive, n_zone = int(m * mix.passive), int(m * mix.zone)
    n_ioc, n_replace = int(m * mix.ioc), int(m * mix.replace)

    # Times in [0, 1): each command's place in the stream. Ties are broken by kind (a
    # creation before its replaces before its cancel) through the lexsort below.
    born = rng.random(n_passive)
    dies = born + rng.exponential(lifetime / m, n_passive)
    cancelled = np.flatnonzero(dies < 1.0)
    target = rng.integers(0, n_passive, n_replace)
    end = np.minimum(dies[target], 1.0)
    replace_t = born[target] + rng.random(n_replace) * (end - born[target])
    zone_t, ioc_t = rng.random(n_zone), rng.random(n_ioc)

    # Row blocks: [passive | zone | ioc | replace | cancel], then sorted by time.
    passive = _kind_rows(CommandKind.NEW_ORDER, n_passive)
    p_side = _sides(rng, n_passive)
    p_inst = rng.integers(0, instruments, n_passive)
    p_acct = rng.integers(FIRST_ACCOUNT, FIRST_ACCOUNT + accounts, n_passive)
    p_qty = rng.integers(1, MAX_QTY + 1, n_passive)
    passive[:, mc.C_INSTRUMENT] = p_inst
    passive[:, mc.C_ACCOUNT] = p_acct
    passive[:, mc.C_SIDE] = p_side
    passive[:, mc.C_PRICE] = _deep_prices(rng, p_side, DEEP_MEAN_TICKS)
    passive[:, mc.C_QTY] = p_qty

    zone = _kind_rows(CommandKind.NEW_ORDER, n_zone)
    zone[:, mc.C_INSTRUMENT] = rng.integers(0, instruments, n_zone)
    zone[:, mc.C_ACCOUNT] = rng.integers(FIRST_ACCOUNT, FIRST_ACCOUNT + accounts, n_zone)
    zone[:, mc.C_SIDE] = _sides(rng, n_zone)
    zone[:, mc.C_PRICE] = REFERENCE_PRICE + rng.integers(-ZONE_TICKS, ZONE_TICKS + 1, n_zone) * TICK
    zone[:, mc.C_QTY] = rng.integers(1, MAX_QTY + 1, n_zone)

    ioc = _kind_rows(CommandKind.NEW_ORDER, n_ioc)
    i_side = _sides(rng, n_ioc)
    reach = rng.integers(0, ZONE_TICKS + 1, n_ioc) * TICK
    ioc[:, mc.C_INSTRUMENT] = rng.integers(0, instruments, n_ioc)
    ioc[:, mc.C_ACCOUNT] = rng.integers(FIRST_ACCOUNT, FIRST_ACCOUNT + accounts, n_ioc)
    ioc[:, mc.C_SIDE] = i_side
    ioc[:, mc.C_PRICE] = np.where(
        i_side == Side.BUY, REFERENCE_PRICE + reach, REFERENCE_PRICE - reach
    )
    ioc[:, mc.C_QTY] = rng.integers(1, MAX_QTY // 2 + 1, n_ioc)
    for block in (passive, zone, ioc):
        block[:, mc.C_ORDER_TYPE] = OrderType.LIMIT
        block[:, mc.C_TIF] = TimeInForce.GTC
    ioc[:, mc.C_TIF] = TimeInForce.IOC

    replace = _kind_rows(CommandKind.REPLACE_ORDER, n_replace)
    replace[:, mc.C_INSTRUMENT] = p_inst[target]
    replace[:, mc.C_ACCOUNT] = p_acct[target]
    replace[:, mc.C_PRICE] = _deep_prices(rng, p_side[target], DEEP_MEAN_TICKS)
    replace[:, mc.C_QTY] = rng.integers(1, MAX_QTY + 1, n_replace)

    cancel = _kind_rows(CommandKind.CANCEL_ORDER, len(cancelled))
    cancel[:, mc.C_INSTRUMENT] = p_inst[cancelled]
    cancel[:, mc.C_ACCOUNT] = p_acct[cancelled]

    blocks = [passive, zone, ioc, replace, cancel]
    rank = np.concatenate([np.full(len(b), k, np.int8) for k, b in enumerate(blocks)])
    rows = np.concatenate(blocks)
    del blocks, passive, zone, ioc, replace, cancel  # a few hundred MB in a full run
    times = np.concatenate([born, zone_t, ioc_t, replace_t, dies[cancelled]])
    order = np.lexsort((rank, times))[:n]
    where = np.full(len(rows), len(rows), dtype=np.int64)  # row -> place in the stream (or past n)
    where[order] = np.arange(len(order))

    # Order ids in order of arrival; replaces and cancels take their passive order's id.
    rows = rows[order]
    new = rows[:, mc.C_KIND] == CommandKind.NEW_ORDER
    n_new = int(np.count_nonzero(new))
    rows[new, mc.C_ORDER_ID] = np.arange(first_order_id, first_order_id + n_new)
    passive_id = np.zeros(n_passive, dtype=np.int64)
    placed = where[:n_passive] < n
    passive_id[placed] = rows[where[:n_passive][placed], mc.C_ORDER_ID]
    first_replace = n_passive + n_zone + n_ioc
    first_cancel = first_replace + n_replace
    for first, targets in ((first_replace, target), (first_cancel, cancelled)):
        at = where[first : first + len(targets)]
        kept = at < n  # a replace or cancel after its creation: kept only if the creation is
        rows[at[kept], mc.C_ORDER_ID] = passive_id[targets[kept]]
    kinds = {
        "passive_new": int(np.count_nonzero(where[:n_passive] < n)),
        "zone_new": int(np.count_nonzero(where[n_passive : n_passive + n_zone] < n)),
        "ioc": int(np.count_nonzero(where[n_passive + n_zone : first_replace] < n)),
        "replace": int(np.count_nonzero(where[first_replace:first_cancel] < n)),
        "cancel": int(np.count_nonzero(where[first_cancel:] < n)),
    }
    stats: dict[str, object] = {"mix": {k: round(v / n, 4) for k, v in kinds.items()}}
    return Flow(rows, first_order_id, first_order_id + n_new, stats)


def resting_rows(
    n: int, *, instruments: int, accounts: int, first_order_id: int = 1, seed: int = 11
) -> np.ndarray:
    """``n`` GTC orders that never cross: bids below the reference, asks above."""
    rng = np.random.default_rng(seed)
    rows = _kind_rows(CommandKind.NEW_ORDER, n)
    side = _sides(rng, n)
    off = np.minimum(rng.geometric(1.0 / 50, n), DEEP_MAX_TICKS)
    rows[:, mc.C_INSTRUMENT] = rng.integers(0, instruments, n)
    rows[:, mc.C_ORDER_ID] = np.arange(first_order_id, first_order_id + n)
    rows[:, mc.C_ACCOUNT] = rng.integers(FIRST_ACCOUNT, FIRST_ACCOUNT + accounts, n)
    rows[:, mc.C_SIDE] = side
    rows[:, mc.C_PRICE] = np.where(
        side == Side.BUY, REFERENCE_PRICE - off * TICK, REFERENCE_PRICE + off * TICK
    )
    rows[:, mc.C_QTY] = rng.integers(1, MAX_QTY + 1, n)
    rows[:, mc.C_ORDER_TYPE] = OrderType.LIMIT
    rows[:, mc.C_TIF] = TimeInForce.GTC
    return rows
