"""Order book workloads: deterministic command arrays, generated before any timing starts.

Each generator returns a ``Workload``: the commands that build the starting book
(``prefill``, never timed) and the measured ``commands``. Generating up front keeps the
random number generator and all Python bookkeeping out of the timed loops, and makes every
run of a seed feed the books exactly the same rows.

Flows that cancel and move orders must know which orders still rest. Rather than carry a
second matching model that could disagree with the books, the generator feeds each chunk
of commands it writes to an oracle book and reads back its events, as exchange-core's
generator does with its own book. Cancels and moves within a chunk can still name an order
that an earlier command of the same chunk filled; those come back as COMMAND_REJECTED,
which is realistic (a client racing a fill) and kept rare by small chunks.
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from matching import codes as c
from matching.api import OrderBook
from matching.codes import BookCommandKind, BookEventKind, OrderType, Side, TimeInForce
from matching.reference import ReferenceBook
from matching.spec import BookConfig, InstrumentSpec

B = TypeVar("B", bound=OrderBook)

PRICE_MIN = 1
PRICE_MAX = 1_000_000  # a million ticks: books cannot cheat with a small dense price array
MID = 500_000
ORACLE_CHUNK = 64  # commands generated between two looks at the oracle's events
PROCESS_CHUNK = 1 << 16  # rows per book.process call when a book is only being filled

FLOW_KINDS = ("gtc", "ioc", "cancel", "replace")  # replace = move to a new price


def instrument_spec(instrument_id: int) -> InstrumentSpec:
    """Integer prices over a million-tick range, integer quantities, as the brief fixes."""
    return InstrumentSpec(
        instrument_id,
        tick_size=1,
        lot_size=1,
        min_price=PRICE_MIN,
        max_price=PRICE_MAX,
        min_qty=1,
        max_qty=1_000_000,
    )


@dataclass(frozen=True)
class Workload:
    """Commands for one benchmark scenario plus what a book needs to run them unimpeded."""

    name: str
    description: str
    specs: tuple[InstrumentSpec, ...]
    prefill: np.ndarray  # builds the starting book; not timed
    commands: np.ndarray  # the measured commands
    max_orders: int  # bound on orders resting at once: pools are sized so they never grow
    accounts: int
    stats: dict[str, object] = field(default_factory=dict)  # facts from generation

    def config(self) -> BookConfig:
        """Pools big enough up front, so a timed run never stops to grow them."""
        return BookConfig(
            initial_orders=max(1024, self.max_orders),
            initial_accounts=max(1024, self.accounts),
            initial_instruments=max(16, len(self.specs)),
        )

    def build(self, book_cls: type[B], config: BookConfig | None = None) -> B:
        """A fresh book of ``book_cls`` holding the prefilled state."""
        book = book_cls(config or self.config())
        for spec in self.specs:
            book.add_instrument(spec)
        process_in_chunks(book, self.prefill)
        return book


def process_in_chunks(book: OrderBook, commands: np.ndarray) -> int:
    """Run ``commands`` through ``book`` in large batches; return how many events came out."""
    n_events = 0
    for start in range(0, len(commands), PROCESS_CHUNK):
        n_events += len(book.process(commands[start : start + PROCESS_CHUNK]))
    return n_events


def _new_row(
    seq: int, instrument: int, oid: int, account: int, side: int, price: int, qty: int, tif: int
) -> list[int]:
    kind, limit = BookCommandKind.NEW_ORDER, OrderType.LIMIT
    return [seq, seq, kind, instrument, oid, account, side, price, qty, limit, tif, 0, 0, 0, 0]


def _cancel_row(seq: int, instrument: int, oid: int, account: int) -> list[int]:
    return [seq, seq, BookCommandKind.CANCEL_ORDER, instrument, oid, account] + [0] * 9


def _replace_row(
    seq: int, instrument: int, oid: int, account: int, price: int, qty: int
) -> list[int]:
    return [seq, seq, BookCommandKind.REPLACE_ORDER, instrument, oid, account, 0, price, qty] + [
        0
    ] * 6


class _LiveOrders:
    """Orders the generator believes rest in a book: O(1) add, discard and uniform pick.

    Columns are flat ``array('q')`` indexed by order id (ids are dense), so tracking a
    million orders costs tens of megabytes rather than a dict of tuples, which would also
    inflate the RSS the many-instruments benchmark reports.
    """

    def __init__(self, max_id: int, resting: np.ndarray) -> None:
        """Track ids up to ``max_id``, starting with the ``resting`` new-order rows."""

        def column(values: np.ndarray, fill: int = 0) -> array.array:
            col = np.full(max_id + 1, fill, dtype=np.int64)
            col[resting[:, c.C_ORDER_ID]] = values
            out = array.array("q")
            out.frombytes(col.tobytes())
            return out

        ids = np.ascontiguousarray(resting[:, c.C_ORDER_ID])
        self.ids = array.array("q")
        self.ids.frombytes(ids.tobytes())
        self.pos = column(np.arange(len(ids)), fill=-1)
        self.instrument = column(resting[:, c.C_INSTRUMENT])
        self.account = column(resting[:, c.C_ACCOUNT])
        self.side = column(resting[:, c.C_SIDE])
        self.price = column(resting[:, c.C_PRICE])
        self.qty = column(resting[:, c.C_QTY])

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, oid: int, instrument: int, account: int, side: int, price: int, qty: int) -> None:
        self.pos[oid] = len(self.ids)
        self.ids.append(oid)
        self.instrument[oid] = instrument
        self.account[oid] = account
        self.side[oid] = side
        self.price[oid] = price
        self.qty[oid] = qty

    def discard(self, oid: int) -> None:
        p = self.pos[oid]
        if p < 0:
            return
        last = self.ids.pop()
        if last != oid:
            self.ids[p] = last
            self.pos[last] = p
        self.pos[oid] = -1

    def pick(self, u: float) -> int:
        return self.ids[int(u * len(self.ids))]


@dataclass(frozen=True)
class FlowParams:
    """Shape of a random order flow: command mix, price placement, how many orders rest."""

    gtc: float  # shares of the mix; the remainder is replace (price moves)
    ioc: float
    cancel: float
    target_live: int  # resting orders the flow keeps, by swapping GTC <-> cancel draws
    mean_offset: float  # mean distance of passive prices from the last trade, in ticks
    cross_p: float  # chance that a GTC or a move is priced through the last trade
    cross_depth: int  # how far through it, at most
    ioc_depth: int  # how far through the last trade an IOC reaches, at most
    max_qty: int = 100
    ioc_max_qty: int = 100


class _FlowGenerator:
    """Random order flow on many instruments, kept honest by an oracle book's events."""

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        oracle: OrderBook,
        params: FlowParams,
        instruments: int,
        accounts: int,
        centers: list[int],
        live: _LiveOrders,
        next_seq: int,
        next_oid: int,
    ) -> None:
        self.rng, self.oracle, self.p = rng, oracle, params
        self.instruments, self.accounts = instruments, accounts
        self.center = centers  # last trade price per instrument: where passive orders go
        self.live = live
        self.seq, self.oid = next_seq, next_oid
        self.counts = dict.fromkeys(FLOW_KINDS, 0)
        self.trade_commands = 0
        self.rejects = 0

    def _price(self, side: int, center: int, offset: int) -> int:
        price = center - offset if side == Side.BUY else center + offset
        return min(PRICE_MAX, max(PRICE_MIN, price))

    def _passive_or_crossing(self, side: int, center: int, u: float, off: int, k: int) -> int:
        if u < self.p.cross_p:
            return self._price(side, center, -k)  # through the last trade: likely to fill
        return self._price(side, center, off)

    def generate(self, n: int) -> np.ndarray:
        out = np.empty((n, c.N_COMMAND_FIELDS), dtype=np.int64)
        for start in range(0, n, ORACLE_CHUNK):
            m = min(ORACLE_CHUNK, n - start)
            rows = self._chunk(m)
            out[start : start + m] = rows
            self._observe(self.oracle.process(rows))
        return out

    def _chunk(self, m: int) -> np.ndarray:
        p, rng, live = self.p, self.rng, self.live
        u = rng.random((m, 4)).tolist()
        offsets = rng.geometric(1.0 / p.mean_offset, m).tolist()
        crosses = rng.integers(0, p.cross_depth + 1, m).tolist()
        iocs = rng.integers(1, p.ioc_depth + 1, m).tolist()
        qtys = rng.integers(1, p.max_qty + 1, m).tolist()
        ioc_qtys = rng.integers(1, p.ioc_max_qty + 1, m).tolist()
        insts = rng.integers(0, self.instruments, m).tolist()
        accts = rng.integers(0, self.accounts, m).tolist()
        rows = []
        for j in range(m):
            uk, upick, uside, ucross = u[j]
            seq = self.seq
            self.seq += 1
            if uk < p.gtc:
                kind = "gtc"
            elif uk < p.gtc + p.ioc:
                kind = "ioc"
            elif uk < p.gtc + p.ioc + p.cancel:
                kind = "cancel"
            else:
                kind = "replace"
            # Hold the resting count at the target: the mix stays close to the nominal one
            # while the book neither drains nor grows without bound.
            if kind == "cancel" and len(live) < p.target_live:
                kind = "gtc"
            elif kind == "gtc" and len(live) > p.target_live:
                kind = "cancel"
            if kind == "replace" and not len(live):
                kind = "gtc"
            self.counts[kind] += 1
            if kind in ("gtc", "ioc"):
                inst, side, oid = insts[j], Side.BUY if uside < 0.5 else Side.SELL, self.oid
                self.oid += 1
                center = self.center[inst]
                if kind == "gtc":
                    price = self._passive_or_crossing(side, center, ucross, offsets[j], crosses[j])
                    rows.append(
                        _new_row(seq, inst, oid, accts[j], side, price, qtys[j], TimeInForce.GTC)
                    )
                    live.add(oid, inst, accts[j], side, price, qtys[j])
                else:
                    price = self._price(side, center, -iocs[j])
                    qty = ioc_qtys[j]
                    rows.append(
                        _new_row(seq, inst, oid, accts[j], side, price, qty, TimeInForce.IOC)
                    )
            else:
                oid = live.pick(upick)
                inst, acct = live.instrument[oid], live.account[oid]
                if kind == "cancel":
                    rows.append(_cancel_row(seq, inst, oid, acct))
                    live.discard(oid)
                else:
                    side, old = live.side[oid], live.price[oid]
                    price = self._passive_or_crossing(
                        side, self.center[inst], ucross, offsets[j], crosses[j]
                    )
                    if price == old:
                        price = self._price(side, price, 1)  # a move must move
                    rows.append(_replace_row(seq, inst, oid, acct, price, live.qty[oid]))
                    live.price[oid] = price
        return np.array(rows, dtype=np.int64)

    def _observe(self, ev: np.ndarray) -> None:
        """Drop orders the oracle says are gone; follow the last trade price."""
        if not len(ev):
            return
        kind = ev[:, c.E_KIND]
        gone = (
            (kind == BookEventKind.ORDER_FILLED)
            | (kind == BookEventKind.ORDER_CANCELLED)
            | (kind == BookEventKind.ORDER_EXPIRED)
        ) & (ev[:, c.E_LEAVES] == 0)
        gone |= kind == BookEventKind.ORDER_REJECTED
        for oid in ev[gone, c.E_ORDER_ID].tolist():
            self.live.discard(oid)
        self.rejects += int(
            np.count_nonzero(
                (kind == BookEventKind.ORDER_REJECTED) | (kind == BookEventKind.COMMAND_REJECTED)
            )
        )
        fills = ev[kind == BookEventKind.ORDER_FILLED]
        if len(fills):
            self.trade_commands += len(np.unique(fills[:, c.E_SEQ]))
            for inst, price in fills[:, [c.E_INSTRUMENT, c.E_PRICE]].tolist():
                self.center[inst] = price

    def stats(self, n: int) -> dict[str, object]:
        return {
            "mix": {k: round(v / n, 4) for k, v in self.counts.items()},
            "generation_reject_share": round(self.rejects / n, 4),
            "generation_trade_command_share": round(self.trade_commands / n, 4),
            "resting_orders_at_end": len(self.live),
        }


def resting_prefill(
    rng: np.random.Generator,
    *,
    instruments: int,
    per_instrument: int,
    centers: np.ndarray,
    accounts: int,
    mean_offset: float,
    max_qty: int = 100,
) -> np.ndarray:
    """GTC orders that cannot cross (bids below each center, asks above), interleaved
    across instruments as live flow would be. Ids and sequence numbers start at 1."""
    n = instruments * per_instrument
    inst = rng.permutation(np.repeat(np.arange(instruments, dtype=np.int64), per_instrument))
    side = np.where(rng.random(n) < 0.5, Side.BUY, Side.SELL).astype(np.int64)
    offset = rng.geometric(1.0 / mean_offset, n).astype(np.int64)
    price = np.where(side == Side.BUY, centers[inst] - offset, centers[inst] + offset)
    rows = np.zeros((n, c.N_COMMAND_FIELDS), dtype=np.int64)
    seq = np.arange(1, n + 1, dtype=np.int64)
    rows[:, c.C_SEQ] = seq
    rows[:, c.C_TS] = seq
    rows[:, c.C_KIND] = BookCommandKind.NEW_ORDER
    rows[:, c.C_INSTRUMENT] = inst
    rows[:, c.C_ORDER_ID] = seq
    rows[:, c.C_ACCOUNT] = rng.integers(0, accounts, n)
    rows[:, c.C_SIDE] = side
    rows[:, c.C_PRICE] = np.clip(price, PRICE_MIN, PRICE_MAX)
    rows[:, c.C_QTY] = rng.integers(1, max_qty + 1, n)
    rows[:, c.C_ORDER_TYPE] = OrderType.LIMIT
    rows[:, c.C_TIF] = TimeInForce.GTC
    return rows


def _flow_start(
    rng: np.random.Generator,
    params: FlowParams,
    instruments: int,
    per_instrument: int,
    accounts: int,
) -> tuple[tuple[InstrumentSpec, ...], np.ndarray, np.ndarray]:
    """Instruments, their starting centers and the non-crossing prefill of a flow workload."""
    specs = tuple(instrument_spec(i) for i in range(instruments))
    centers = np.full(instruments, MID, dtype=np.int64)
    if instruments > 1:  # spread the books over the range, as different products would be
        centers = rng.integers(MID // 5, MID * 9 // 5, instruments)
    prefill = resting_prefill(
        rng,
        instruments=instruments,
        per_instrument=per_instrument,
        centers=centers,
        accounts=accounts,
        mean_offset=params.mean_offset,
        max_qty=params.max_qty,
    )
    return specs, centers, prefill


def _flow_workload(
    *,
    name: str,
    description: str,
    n: int,
    seed: int,
    oracle: type[OrderBook],
    params: FlowParams,
    instruments: int,
    per_instrument: int,
    accounts: int,
) -> Workload:
    rng = np.random.default_rng(seed)
    specs, centers, prefill = _flow_start(rng, params, instruments, per_instrument, accounts)
    max_id = len(prefill) + n
    live = _LiveOrders(max_id, prefill)
    probe = Workload(name, description, specs, prefill, prefill[:0], max_id, accounts)
    gen = _FlowGenerator(
        rng=rng,
        oracle=probe.build(oracle),
        params=params,
        instruments=instruments,
        accounts=accounts,
        centers=centers.tolist(),
        live=live,
        next_seq=len(prefill) + 1,
        next_oid=len(prefill) + 1,
    )
    commands = gen.generate(n)
    new_orders = int(np.count_nonzero(commands[:, c.C_KIND] == BookCommandKind.NEW_ORDER))
    return Workload(
        name,
        description,
        specs,
        prefill,
        commands,
        max_orders=len(prefill) + new_orders + 1,
        accounts=accounts,
        stats=gen.stats(n),
    )


def exchange_core(n: int, *, seed: int = 1, oracle: type[OrderBook] = ReferenceBook) -> Workload:
    """exchange-core's published mix on one instrument (9% GTC, 3% IOC, 6% cancel, 82% move),
    ~1,000 resting orders over ~750 prices, 1,000 accounts."""
    return _flow_workload(
        name="exchange_core",
        description="exchange-core mix: 9% GTC, 3% IOC, 6% cancel, 82% move; ~1k resting orders",
        n=n,
        seed=seed,
        oracle=oracle,
        params=FlowParams(
            gtc=0.09,
            ioc=0.03,
            cancel=0.06,
            target_live=1_000,
            mean_offset=350,
            cross_p=0.035,
            cross_depth=10,
            ioc_depth=20,
            ioc_max_qty=20,  # takers smaller than makers: fewer fills empty the book
        ),
        instruments=1,
        per_instrument=1_000,
        accounts=1_000,
    )


def _many_instruments_params(target_live: int) -> FlowParams:
    return FlowParams(
        gtc=0.35,
        ioc=0.05,
        cancel=0.30,
        target_live=target_live,
        mean_offset=50,
        cross_p=0.05,
        cross_depth=5,
        ioc_depth=10,
    )


def many_instruments(
    n: int,
    *,
    instruments: int = 1_000,
    per_instrument: int = 1_000,
    seed: int = 3,
    oracle: type[OrderBook] = ReferenceBook,
) -> Workload:
    """Many books at once: a large prefill of resting orders, then flow spread uniformly
    over the instruments, so caches hold little of any one book."""
    return _flow_workload(
        name="many_instruments",
        description=(
            f"{instruments} instruments, {instruments * per_instrument:,} resting orders; "
            "35% GTC, 5% IOC, 30% cancel, 30% move"
        ),
        n=n,
        seed=seed,
        oracle=oracle,
        params=_many_instruments_params(instruments * per_instrument),
        instruments=instruments,
        per_instrument=per_instrument,
        accounts=1_000,
    )


def many_instruments_prefill(
    instruments: int = 1_000, per_instrument: int = 1_000, *, seed: int = 3
) -> Workload:
    """Only the starting books of ``many_instruments`` (same seed, same orders), cheap
    enough to build in a fresh process that measures what the prefill costs in memory."""
    rng = np.random.default_rng(seed)
    params = _many_instruments_params(instruments * per_instrument)
    specs, _, prefill = _flow_start(rng, params, instruments, per_instrument, 1_000)
    return Workload(
        "many_instruments_prefill",
        "resting orders of many_instruments",
        specs,
        prefill,
        prefill[:0],
        max_orders=len(prefill) + 1,
        accounts=1_000,
    )


def insert_heavy(n: int, *, seed: int = 2) -> Workload:
    """Liquibook's performance test: limit orders alternating buy and sell, buys priced
    uniformly over 10 ticks from mid-4 and sells over 10 ticks from mid, so the 6 shared
    ticks make about half of them trade; quantities 100..1000. Nothing is cancelled, so the
    never-crossing tails keep growing. Buyers and sellers are disjoint accounts, keeping
    self-trade prevention out of a pure matching test."""
    rng = np.random.default_rng(seed)
    seq = np.arange(1, n + 1, dtype=np.int64)
    buy = (seq % 2) == 1
    rows = np.zeros((n, c.N_COMMAND_FIELDS), dtype=np.int64)
    rows[:, c.C_SEQ] = seq
    rows[:, c.C_TS] = seq
    rows[:, c.C_KIND] = BookCommandKind.NEW_ORDER
    rows[:, c.C_INSTRUMENT] = 0
    rows[:, c.C_ORDER_ID] = seq
    rows[:, c.C_ACCOUNT] = np.where(buy, rng.integers(0, 500, n), rng.integers(500, 1000, n))
    rows[:, c.C_SIDE] = np.where(buy, Side.BUY, Side.SELL)
    rows[:, c.C_PRICE] = np.where(buy, MID - 4, MID) + rng.integers(0, 10, n)
    rows[:, c.C_QTY] = (rng.integers(0, 10, n) + 1) * 100
    rows[:, c.C_ORDER_TYPE] = OrderType.LIMIT
    rows[:, c.C_TIF] = TimeInForce.GTC
    return Workload(
        name="insert_heavy",
        description="Liquibook perf test: alternating limit orders around mid, ~half trade",
        specs=(instrument_spec(0),),
        prefill=rows[:0],
        commands=rows,
        max_orders=n + 1,
        accounts=1_000,
        stats={"mix": {"gtc": 1.0}},
    )


def probe_commands() -> np.ndarray:
    """One command of each kind (and the main order variants) on instrument 0, so that a
    single pass compiles every path of a book's kernel."""
    buy, sell, gtc, ioc = Side.BUY, Side.SELL, TimeInForce.GTC, TimeInForce.IOC
    rows = [
        _new_row(1, 0, 1, 1, buy, MID, 10, gtc),
        _new_row(2, 0, 2, 2, sell, MID + 5, 10, gtc),
        _new_row(3, 0, 3, 3, sell, MID, 4, ioc),  # trades
        _new_row(4, 0, 4, 4, buy, MID + 5, 20, TimeInForce.FOK),  # killed: not enough
        _cancel_row(5, 0, 2, 2),
        _replace_row(6, 0, 1, 1, MID - 1, 10),
        _replace_row(7, 0, 99, 1, MID, 10),  # rejected: unknown order
        _new_row(8, 0, 5, 5, buy, MID - 2, 10, gtc),
        [9, 9, BookCommandKind.MASS_CANCEL, -1, 0, 5] + [0] * 9,
        [10, 10, BookCommandKind.CLOCK_TICK] + [0] * 12,
        _new_row(11, 0, 6, 6, sell, 0, 10, gtc),  # rejected: price out of range
    ]
    market = _new_row(12, 0, 7, 7, sell, PRICE_MIN, 3, ioc)
    market[c.C_ORDER_TYPE] = OrderType.MARKET
    rows.append(market)
    iceberg = _new_row(13, 0, 8, 8, sell, MID + 3, 30, gtc)
    iceberg[c.C_DISPLAY_QTY] = 10
    rows.append(iceberg)
    gtd = _new_row(14, 0, 9, 9, sell, MID + 4, 30, TimeInForce.GTD)
    gtd[c.C_EXPIRE_TS] = 20
    rows.append(gtd)
    rows.append([21, 21, BookCommandKind.CLOCK_TICK] + [0] * 12)  # expires the GTD order
    return np.array(rows, dtype=np.int64)
