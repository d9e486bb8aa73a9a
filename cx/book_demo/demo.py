"""``cx demo``: a live terminal view of simulated order flow through the order book.

It is the quickest way to see the matching engine work: no servers, no configuration, one
process. The simulation (``flow``) writes command batches, the book processes each
batch in one call, the tape (``tape``) reads the events back, and the view
(``view``) draws the result several times a second.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.live import Live

from cx.book_demo.flow import DemoInstrument, OrderFlow, demo_instruments
from cx.book_demo.tape import MarketTape
from cx.book_demo.view import DemoFrame, InstrumentLine, render
from matching import OrderBook, ReferenceBook
from matching.rows import empty_commands

if TYPE_CHECKING:
    from cx.settings import Settings

HELP = "watch simulated order flow through the order book, live"
REFRESH_PER_SECOND = 8
OVERVIEW_ROWS = 8
PLAIN_WIDTH = 120


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instruments", type=_int_in(1, 1000), default=4, metavar="N",
        help="instruments to list and trade (default: 4)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=positive_number, default=None, metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=None, metavar="K",
        help="seed of the simulated flow; the same seed sends the same commands",
    )  # fmt: skip
    parser.add_argument(
        "--batch", type=_int_in(1, 1_000_000), default=5000, metavar="B",
        help="commands per refresh, processed in one call (default: 5000)",
    )  # fmt: skip
    parser.add_argument(
        "--select", type=_int_in(0, 999), default=0, metavar="I",
        help="instrument whose ladder and trades are shown (default: 0)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", action="store_true",
        help="use the plain-Python reference book instead of the numba book",
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PLAIN_WIDTH)  # a pipe has no width; the view needs one
    if args.select >= args.instruments:
        Console(stderr=True).print(
            f"cx demo: error: --select {args.select} but only {args.instruments} instruments",
            highlight=False,
        )
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(1 << 32)
    session: DemoSession | None = None
    try:
        with console.status("starting the book (the first start compiles it)"):
            session = DemoSession(args.instruments, seed, args.batch, args.reference, args.select)
        if console.is_terminal:
            with Live(render(session.frame()), console=console, auto_refresh=False) as live:
                session.run_for(args.seconds, lambda f: live.update(render(f), refresh=True))
        else:
            session.run_for(args.seconds, lambda f: None)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a demo without --seconds ends
    if session is None:
        return 0
    if not console.is_terminal:
        console.print(render(session.frame()))
    console.print(session.summary(), highlight=False, soft_wrap=True)
    return 0


def make_book(reference: bool) -> OrderBook:
    """The numba book unless asked otherwise; imported here so ``cx --help`` stays fast."""
    if reference:
        return ReferenceBook()
    from matching.fast import FastBook

    return FastBook()


class DemoSession:
    """One book, the simulated market around it, and the tape of what it did."""

    def __init__(
        self,
        instruments: int = 4,
        seed: int = 0,
        batch: int = 5000,
        reference: bool = False,
        watch: int = 0,
    ) -> None:
        self.seed = seed
        self.batch = batch
        self.watch = watch
        self.instruments: list[DemoInstrument] = demo_instruments(instruments)
        self.book = make_book(reference)
        for instrument in self.instruments:
            self.book.add_instrument(instrument.spec)
        # An empty batch first: a numba book compiles here, outside the timed calls.
        self.book.process(empty_commands(0))
        self.flow = OrderFlow(self.instruments, np.random.default_rng(seed))
        self.tape = MarketTape(instruments, watch)
        self.started_ns = time.monotonic_ns()

    def step(self, now_ns: int | None = None) -> None:
        """Send one batch through the book; only ``process`` itself is timed."""
        commands = self.flow.next_batch(self.batch, time.time_ns() if now_ns is None else now_ns)
        start = time.perf_counter_ns()
        events = self.book.process(commands)
        elapsed = time.perf_counter_ns() - start
        self.flow.observe(events)
        self.tape.record(commands, events, elapsed)

    def run_for(self, seconds: float | None, show: Callable[[DemoFrame], None]) -> None:
        """Step and show at the refresh rate, until ``seconds`` pass (or forever).

        A slow frame is not made up for later: the demo shows the present, not a backlog.
        """
        period = 1.0 / REFRESH_PER_SECOND
        now = time.monotonic()
        deadline = None if seconds is None else now + seconds
        next_frame = now
        while deadline is None or time.monotonic() < deadline:
            self.step()
            show(self.frame())
            next_frame += period
            now = time.monotonic()
            wake = next_frame if deadline is None else min(next_frame, deadline)
            if wake > now:
                time.sleep(wake - now)
            else:
                next_frame = now

    def frame(self) -> DemoFrame:
        bids, asks = self.book.depth(self.watch, 10)
        first = self.watch // OVERVIEW_ROWS * OVERVIEW_ROWS  # the page holding the watched one
        shown = self.instruments[first : first + OVERVIEW_ROWS]
        return DemoFrame(
            book=type(self.book).__name__,
            seed=self.seed,
            elapsed_ns=time.monotonic_ns() - self.started_ns,
            watched=self.instruments[self.watch].name,
            bids=bids,
            asks=asks,
            trades=tuple(self.tape.recent),
            overview=tuple(self._line(i) for i in shown),
            hidden_instruments=len(self.instruments) - len(shown),
            resting=self.book.open_order_count(),
            totals=self.tape.totals,
        )

    def summary(self) -> str:
        """One line for the end of a run, kept after the live view is gone."""
        t = self.tape.totals
        return (
            f"{t.commands:,} commands in {t.batches:,} batches through {type(self.book).__name__}: "
            f"{t.commands_per_second:,} commands/s and {t.events_per_second:,} events/s "
            f"inside the book, {t.trades:,} trades, {self.book.open_order_count():,} orders "
            f"resting (seed {self.seed})"
        )

    def _line(self, instrument: DemoInstrument) -> InstrumentLine:
        i = instrument.spec.instrument_id
        bid, _, ask, _ = self.book.best_bid_offer(i)
        return InstrumentLine(
            name=instrument.name,
            watched=i == self.watch,
            bid=bid,
            ask=ask,
            last=int(self.tape.last_price[i]),
            volume=int(self.tape.volume[i]),
            trades=int(self.tape.trade_count[i]),
        )


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in {low}..{high}")
        return value

    parse.__name__ = "integer"  # how argparse names the type in its error message
    return parse


def positive_number(text: str) -> float:
    """An argparse type; its name is what argparse shows when the text is not a number."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value
