"""What the book did during ``cx demo``, read back from its command and event rows.

The tape only counts and remembers; it never asks the book, so the numbers it shows are
the ones a market-data consumer downstream of the engine could compute too. The one thing
it cannot get from the rows, the time spent inside ``process``, is handed in by the caller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from matching import codes as c
from matching.codes import BookEventKind, Liquidity, Side

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill seen from the taker's side: its side is the aggressor's."""

    ts: int  # ns since the epoch, of the command that caused it
    side: Side
    price: int  # micro-USDC per GPU-hour
    qty: int  # GPU-hours


@dataclass(frozen=True, slots=True)
class TapeTotals:
    """Running totals at one moment; immutable so a view can hold them while the tape moves."""

    batches: int = 0
    commands: int = 0
    events: int = 0
    process_ns: int = 0  # time spent inside the book's ``process``, summed
    last_batch: int = 0
    last_batch_ns: int = 0
    trades: int = 0
    orders_rejected: int = 0
    commands_rejected: int = 0

    @property
    def commands_per_second(self) -> int:
        """Commands the book processed per second of its own time, not the demo's."""
        return self.commands * NS_PER_S // self.process_ns if self.process_ns else 0

    @property
    def events_per_second(self) -> int:
        return self.events * NS_PER_S // self.process_ns if self.process_ns else 0


class MarketTape:
    """Totals over every batch, per-instrument trading, and one instrument's latest trades."""

    def __init__(self, instruments: int, watch: int, keep: int = 12) -> None:
        self.watch = watch
        self.totals = TapeTotals()
        self.last_price = np.zeros(instruments, dtype=np.int64)  # 0 = no trade yet
        self.volume = np.zeros(instruments, dtype=np.int64)  # GPU-hours
        self.trade_count = np.zeros(instruments, dtype=np.int64)
        self.keep = max(keep, 1)
        self.recent: deque[Trade] = deque(maxlen=self.keep)  # oldest first

    def record(self, commands: np.ndarray, events: np.ndarray, process_ns: int) -> None:
        """Account for one ``process`` call: its input, its output and how long it took."""
        kind = events[:, c.E_KIND]
        # Every trade yields a maker fill and a taker fill; taker fills count trades once.
        taker_fill = (kind == BookEventKind.ORDER_FILLED) & (
            events[:, c.E_LIQUIDITY] == Liquidity.TAKER
        )
        trades = events[taker_fill]
        t = self.totals
        self.totals = replace(
            t,
            batches=t.batches + 1,
            commands=t.commands + len(commands),
            events=t.events + len(events),
            process_ns=t.process_ns + process_ns,
            last_batch=len(commands),
            last_batch_ns=process_ns,
            trades=t.trades + len(trades),
            orders_rejected=t.orders_rejected + int(np.sum(kind == BookEventKind.ORDER_REJECTED)),
            commands_rejected=t.commands_rejected
            + int(np.sum(kind == BookEventKind.COMMAND_REJECTED)),
        )
        if len(trades):
            self._record_trades(commands, trades)

    def _record_trades(self, commands: np.ndarray, trades: np.ndarray) -> None:
        inst = trades[:, c.E_INSTRUMENT]
        np.add.at(self.trade_count, inst, 1)
        np.add.at(self.volume, inst, trades[:, c.E_QTY])
        newest_first = trades[::-1]
        seen, first = np.unique(newest_first[:, c.E_INSTRUMENT], return_index=True)
        self.last_price[seen] = newest_first[first, c.E_PRICE]

        watched = trades[inst == self.watch][-self.keep :]
        # Commands come sorted by sequence number and an event carries its command's.
        at = np.searchsorted(commands[:, c.C_SEQ], watched[:, c.E_SEQ])
        for row, ts in zip(watched.tolist(), commands[at, c.C_TS].tolist(), strict=True):
            self.recent.append(Trade(ts, Side(row[c.E_SIDE]), row[c.E_PRICE], row[c.E_QTY]))
