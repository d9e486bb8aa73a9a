"""What a book needs to know about an instrument, and how big a book may grow."""

from __future__ import annotations

from dataclasses import dataclass

MAX_INSTRUMENT_ID = (1 << 20) - 1  # books are indexed by id
MAX_TICKS = 1 << 22  # prices per instrument: 0.001 to 4,194 USDC at a 0.001 tick


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Trading parameters of one instrument, all integers.

    Prices are in the quote asset's price units (for CX: micro-USDC per GPU-hour, so a
    tick of 0.001 USDC is ``tick_size=1000``); quantities are in lots' base units.
    """

    instrument_id: int
    tick_size: int
    lot_size: int
    min_price: int
    max_price: int
    min_qty: int
    max_qty: int

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.instrument_id <= MAX_INSTRUMENT_ID:
            problems.append(f"instrument_id must be in 0..{MAX_INSTRUMENT_ID}")
        if self.tick_size <= 0 or self.lot_size <= 0:
            problems.append("tick_size and lot_size must be positive")
        elif self.min_price % self.tick_size or self.max_price % self.tick_size:
            problems.append("price range must lie on the tick")
        elif self.min_qty % self.lot_size or self.max_qty % self.lot_size:
            problems.append("quantity limits must be lot multiples")
        if not 0 < self.min_price <= self.max_price:
            problems.append("need 0 < min_price <= max_price")
        if not 0 < self.min_qty <= self.max_qty:
            problems.append("need 0 < min_qty <= max_qty")
        if not problems and self.ticks > MAX_TICKS:
            problems.append(f"{self.ticks} prices in the range; at most {MAX_TICKS}")
        if problems:
            raise ValueError(f"invalid InstrumentSpec {self.instrument_id}: {'; '.join(problems)}")

    @property
    def ticks(self) -> int:
        """Number of distinct prices in the range."""
        return (self.max_price - self.min_price) // self.tick_size + 1


@dataclass(frozen=True, slots=True)
class BookConfig:
    """Capacity policy: pools start small, grow by doubling, refuse at the maximum."""

    initial_orders: int = 1024
    max_orders: int = 1 << 24
    initial_instruments: int = 16
    initial_accounts: int = 1024
    max_accounts: int = 1 << 24

    def __post_init__(self) -> None:
        if not 1 <= self.initial_orders <= self.max_orders:
            raise ValueError("need 1 <= initial_orders <= max_orders")
        if not 1 <= self.initial_instruments <= MAX_INSTRUMENT_ID + 1:
            raise ValueError("need 1 <= initial_instruments <= MAX_INSTRUMENT_ID + 1")
        if not 1 <= self.initial_accounts <= self.max_accounts:
            raise ValueError("need 1 <= initial_accounts <= max_accounts")
