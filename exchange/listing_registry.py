"""Which instrument name has which id: the registry kept beside the engine's journal.

The engine knows instruments by id only; names (``H100-80G.us-east.20261201T00Z.24h``) come
from the listing schedule. The name -> id map is written before the listing commands are
submitted, so a crash in between re-lists under a fresh id rather than leaving a listed id
without a name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from exchange.commands import ListInstrument
from exchange.instruments import ListingSchedule, listing_commands

LISTINGS = "listings.json"  # in the engine's directory


class ListingRegistry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def in_dir(cls, engine_dir: Path) -> ListingRegistry:
        return cls(engine_dir / LISTINGS)

    def due(
        self,
        schedule: ListingSchedule,
        now: datetime,
        is_listed: Callable[[int], bool],
        reference_price: int,
    ) -> tuple[dict[str, int], list[ListInstrument]]:
        """The names listed once the returned commands are submitted (those the engine has
        listed plus the new ones), and the commands for the schedule's windows the engine
        has not listed yet. The registry file is updated before this returns."""
        listed = {name: i for name, i in self.known.items() if is_listed(i)}
        todo = listing_commands(
            schedule, now, listed, max(self.known.values(), default=0) + 1, reference_price
        )
        names = {**listed, **{key.name: cmd.instrument for key, cmd in todo}}
        self.known = {**self.known, **names}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.known, indent=1))
        os.replace(tmp, self.path)
        return names, [cmd for _, cmd in todo]
