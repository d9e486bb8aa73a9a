"""Instruments of compute capacity: what is traded, how it is named, how it is listed.

One instrument is one resource class in one region for one delivery window, named
``H100-80G.us-east.20261201T00Z.24h``. The name is the identity users see and type, so
it is parsed strictly and always rendered the same way. The listing schedule turns a
configuration into the windows that should be listed at a given time; the time is passed
in, never read here, so the same inputs always list the same instruments.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exchange.commands import ListInstrument
from matching.spec import InstrumentSpec
from risk.codes import STATUS_TRANSITIONS as STATUS_TRANSITIONS  # the lifecycle, re-exported
from risk.codes import InstrumentState as InstrumentState
from risk.codes import can_transition as can_transition

NAME_PATTERN = re.compile(
    r"^(?P<resource>[A-Z0-9][A-Z0-9-]*[A-Z0-9])\.(?P<region>[a-z0-9][a-z0-9-]*[a-z0-9])\."
    r"(?P<start>\d{8}T\d{2}Z)\.(?P<hours>[1-9]\d{0,3})h$"
)
WINDOW_FORMAT = "%Y%m%dT%HZ"

# Trading parameters shared by every compute instrument (DESIGN "Numbers"): prices in
# micro-USDC per GPU-hour on a 0.001 USDC tick, quantities in whole GPU-hours.
TICK_MICRO_USDC = 1_000
MIN_PRICE_MICRO_USDC = 1_000  # 0.001 USDC
MAX_PRICE_MICRO_USDC = 1_000_000_000  # 1,000 USDC: a million ticks
LOT_GPU_HOURS = 1


class InstrumentNameError(ValueError):
    """A string that is not a well-formed instrument name."""


@dataclass(frozen=True, slots=True, order=True)
class InstrumentKey:
    """Resource class, region and delivery window: the identity of an instrument."""

    resource: str
    region: str
    window_start: datetime  # UTC, on the hour
    hours: int

    def __post_init__(self) -> None:
        start = self.window_start
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise InstrumentNameError("window_start must be a UTC datetime")
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise InstrumentNameError("window_start must be on the hour")
        if not 1 <= self.hours <= 9999:
            raise InstrumentNameError("hours must be between 1 and 9999")
        if not NAME_PATTERN.match(self._render()):
            raise InstrumentNameError(f"resource {self.resource!r} or region {self.region!r}")

    def _render(self) -> str:
        start = self.window_start.strftime(WINDOW_FORMAT)
        return f"{self.resource}.{self.region}.{start}.{self.hours}h"

    @property
    def name(self) -> str:
        return self._render()

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(hours=self.hours)

    @classmethod
    def parse(cls, name: str) -> InstrumentKey:
        match = NAME_PATTERN.match(name)
        if match is None:
            raise InstrumentNameError(
                f"{name!r} is not RESOURCE.region.YYYYMMDDTHHZ.<hours>h "
                "(e.g. H100-80G.us-east.20261201T00Z.24h)"
            )
        try:
            start = datetime.strptime(match["start"], WINDOW_FORMAT).replace(tzinfo=UTC)
        except ValueError as exc:
            raise InstrumentNameError(f"{name!r} has no such date or hour") from exc
        return cls(match["resource"], match["region"], start, int(match["hours"]))

    def spec(self, instrument_id: int, max_qty: int = 100_000) -> InstrumentSpec:
        """The book's parameters for this instrument under the id the exchange gave it."""
        return InstrumentSpec(
            instrument_id,
            tick_size=TICK_MICRO_USDC,
            lot_size=LOT_GPU_HOURS,
            min_price=MIN_PRICE_MICRO_USDC,
            max_price=MAX_PRICE_MICRO_USDC,
            min_qty=LOT_GPU_HOURS,
            max_qty=max_qty,
        )


class ListingSchedule(BaseModel):
    """Which windows are listed: the next-hour spot window and daily windows ahead.

    Loaded from configuration; unknown fields are refused so that a typo fails loudly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resources: tuple[str, ...] = Field(min_length=1)
    regions: tuple[str, ...] = Field(min_length=1)
    spot: bool = True  # the window starting at the next whole hour, one hour long
    daily_days_ahead: int = Field(default=7, ge=0, le=366)
    daily_start_hour: int = Field(default=0, ge=0, le=23)  # UTC hour daily windows begin

    @field_validator("resources", "regions")
    @classmethod
    def _distinct(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(values)) != len(values):
            raise ValueError("must not repeat")
        return values

    def listings(self, now: datetime) -> list[InstrumentKey]:
        """Windows that should be listed at ``now`` (UTC), in name order.

        Daily windows are the next ``daily_days_ahead`` that have not started yet.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        now = now.astimezone(UTC)
        next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        windows: list[tuple[datetime, int]] = []
        if self.spot:
            windows.append((next_hour, 1))
        first_day = now.replace(hour=self.daily_start_hour, minute=0, second=0, microsecond=0)
        if first_day <= now:
            first_day += timedelta(days=1)
        windows += [(first_day + timedelta(days=d), 24) for d in range(self.daily_days_ahead)]
        keys = {
            InstrumentKey(resource, region, start, hours)
            for resource in self.resources
            for region in self.regions
            for start, hours in windows
        }
        return sorted(keys, key=lambda key: key.name)

    @classmethod
    def from_file(cls, path: str | Path) -> ListingSchedule:
        """Read the schedule from a ``.toml`` or ``.json`` file (unknown keys refused)."""
        path = Path(path)
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.model_validate(data)


def listing_commands(
    schedule: ListingSchedule,
    now: datetime,
    listed: Mapping[str, int],
    next_id: int,
    reference_price: int = 0,
) -> list[tuple[InstrumentKey, ListInstrument]]:
    """ListInstrument commands for the windows the schedule wants that are not listed yet.

    Ids are handed out from ``next_id`` in name order; each window stops taking orders at
    its start (the trading cut-off), enforced by the core from sequenced timestamps.
    """
    out = []
    for key in schedule.listings(now):
        if key.name in listed:
            continue
        cutoff_ns = int(key.window_start.timestamp()) * 1_000_000_000
        command = ListInstrument.of(
            key.spec(next_id), reference_price=reference_price, cutoff_ts=cutoff_ns
        )
        out.append((key, command))
        next_id += 1
    return out
