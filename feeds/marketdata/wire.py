"""Integers inside, decimal strings on the wire: the one place market data formats numbers.

Prices travel through the engine in micro-USDC per GPU-hour and quantities in whole
GPU-hours (DESIGN "Numbers"). Subscribers see decimal strings with exactly the places the
instrument's tick allows (tick 1000 micro-USDC = 0.001, so "2.013"), and the Kraken
checksum is computed over those same strings, so a client that keeps the strings it was
sent reproduces the checksum without knowing any instrument parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.money import USDC_DECIMALS, format_units, parse_units


def places_for(step: int, decimals: int) -> int:
    """Decimal places needed to write multiples of ``step`` base units (``decimals`` scale).

    ``places_for(1000, 6) == 3``: a 0.001 tick needs three places; ``places_for(5000, 6)``
    is also 3 (0.005), ``places_for(10_000, 6)`` is 2.
    """
    if step <= 0:
        raise ValueError("step must be positive")
    places = decimals
    while places > 0 and step % 10 == 0:
        step //= 10
        places -= 1
    return places


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How one instrument's prices and quantities are written; both go through
    ``decimal_text`` so there is one rule for every number on the wire."""

    price_decimals: int = USDC_DECIMALS  # price unit: micro-USDC per GPU-hour
    price_places: int = 3  # the default 0.001 tick
    qty_decimals: int = 0  # quantity unit: one GPU-hour
    qty_places: int = 0

    @classmethod
    def for_instrument(cls, tick_size: int, lot_size: int = 1) -> WireFormat:
        """The format of an instrument listed with this tick and lot (``ListInstrument``)."""
        return cls(
            price_decimals=USDC_DECIMALS,
            price_places=places_for(tick_size, USDC_DECIMALS),
            qty_decimals=0,
            qty_places=places_for(lot_size, 0),
        )

    def price(self, price: int) -> str:
        return decimal_text(price, self.price_decimals, self.price_places)

    def qty(self, qty: int) -> str:
        return decimal_text(qty, self.qty_decimals, self.qty_places)

    def parse_price(self, text: str) -> int:
        return parse_units(text, self.price_decimals, places=self.price_places)

    def parse_qty(self, text: str) -> int:
        return parse_units(text, self.qty_decimals, places=self.qty_places)


def decimal_text(units: int, decimals: int, places: int) -> str:
    """``units`` at scale ``decimals`` written with ``places`` places, never through a float.

    Refuses (``ValueError``) to drop a non-zero digit: a price off the tick must not be
    published rounded.
    """
    if decimals == 0 == places:
        return str(units)  # whole units (GPU-hours): the common case, kept fast
    return format_units(units, decimals, places)


DEFAULT_FORMAT = WireFormat()
