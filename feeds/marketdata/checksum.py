"""Kraken's book checksum: CRC32 of the top 10 levels each side, as decimal strings.

The checksum lets a subscriber prove, at every update, that the book it rebuilt from a
snapshot and deltas is the book the exchange published; a mismatch means resync. We use
Kraken's convention so existing client code and habits carry over:

- asks first, best (lowest) price first, then bids, best (highest) first; 10 each at most;
- for each level, the price string then the quantity string, each with the '.' removed and
  leading zeros stripped ("0.05005" -> "5005", "0.00000500" -> "500");
- all of it concatenated, then ``zlib.crc32`` as an unsigned 32-bit integer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import islice

DEPTH = 10  # levels per side covered by the checksum

Level = tuple[str, str] | list[str]  # (price, qty) as published


def digits(text: str) -> str:
    """A decimal string as the checksum writes it: no '.', no leading zeros."""
    return text.replace(".", "").lstrip("0")


def checksum_text(asks: Iterable[Level], bids: Iterable[Level]) -> str:
    """The string the CRC is taken of; ``asks`` ascending, ``bids`` descending (best first)."""
    parts = [digits(p) + digits(q) for p, q in islice(asks, DEPTH)]
    parts += [digits(p) + digits(q) for p, q in islice(bids, DEPTH)]
    return "".join(parts)


def checksum(asks: Iterable[Level], bids: Iterable[Level]) -> int:
    """Unsigned CRC32 of ``checksum_text``."""
    return zlib.crc32(checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF
