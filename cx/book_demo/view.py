"""How ``cx demo`` looks: one frame of plain data in, one rich renderable out.

Rendering is a pure function of a ``DemoFrame`` so that the live view, the plain summary
printed when stdout is not a terminal, and the tests all draw exactly the same thing.
Every number is formatted from integers; prices go through ``exchange.money``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cx.book_demo.tape import NS_PER_S, TapeTotals, Trade
from exchange.money import format_price
from matching.codes import Side

LADDER_LEVELS = 10
BAR_WIDTH = 10
_PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"  # index = eighths of a cell
_NONE = "—"


@dataclass(frozen=True, slots=True)
class InstrumentLine:
    """One row of the instruments overview."""

    name: str
    watched: bool  # the instrument whose ladder is shown
    bid: int  # 0 = no bid
    ask: int  # 0 = no ask
    last: int  # 0 = no trade yet
    volume: int  # GPU-hours traded
    trades: int


@dataclass(frozen=True, slots=True)
class DemoFrame:
    """Everything one refresh shows, copied out of the session so drawing it is pure."""

    book: str
    seed: int
    elapsed_ns: int
    watched: str
    bids: np.ndarray  # depth rows (price, visible qty, orders), best first
    asks: np.ndarray
    trades: tuple[Trade, ...]  # oldest first
    overview: tuple[InstrumentLine, ...]
    hidden_instruments: int  # listed but not in the overview
    resting: int
    totals: TapeTotals


def render(frame: DemoFrame) -> RenderableType:
    """The whole screen; laid out to fit an 80-column terminal."""
    header = Text.assemble(
        ("CX", "bold cyan"),
        " demo · ",
        (frame.book, "bold"),
        f" · seed {frame.seed} · {_seconds(frame.elapsed_ns)} · Ctrl-C to stop",
    )
    ladder = Panel(
        ladder_table(frame.bids, frame.asks),
        title=Text(frame.watched, style="bold"),
        subtitle="USDC per GPU-hour",
        expand=False,
    )
    right = Group(
        Panel(
            stats_table(frame), title="engine", subtitle="rates: time in process()", expand=False
        ),
        Panel(trades_table(frame.trades), title="last trades", expand=False),
    )
    body = Table.grid(padding=(0, 1))
    body.add_row(ladder, right)
    return Group(header, body, overview_table(frame.overview, frame.hidden_instruments))


def depth_bar(qty: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A bar ``width`` cells long for ``largest``, drawn to an eighth of a cell."""
    if largest <= 0 or qty <= 0:
        return ""
    full, eighths = divmod(qty * width * 8 // largest, 8)
    return "█" * full + (_PARTIAL_BLOCKS[eighths] if eighths else "")


def ladder_table(bids: np.ndarray, asks: np.ndarray) -> Table:
    """Asks above bids, best prices meeting at the spread, ten levels a side.

    Missing levels are drawn as blank rows so the ladder keeps its height while a side
    is thin, instead of making the whole screen jump.
    """
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Orders", justify="right", style="dim", no_wrap=True)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Price", justify="right", no_wrap=True)
    table.add_column("Depth", width=BAR_WIDTH, no_wrap=True)
    asks, bids = asks[:LADDER_LEVELS], bids[:LADDER_LEVELS]
    largest = int(max(asks[:, 1].max(initial=0), bids[:, 1].max(initial=0)))

    def level(row: list[int], colour: str) -> tuple[str, str, Text, Text]:
        price, qty, orders = row
        bar = depth_bar(qty, largest)
        return str(orders), f"{qty:,}", Text(format_price(price), colour), Text(bar, colour)

    for _ in range(LADDER_LEVELS - len(asks)):
        table.add_row()
    for row in asks[::-1].tolist():
        table.add_row(*level(row, "red"))
    spread = format_price(int(asks[0, 0] - bids[0, 0])) if len(asks) and len(bids) else _NONE
    table.add_row("", Text("spread", "dim"), Text(spread, "dim"), "")
    for row in bids.tolist():
        table.add_row(*level(row, "green"))
    for _ in range(LADDER_LEVELS - len(bids)):
        table.add_row()
    return table


def stats_table(frame: DemoFrame) -> Table:
    """Rates count only the time spent inside the book's ``process`` call."""
    t = frame.totals
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_row("commands/s", Text(f"{t.commands_per_second:,}", "bold"))
    table.add_row("events/s", f"{t.events_per_second:,}")
    table.add_row("batch", f"{t.last_batch:,} in {_millis(t.last_batch_ns)}")
    table.add_row("commands", f"{t.commands:,}")
    table.add_row("resting", f"{frame.resting:,}")
    table.add_row("trades", f"{t.trades:,}")
    table.add_row("refused", f"{t.orders_rejected:,} orders, {t.commands_rejected:,} cmds")
    return table


def trades_table(trades: tuple[Trade, ...]) -> Table:
    """Newest first, coloured by the aggressor's side."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Side", no_wrap=True)
    table.add_column("Price", justify="right", no_wrap=True)
    table.add_column("Qty", justify="right", no_wrap=True)
    for trade in reversed(trades):
        colour = "green" if trade.side == Side.BUY else "red"
        table.add_row(
            _clock(trade.ts),
            Text(trade.side.name, colour),
            Text(format_price(trade.price), colour),
            f"{trade.qty:,}",
        )
    return table


def overview_table(lines: tuple[InstrumentLine, ...], hidden: int) -> Table:
    more = f" · {hidden:,} more instruments not shown" if hidden else ""
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, caption=f"volume in GPU-hours{more}"
    )
    table.add_column("Instrument", no_wrap=True)
    table.add_column("Bid × Ask", justify="center", no_wrap=True)
    for title in ("Last", "Volume", "Trades"):
        table.add_column(title, justify="right", no_wrap=True)
    for line in lines:
        table.add_row(
            line.name,
            f"{_price_or_none(line.bid)} × {_price_or_none(line.ask)}",
            _price_or_none(line.last),
            f"{line.volume:,}",
            f"{line.trades:,}",
            style="bold" if line.watched else None,
        )
    return table


def _price_or_none(price: int) -> str:
    return format_price(price) if price else _NONE


def _clock(ts_ns: int) -> str:
    seconds, ns = divmod(ts_ns, NS_PER_S)
    return f"{datetime.fromtimestamp(seconds, UTC):%H:%M:%S}.{ns // 1_000_000:03d}"


def _seconds(ns: int) -> str:
    whole, rest = divmod(ns, NS_PER_S)
    return f"{whole}.{rest // 100_000_000} s"


def _millis(ns: int) -> str:
    whole, rest = divmod(ns, 1_000_000)
    return f"{whole}.{rest // 1_000:03d} ms"
