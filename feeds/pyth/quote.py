"""The one shape every oracle source produces, and the interface sources implement.

A quote keeps Pyth's integers as published (mantissa, confidence, exponent, publish time in
seconds) so that what reaches the engine is exactly what the oracle said. ``simulated`` travels
with every quote so a display can never show a simulated price as a real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable


class PriceStatus(IntEnum):
    """Pyth's aggregate price status (the values of the on-chain enum)."""

    UNKNOWN = 0
    TRADING = 1
    HALTED = 2
    AUCTION = 3
    IGNORED = 4


@dataclass(frozen=True, slots=True)
class OracleQuote:
    """One price of one asset: ``price * 10**expo`` USD, plus or minus ``conf * 10**expo``."""

    asset: str  # the asset's symbol in the risk configuration, e.g. "SOL"
    price: int
    conf: int
    expo: int
    publish_time: int  # unix seconds
    status: PriceStatus
    source: str  # where it was read: "hermes", "onchain:<address>", ...
    simulated: bool
    feed_id: str = ""  # Pyth feed id, 64 hex digits, when the source knows it
    verified: bool = True  # False for a PriceUpdateV2 only partially verified on chain

    def decimal(self, value: int | None = None) -> str:
        """``price`` (or another mantissa) as an exact decimal string, never via a float."""
        mantissa = self.price if value is None else value
        if self.expo >= 0:
            return str(mantissa * 10**self.expo)
        digits = str(abs(mantissa)).rjust(-self.expo + 1, "0")
        sign = "-" if mantissa < 0 else ""
        return f"{sign}{digits[: self.expo]}.{digits[self.expo :]}"

    def to_wire(self) -> dict[str, Any]:
        """Plain values for orjson; the label SIMULATED is explicit, not only a flag."""
        return {
            "asset": self.asset,
            "price": self.decimal(),
            "conf": self.decimal(self.conf),
            "price_mantissa": self.price,
            "conf_mantissa": self.conf,
            "expo": self.expo,
            "publish_time": self.publish_time,
            "status": self.status.name,
            "source": self.source,
            "feed_id": self.feed_id,
            "simulated": self.simulated,
            "label": "SIMULATED" if self.simulated else "PYTH",
        }


@runtime_checkable
class OracleSource(Protocol):
    """Where quotes come from: Hermes, Pyth accounts on chain, or the simulated publisher.

    ``poll`` reads the latest quote of every configured asset once; ``updates`` yields quotes
    as they arrive, for as long as the caller iterates (sources reconnect on their own).
    """

    name: str
    simulated: bool

    async def poll(self) -> list[OracleQuote]: ...

    def updates(self) -> AsyncIterator[OracleQuote]: ...

    async def aclose(self) -> None: ...
