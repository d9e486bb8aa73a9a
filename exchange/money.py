"""Integer amounts to decimal strings, exactly.

Money is an integer of base units everywhere inside CX (USDC has 6 decimals); this is the
one place that turns it into text for people. It never goes through a float, so what is
shown is exactly what is held, and it refuses to hide digits instead of rounding them away.
"""

from __future__ import annotations

import re

USDC_DECIMALS = 6
PRICE_PLACES = 3  # one tick is 0.001 USDC per GPU-hour


def format_units(amount: int, decimals: int, places: int, *, group: bool = False) -> str:
    """``amount`` base units of an asset with ``decimals`` decimals, shown with ``places``.

    Raises ``ValueError`` if ``places`` would drop non-zero digits: a display that rounds
    silently is how a price off the tick goes unnoticed.
    """
    if not 0 <= places <= decimals:
        raise ValueError(f"places must lie in 0..{decimals}")
    hidden = 10 ** (decimals - places)
    if amount % hidden:
        raise ValueError(f"{amount} has more than {places} decimals at scale {decimals}")
    whole, frac = divmod(abs(amount) // hidden, 10**places)
    sign = "-" if amount < 0 else ""
    head = f"{whole:,}" if group else str(whole)
    return f"{sign}{head}.{frac:0{places}d}" if places else f"{sign}{head}"


def format_price(micro_usdc: int) -> str:
    """A price in micro-USDC per GPU-hour, on the 0.001 tick: ``2013000`` -> ``"2.013"``."""
    return format_units(micro_usdc, USDC_DECIMALS, PRICE_PLACES)


def format_usdc(micro_usdc: int, places: int = PRICE_PLACES) -> str:
    """A USDC amount with thousands separators, e.g. a traded notional."""
    return format_units(micro_usdc, USDC_DECIMALS, places, group=True)


_DECIMAL_TEXT = re.compile(r"^(?P<sign>-?)(?P<whole>0|[1-9]\d{0,17})(?:\.(?P<frac>\d+))?$")


def parse_units(text: str, decimals: int, *, places: int | None = None) -> int:
    """A decimal string from the API edge as integer base units: ``"2.013"`` -> ``2013000``.

    Strict on purpose: no floats, exponents, spaces, ``+`` signs or leading zeros, and no
    more fractional digits than ``places`` (default: the asset's ``decimals``), so that a
    value off the tick is refused rather than rounded into another order than was sent.
    """
    if not isinstance(text, str):
        raise TypeError(f"amounts are decimal strings, not {type(text).__name__}")
    places = decimals if places is None else places
    if not 0 <= places <= decimals:
        raise ValueError(f"places must lie in 0..{decimals}")
    match = _DECIMAL_TEXT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a plain decimal number such as 2.013")
    frac = match["frac"] or ""
    if len(frac) > places:
        raise ValueError(f"{text!r} has more than {places} decimal places")
    units = int(match["whole"]) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    return -units if match["sign"] else units


def parse_price(text: str) -> int:
    """A price in USDC per GPU-hour with at most 3 decimals, as micro-USDC."""
    return parse_units(text, USDC_DECIMALS, places=PRICE_PLACES)
