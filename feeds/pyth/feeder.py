"""From quotes to ``SetOraclePrice`` commands: guard, de-duplicate, submit, count.

Oracle prices enter the engine as sequenced commands (DESIGN "The flow of one order"), so a
replay of the journal reproduces every price the engine used. This is the only place that
turns a quote into a command; everything it refuses is counted by reason and never submitted.
A publish time already seen for an asset is skipped: the engine would refuse it anyway, and
polling sources see the same update many times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from exchange.commands import SetOraclePrice, rows
from exchange.events import CommandRejected, OraclePriceSet, decode
from exchange.ids import AssetId
from feeds.pyth.guards import OracleGuard, Refusal
from feeds.pyth.metrics import OracleMetrics, default_metrics
from feeds.pyth.quote import OracleQuote
from risk.codes import USDC
from risk.config import RiskConfig

log = logging.getLogger(__name__)

Submit = Callable[[np.ndarray], Any]  # Engine.submit: command rows in, event rows out


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # submitted, and the engine set the price
    REFUSED = "refused"  # a guard said no; not submitted
    UNCHANGED = "unchanged"  # publish time already handled for this asset
    NOT_PRICED = "not_priced"  # the quote asset (USDC) is at par: watched, never submitted
    ENGINE_REJECTED = "engine_rejected"  # submitted, and the engine refused it


@dataclass(frozen=True, slots=True)
class Decision:
    quote: OracleQuote
    outcome: Outcome
    reason: str | None = None  # a Refusal, or the engine's reject code name
    command: SetOraclePrice | None = None


class OracleFeeder:
    """Feeds one engine from any ``OracleSource``.

    ``submit`` is called from the thread that calls ``offer``/``run``; pass the engine's
    ``submit`` when that is the engine's thread, or a callable that hands rows to it.
    """

    def __init__(
        self,
        submit: Submit,
        *,
        risk: RiskConfig | None = None,
        guard: OracleGuard | None = None,
        metrics: OracleMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.risk = risk or RiskConfig()
        self.guard = guard or OracleGuard.from_risk(self.risk)
        self.metrics = metrics or default_metrics()
        self._submit = submit
        self._clock = clock
        self._used: dict[str, int] = {}  # asset -> publish time of the newest quote used
        self._refused: dict[str, int] = {}  # asset -> publish time of the last refused quote
        self.latest: dict[str, OracleQuote] = {}  # asset -> newest quote that passed the guards

    def offer(self, quotes: Iterable[OracleQuote], now_s: int | None = None) -> list[Decision]:
        """Decide on each quote and submit the accepted ones as one batch."""
        now = int(self._clock()) if now_s is None else now_s
        decisions = [self._decide(q, now) for q in quotes]
        pending = [d for d in decisions if d.command is not None]
        if not pending:
            return decisions
        events = self._submit(rows([d.command for d in pending if d.command is not None]))
        results = iter(self._results(events, len(pending)))
        out = []
        for d in decisions:
            if d.command is None:
                out.append(d)
                continue
            rejected = next(results)
            if rejected is None:
                self.metrics.accepted.labels(d.quote.asset, d.quote.source).inc()
                self.latest[d.quote.asset] = d.quote
                out.append(d)
            else:
                self.metrics.engine_rejected.labels(d.quote.asset, rejected).inc()
                log.warning("engine refused %s price: %s", d.quote.asset, rejected)
                out.append(Decision(d.quote, Outcome.ENGINE_REJECTED, rejected, d.command))
        return out

    async def run(self, quotes: AsyncIterable[OracleQuote]) -> None:
        """Offer each quote of ``source.updates()`` as it comes, until it ends or is cancelled."""
        async for quote in quotes:
            self.offer([quote])

    # -- internals ---------------------------------------------------------------------------

    def _decide(self, quote: OracleQuote, now: int) -> Decision:
        used = self._used.get(quote.asset)
        if quote.publish_time in (used, self._refused.get(quote.asset)):
            self.metrics.unchanged.labels(quote.asset, quote.source).inc()
            return Decision(quote, Outcome.UNCHANGED)
        refusal = self.guard.check(quote, now)
        if refusal is None and used is not None and quote.publish_time < used:
            refusal = Refusal.OUT_OF_ORDER
        if refusal is None:
            try:
                asset = self.risk.asset_index(quote.asset)
            except KeyError:  # the guard has limits for an asset the engine does not know
                refusal = Refusal.UNKNOWN_ASSET
        if refusal is not None:
            # remembered apart from the used time, so a bad quote cannot block later good ones
            self._refused[quote.asset] = quote.publish_time
            self.metrics.refused.labels(quote.asset, quote.source, refusal.value).inc()
            return Decision(quote, Outcome.REFUSED, refusal.value)
        self._used[quote.asset] = quote.publish_time
        if asset == USDC:
            self.latest[quote.asset] = quote
            return Decision(quote, Outcome.NOT_PRICED)
        command = SetOraclePrice(
            asset=AssetId(asset),
            price=quote.price,
            conf=quote.conf,
            expo=quote.expo,
            publish_time=quote.publish_time,
            status=int(quote.status),
        )
        return Decision(quote, Outcome.ACCEPTED, command=command)

    @staticmethod
    def _results(events: Any, n: int) -> list[str | None]:
        """Per submitted command: ``None`` if the engine set the price, else its reject code."""
        if not isinstance(events, np.ndarray):
            return [None] * n  # a submit that only enqueues: the engine's answer comes later
        results: list[str | None] = []
        for event in decode(events):
            if isinstance(event, OraclePriceSet):
                results.append(None)
            elif isinstance(event, CommandRejected):
                results.append(event.reason.name)
        if len(results) != n:
            raise RuntimeError(f"expected {n} oracle events from the engine, got {len(results)}")
        return results
