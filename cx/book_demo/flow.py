"""A seeded simulation of order flow on GPU-hour instruments, for ``cx demo``.

It plays the market's participants, not the exchange: it draws random numbers and is told
the time because it stands outside the deterministic core and talks to the book only
through command rows, as a gateway would. It learns what became of its quotes from the
book's event rows, as a market maker learns from execution reports, so it never needs to
look inside the book and works the same against either implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from matching import codes as c
from matching.codes import BookCommandKind, BookEventKind, OrderType, Side, TimeInForce
from matching.rows import empty_commands, mass_cancel_row
from matching.spec import InstrumentSpec

TICK = 1000  # micro-USDC: prices move in steps of 0.001 USDC per GPU-hour

# Indicative prices in micro-USDC per GPU-hour, and regional premiums in per mille.
RESOURCES = (
    ("H100-80G", 2_000_000),
    ("H200-141G", 2_900_000),
    ("B200-192G", 4_400_000),
    ("A100-80G", 1_300_000),
    ("MI300X-192G", 2_100_000),
    ("L40S-48G", 850_000),
    ("A100-40G", 1_000_000),
    ("RTX4090-24G", 400_000),
)
REGIONS = (("us-east", 1000), ("us-west", 985), ("eu-west", 1040), ("ap-northeast", 1075))
FIRST_WINDOW = datetime(2026, 12, 1, tzinfo=UTC)
WINDOW_HOURS = 24

MAKER_ACCOUNT_BASE = 100
TAKER_ACCOUNT_BASE = 1000
TAKER_ORDER_ID_BASE = 1 << 48  # maker order ids stay below: they encode their quote slot

# Events after which an order with no quantity left is gone from the book.
_CLOSING_KINDS = np.array(
    [
        BookEventKind.ORDER_REJECTED,
        BookEventKind.ORDER_FILLED,
        BookEventKind.ORDER_CANCELLED,
        BookEventKind.ORDER_EXPIRED,
    ],
    dtype=np.int64,
)


@dataclass(frozen=True, slots=True)
class DemoInstrument:
    """A listed instrument with the name people read and the price its market starts at."""

    spec: InstrumentSpec
    name: str
    reference_price: int  # micro-USDC per GPU-hour


def demo_spec(instrument_id: int) -> InstrumentSpec:
    """The trading rules of every demo instrument: 0.001 USDC tick, whole GPU-hours."""
    return InstrumentSpec(
        instrument_id,
        tick_size=TICK,
        lot_size=1,
        min_price=TICK,
        max_price=1_000_000_000,
        min_qty=1,
        max_qty=100_000,
    )


def demo_instruments(count: int) -> list[DemoInstrument]:
    """``count`` instruments: every resource in a region, then the next region, then the
    next day's window, so the first few are the most familiar names."""
    out = []
    per_day = len(RESOURCES) * len(REGIONS)
    for i in range(count):
        resource, base_price = RESOURCES[i % len(RESOURCES)]
        region, premium = REGIONS[(i // len(RESOURCES)) % len(REGIONS)]
        start = FIRST_WINDOW + timedelta(days=i // per_day)
        name = f"{resource}.{region}.{start:%Y%m%dT%H}Z.{WINDOW_HOURS}h"
        price = base_price * premium // 1000 // TICK * TICK
        out.append(DemoInstrument(demo_spec(i), name, price))
    return out


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Shape of the simulated market. Shares are fractions of the commands in a batch."""

    makers: int = 8  # market-maker accounts, each quoting every instrument
    levels: int = 8  # quotes per maker per side
    taker_share: float = 0.12
    cancel_share: float = 0.08  # of maker commands; the rest are new quotes or replaces
    mass_cancel_chance: float = 0.03  # per batch: one maker pulls its quotes on one book
    market_share: float = 0.25  # of taker orders; the rest are IOC limits, a few FOK
    fok_share: float = 0.05
    volatility_ticks: float = 0.7  # standard deviation of the mid's move per batch
    reversion: float = 0.002  # pull of the mid back towards the reference price per batch
    taker_size_median: float = 6.0  # GPU-hours; sizes are log-normal
    takers: int = 64  # taker accounts


class OrderFlow:
    """Market makers quoting both sides around a drifting mid, and takers hitting them.

    Every maker quote lives in a *slot* (instrument, maker, side, level). A slot's order
    id is ``1 + slot + slots * generation``, so an event's order id says which slot it is
    about without a lookup table, and each new order of a slot gets a fresh id.
    """

    def __init__(
        self,
        instruments: list[DemoInstrument],
        rng: np.random.Generator,
        config: FlowConfig | None = None,
    ) -> None:
        self.config = cfg = config or FlowConfig()
        self._rng = rng
        n, m, k = len(instruments), cfg.makers, cfg.levels
        self._instruments = n
        self._tick = np.array([i.spec.tick_size for i in instruments], dtype=np.int64)
        self._min_tick = np.array([i.spec.min_price for i in instruments]) // self._tick
        self._max_tick = np.array([i.spec.max_price for i in instruments]) // self._tick
        self._reference = np.array([i.reference_price for i in instruments]) / self._tick
        self._mid = self._reference.copy()  # in ticks; a latent value, never a price sent

        self.slots = n * m * 2 * k
        slot = np.arange(self.slots, dtype=np.int64)
        self._slot_level = slot % k
        self._slot_side = np.where((slot // k) % 2 == 0, Side.BUY, Side.SELL).astype(np.int64)
        self._slot_maker = (slot // (2 * k)) % m
        self._slot_instrument = slot // (2 * k * m)
        self._slot_order = np.zeros(self.slots, dtype=np.int64)  # open order id, 0 = none
        self._slot_generation = np.zeros(self.slots, dtype=np.int64)
        self._slot_filled = np.zeros(self.slots, dtype=np.int64)

        maker = np.arange(m)
        self._half_spread = 1 + maker % 3  # ticks from the mid to a maker's best quote
        self._step = 1 + maker % 2  # ticks between a maker's levels
        self._size = rng.integers(5, 40, m)  # GPU-hours per quote

        self._seq = 0
        self._ts = 0
        self._next_taker_id = TAKER_ORDER_ID_BASE

    # --- what the driver calls -----------------------------------------------------------
    def next_batch(self, size: int, now_ns: int) -> np.ndarray:
        """``size`` command rows for the next moment of the market, stamped up to ``now_ns``.

        Call ``observe`` with the book's events before asking for the next batch.
        """
        self._move_mids()
        takers = int(self._rng.binomial(size, self.config.taker_share))
        maker_rows = self._maker_commands(size - takers)
        taker_rows = self._taker_commands(takers)
        # Takers arrive at random moments; each slot's commands keep their order.
        total = len(maker_rows) + takers
        is_taker = np.zeros(total, dtype=bool)
        is_taker[self._rng.choice(total, takers, replace=False)] = True
        batch = empty_commands(total)
        batch[~is_taker] = maker_rows
        batch[is_taker] = taker_rows

        # Spread the batch over the time since the last one; never step back in time.
        end_ts = max(now_ns, self._ts)
        start_ts = self._ts or end_ts
        step = np.arange(1, total + 1, dtype=np.int64)
        batch[:, c.C_TS] = start_ts + step * (end_ts - start_ts) // max(total, 1)
        batch[:, c.C_SEQ] = self._seq + step
        self._seq += total
        self._ts = end_ts
        return batch

    def observe(self, events: np.ndarray) -> None:
        """Learn from the book's events which quotes are filled, cancelled or refused."""
        if not len(events):
            return
        oid = events[:, c.E_ORDER_ID]
        slot = (oid - 1) % self.slots
        current = (oid > 0) & (oid < TAKER_ORDER_ID_BASE) & (self._slot_order[slot] == oid)
        kind = events[:, c.E_KIND]
        fills = current & (kind == BookEventKind.ORDER_FILLED)
        np.add.at(self._slot_filled, slot[fills], events[fills, c.E_QTY])
        closed = current & np.isin(kind, _CLOSING_KINDS) & (events[:, c.E_LEAVES] == 0)
        self._slot_order[slot[closed]] = 0

    @property
    def open_quotes(self) -> int:
        """Quotes the makers believe are resting; equals the book's count if they read it right."""
        return int(np.count_nonzero(self._slot_order))

    def mid_price(self, instrument: int) -> int:
        """Where the makers currently centre their quotes, on the tick."""
        return int(np.rint(self._mid[instrument])) * int(self._tick[instrument])

    # --- the participants ------------------------------------------------------------------
    def _move_mids(self) -> None:
        cfg = self.config
        shock = self._rng.normal(0.0, cfg.volatility_ticks, self._instruments)
        self._mid += cfg.reversion * (self._reference - self._mid) + shock
        room = cfg.levels * 3 + 100  # keep every quote and protection price in range
        self._mid = np.clip(self._mid, self._min_tick + room, self._max_tick - room)

    def _maker_commands(self, count: int) -> np.ndarray:
        pull = count > 0 and self._rng.random() < self.config.mass_cancel_chance
        rows = [self._mass_cancel()] if pull else []
        count -= len(rows)
        slots = self._rng.integers(0, self.slots, count)
        kind, oid = self._assign_orders(slots, self._rng.random(count) < self.config.cancel_share)

        inst = self._slot_instrument[slots]
        maker = self._slot_maker[slots]
        side = self._slot_side[slots]
        level = self._slot_level[slots]
        away = (
            self._half_spread[maker] + level * self._step[maker] + self._rng.integers(0, 2, count)
        )
        ticks = np.rint(self._mid[inst]).astype(np.int64) + np.where(side == Side.BUY, -away, away)
        price = np.clip(ticks, self._min_tick[inst], self._max_tick[inst]) * self._tick[inst]
        qty = self._size[maker] * (1 + level // 3) + self._rng.integers(0, 10, count)

        out = empty_commands(count)
        new = kind == BookCommandKind.NEW_ORDER
        cancel = kind == BookCommandKind.CANCEL_ORDER
        out[:, c.C_KIND] = kind
        out[:, c.C_INSTRUMENT] = inst
        out[:, c.C_ORDER_ID] = oid
        out[:, c.C_ACCOUNT] = MAKER_ACCOUNT_BASE + maker
        out[:, c.C_SIDE] = np.where(new, side, 0)
        out[:, c.C_PRICE] = np.where(cancel, 0, price)
        # A replace gives the new total quantity: what is already filled plus a fresh quote.
        out[:, c.C_QTY] = np.where(cancel, 0, np.where(new, qty, qty + self._slot_filled[slots]))
        out[new, c.C_ORDER_TYPE] = OrderType.LIMIT
        out[new, c.C_TIF] = TimeInForce.GTC
        out[new, c.C_POST_ONLY] = 1  # makers never take: a quote that would cross is refused
        return np.vstack([*rows, out]) if rows else out

    def _assign_orders(
        self, slots: np.ndarray, cancel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Turn each slot touch into a new quote, a cancel or a replace, in batch order.

        This pass is sequential because a slot may be touched twice in one batch: a quote
        cancelled early in the batch is quoted anew by a later touch.
        """
        open_ids = self._slot_order.tolist()
        generation = self._slot_generation.tolist()
        kinds = np.empty(len(slots), dtype=np.int64)
        ids = np.empty(len(slots), dtype=np.int64)
        for i, (s, drop) in enumerate(zip(slots.tolist(), cancel.tolist(), strict=True)):
            oid = open_ids[s]
            if oid == 0:
                generation[s] += 1
                oid = open_ids[s] = 1 + s + self.slots * generation[s]
                kinds[i] = BookCommandKind.NEW_ORDER
            elif drop:
                open_ids[s] = 0
                kinds[i] = BookCommandKind.CANCEL_ORDER
            else:
                kinds[i] = BookCommandKind.REPLACE_ORDER
            ids[i] = oid
        fresh = slots[kinds == BookCommandKind.NEW_ORDER]
        self._slot_filled[fresh] = 0
        self._slot_order[:] = open_ids
        self._slot_generation[:] = generation
        return kinds, ids

    def _mass_cancel(self) -> np.ndarray:
        """One maker pulls all its quotes on one instrument, as after a risk alarm."""
        inst = int(self._rng.integers(0, self._instruments))
        maker = int(self._rng.integers(0, self.config.makers))
        pulled = (self._slot_instrument == inst) & (self._slot_maker == maker)
        self._slot_order[pulled] = 0
        return mass_cancel_row(account=MAKER_ACCOUNT_BASE + maker, instrument=inst)

    def _taker_commands(self, count: int) -> np.ndarray:
        cfg, rng = self.config, self._rng
        inst = rng.integers(0, self._instruments, count)
        buy = rng.random(count) < 0.5
        style = rng.random(count)
        market = style < cfg.market_share
        fok = (style >= cfg.market_share) & (style < cfg.market_share + cfg.fok_share)

        mid = np.rint(self._mid[inst]).astype(np.int64)
        reach = rng.integers(0, 5, count)  # how far past the mid a limit order will pay
        protection = mid // 50  # market orders trade up to 2% away from the mid
        ticks = mid + np.where(market, protection, reach) * np.where(buy, 1, -1)
        price = np.clip(ticks, self._min_tick[inst], self._max_tick[inst]) * self._tick[inst]
        qty = np.rint(rng.lognormal(np.log(cfg.taker_size_median), 1.0, count))

        out = empty_commands(count)
        out[:, c.C_KIND] = BookCommandKind.NEW_ORDER
        out[:, c.C_INSTRUMENT] = inst
        out[:, c.C_ORDER_ID] = self._next_taker_id + np.arange(count)
        out[:, c.C_ACCOUNT] = TAKER_ACCOUNT_BASE + rng.integers(0, cfg.takers, count)
        out[:, c.C_SIDE] = np.where(buy, Side.BUY, Side.SELL)
        out[:, c.C_PRICE] = price
        out[:, c.C_QTY] = np.clip(qty, 1, 2_000).astype(np.int64)
        out[:, c.C_ORDER_TYPE] = np.where(market, OrderType.MARKET, OrderType.LIMIT)
        out[:, c.C_TIF] = np.where(fok, TimeInForce.FOK, TimeInForce.IOC)
        self._next_taker_id += count
        return out
