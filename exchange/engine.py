"""The engine of one shard: sequencer, journal, core, snapshots and recovery together.

``submit`` is the flow of DESIGN "The flow of one order" from the sequencer on: the
batch is stamped (sequence numbers and one timestamp, the only clock read), appended to
the journal, and only then run through the core and handed to subscribers, so every
event that leaves the engine is backed by a journaled command (ack after journal).
``Engine.open`` recovers: the newest intact snapshot, then the journal after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from exchange.core import ExchangeCore
from exchange.cpu_pinning import core_cpu, pin_helper
from exchange.event_log import EventLog
from exchange.ids import AccountId, InstrumentId, OrderId
from exchange.journal import FsyncPolicy, Journal
from exchange.journal.checked_read import checked_rows
from exchange.prefetch import prefetch
from exchange.queries import AssetBalance, OpenOrder, Reservations
from exchange.snapshots import newest_valid, write_snapshot
from matching import codes as mc
from matching.spec import BookConfig
from risk.codes import InstrumentState
from risk.config import RiskConfig

log = logging.getLogger(__name__)

GENESIS = "genesis.json"
# Replay runs the core on chunks of a couple of live batches: their commands and events
# stay in the core's cache beside the book (64K-row chunks ran it about a third slower).
REPLAY_CHUNK = 8192
# Chunks read ahead: more than a segment holds (~62), so the reader checks the next
# segment while the core runs this one instead of waiting for the core to drain it.
REPLAY_READ_AHEAD = 128
INITIAL_ORDERS = 1 << 16
PIPELINE_MIN_ROWS = 256  # smaller batches journal first: a thread hand-off costs more
Subscriber = Callable[[np.ndarray], None]


def event_stream_hasher() -> hashlib._Hash:
    """The event-stream hash: SHA-256 over every event row's bytes, in order. SHA-256
    because replay hashes in a second thread beside the core and, with the CPU's SHA
    extensions, it runs about twice as fast as blake2b."""
    return hashlib.sha256()


class EngineHalted(RuntimeError):
    """The journal could not record a batch the core ran: restart to recover."""


class EngineConfig(BaseModel):
    """What a journal is written under; kept beside it as ``genesis.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    risk: RiskConfig = RiskConfig()
    max_orders: int = Field(default=1 << 24, gt=0)
    max_accounts: int = Field(default=1 << 24, gt=0)
    fsync: Literal["batch", "strict"] = "batch"
    snapshot_every: int = Field(default=1_000_000, gt=0)  # commands between snapshots
    snapshots_kept: int = Field(default=3, gt=0)

    def book_config(self) -> BookConfig:
        """Pools start at an exchange's size (64K orders, about 10 MiB of arena), so a busy
        engine or a replay does not re-lay the arena out at every doubling on the way."""
        return BookConfig(
            max_orders=self.max_orders,
            max_accounts=self.max_accounts,
            initial_orders=min(INITIAL_ORDERS, self.max_orders),
        )

    def replay_identity(self) -> dict:
        """The part that decides what a journal means (fsync and snapshots do not)."""
        return self.model_dump(mode="json", include={"risk", "max_orders", "max_accounts"})


def load_genesis(directory: Path) -> EngineConfig | None:
    path = directory / GENESIS
    if not path.exists():
        return None
    return EngineConfig.model_validate_json(path.read_text())


class Sequencer:
    """Numbers and timestamps commands: the one place in the engine that reads a clock.

    Timestamps never go backwards, even if the wall clock does.
    """

    def __init__(self, journal: Journal, clock: Callable[[], int], last_ts: int) -> None:
        self._journal = journal
        self._clock = clock
        self.last_ts = last_ts

    def stamp(self, rows: np.ndarray) -> tuple[int, int]:
        """Number and time ``rows`` in place with what the journal will record; returns the
        (first, last) sequence numbers. ``journal`` must follow before anything leaves."""
        self.last_ts = max(int(self._clock()), self.last_ts)
        rows[:, mc.C_TS] = self.last_ts
        first = self._journal.last_seq + 1
        rows[:, mc.C_SEQ] = np.arange(first, first + len(rows), dtype=np.int64)
        return first, first + len(rows) - 1

    def journal(self, rows: np.ndarray) -> None:
        self._journal.append_rows(rows, stamped=True)


@dataclass
class Recovery:
    snapshot_seq: int
    replayed: int
    seconds: float


class Engine:
    """One shard's single writer: sequencer, journal, core, event log and subscribers."""

    config: EngineConfig
    snapshot_dir: Path
    journal: Journal
    events_dir: Path
    event_log: EventLog
    core: ExchangeCore
    recovery: Recovery
    sequencer: Sequencer
    last_seq: int
    _subscribers: list[Subscriber]
    _event_hash: hashlib._Hash | None
    _journal_thread: ThreadPoolExecutor
    _halted: BaseException | None
    _snapshot_seq: int

    def __init__(self) -> None:
        raise TypeError("use Engine.open(data_dir)")

    @classmethod
    def open(
        cls,
        data_dir: str | Path,
        config: EngineConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
        *,
        track_event_hash: bool = False,
    ) -> Engine:
        """Open (or create) the engine in ``data_dir`` and recover its state."""
        self = object.__new__(cls)
        root = Path(data_dir)
        journal_dir = root / "journal"
        journal_dir.mkdir(parents=True, exist_ok=True)
        stored = load_genesis(journal_dir)
        if stored is None:
            config = config or EngineConfig()
            (journal_dir / GENESIS).write_text(config.model_dump_json(indent=2))
        elif config is None:
            config = stored
        elif config.replay_identity() != stored.replay_identity():
            raise ValueError(
                f"{journal_dir} was written under a different configuration; "
                "risk and capacity settings cannot change under an existing journal"
            )
        self.config = config
        self.snapshot_dir = root / "snapshots"
        policy = FsyncPolicy.STRICT if config.fsync == "strict" else FsyncPolicy.BATCH
        # The newest snapshot is read, checked and decoded in a second thread while the
        # journal's scan runs here (both release the GIL); ``_recover`` uses it only if the
        # journal reaches it, as it nearly always does.
        with ThreadPoolExecutor(1, thread_name_prefix="cx-snapshot-load") as loader:
            newest = loader.submit(self._load_snapshot, None)
            self.journal = Journal.open(journal_dir, policy)
            self.events_dir = root / "events"
            self.event_log = EventLog.open(self.events_dir, writable=True)
            self._subscribers = []
            self._event_hash = event_stream_hasher() if track_event_hash else None
            self.recovery = self._recover(newest)
        self._journal_thread = ThreadPoolExecutor(1, thread_name_prefix="cx-journal")  # + events
        self._halted = None
        self.sequencer = Sequencer(self.journal, clock, self.core.last_now())
        return self

    def _load_snapshot(self, at_most: int | None) -> tuple[int, ExchangeCore] | None:
        """The newest intact snapshot (not after ``at_most``), decoded into a core."""
        snap = newest_valid(self.snapshot_dir, at_most=at_most)
        if snap is None:
            return None
        seq, payload = snap
        return seq, ExchangeCore.from_bytes(payload, self.config.risk, self.config.book_config())

    def _recover(self, newest: Future[tuple[int, ExchangeCore] | None]) -> Recovery:
        """``newest`` is the newest snapshot, loaded while the journal was scanned."""
        started = time.perf_counter()
        last = self.journal.last_seq
        if self.event_log.last_seq > last:
            log.warning("event log is ahead of the journal (%d > %d): cut back",
                        self.event_log.last_seq, last)  # fmt: skip
            self.event_log.truncate_after(last)
        # Start early enough that the event log gets every command's events.
        at_most = min(last, self.event_log.last_seq)
        try:
            loaded = newest.result()
        except Exception:  # a snapshot beyond ``at_most`` may fail: it would not be used
            loaded = None
        if loaded is None or loaded[0] > at_most:
            loaded = self._load_snapshot(at_most)
        if loaded is None:
            snap_seq, self.core = 0, ExchangeCore(self.config.risk, self.config.book_config())
        else:
            snap_seq, self.core = loaded
        if self._event_hash is not None and snap_seq:
            raise ValueError("the event-stream hash needs a replay from the start of the journal")
        replayed = 0
        for rows in prefetch(self.journal.read_rows(snap_seq + 1)):
            events = self.core.process(rows)
            self._absorb(events)
            self._log_events(events, rows)
            replayed += len(rows)
        self.last_seq = last
        self._snapshot_seq = snap_seq
        took = time.perf_counter() - started
        log.info("recovered to seq %d: snapshot %d + %d journaled commands in %.3f s",
                 last, snap_seq, replayed, took)  # fmt: skip
        return Recovery(snap_seq, replayed, took)

    # -- the flow ----------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """Called with each batch's events, in order, after the batch is journaled."""
        self._subscribers.append(subscriber)

    def submit(self, commands: np.ndarray) -> np.ndarray:
        """Sequence, journal and run a batch of command rows; returns their events.

        A large batch is journaled in a second thread while the core runs it (both release
        the GIL), as LMAX's journaller and business logic run side by side; its events
        leave only once the journal write has returned (ack after journal). The same thread
        then appends them to the event log, in order, while the next batch runs. If a write
        fails, the journal may end in a partial record and the core may have run commands
        the journal lacks, so the engine stops: this and every later call raise
        ``EngineHalted``, and a restart recovers from what the journal holds.
        """
        if self._halted is not None:
            raise EngineHalted("the engine stopped after a journal failure") from self._halted
        rows = np.array(commands, dtype=np.int64, ndmin=2)
        if rows.ndim != 2 or rows.shape[1] != mc.N_COMMAND_FIELDS or len(rows) == 0:
            raise ValueError(f"commands must have shape (n >= 1, {mc.N_COMMAND_FIELDS})")
        _, last = self.sequencer.stamp(rows)
        if len(rows) < PIPELINE_MIN_ROWS:
            self._journal(rows)
            events = self.core.process(rows)
        else:
            journaled = self._journal_thread.submit(self._journal, rows)
            try:
                events = self.core.process(rows)
            finally:
                journaled.result()
        self.last_seq = last
        self._absorb(events)
        times = ((last, int(rows[0, mc.C_TS])),)  # the sequencer stamps one ts per batch
        self._journal_thread.submit(self._append_events, events, last, times)  # in order
        for subscriber in self._subscribers:
            subscriber(events)
        if self.last_seq - self._snapshot_seq >= self.config.snapshot_every:
            self.snapshot()
        return events

    def _absorb(self, events: np.ndarray) -> None:
        if self._event_hash is not None:
            self._event_hash.update(np.ascontiguousarray(events).tobytes())

    def _journal(self, rows: np.ndarray) -> None:
        """A failed write may leave part of a record behind: nothing may follow it."""
        try:
            self.sequencer.journal(rows)
        except BaseException as exc:
            self._halted = exc
            raise EngineHalted("journal write failed; the engine stopped") from exc

    def _append_events(
        self, events: np.ndarray, last_seq: int, times: tuple[tuple[int, int], ...]
    ) -> None:
        """A gap in the event log would hide events from projections: stop instead; the
        restart refills it from the journal."""
        if self._halted is not None:
            return
        try:
            self.event_log.append(events, last_seq, times)
        except BaseException as exc:
            log.exception("event log write failed; the engine stops")
            self._halted = exc

    def _log_events(self, events: np.ndarray, rows: np.ndarray) -> None:
        """Append what the event log does not have yet (recovery re-creates its tail)."""
        have = self.event_log.last_seq
        rows = rows[rows[:, mc.C_SEQ] > have]
        if not len(rows):
            return
        if len(events) and events[0, mc.E_SEQ] <= have:
            events = events[events[:, mc.E_SEQ] > have]
        ts = rows[:, mc.C_TS]
        ends = np.flatnonzero(np.append(ts[1:] != ts[:-1], True))  # last row of each run
        times = [(int(rows[i, mc.C_SEQ]), int(ts[i])) for i in ends]
        self.event_log.append(events, int(rows[-1, mc.C_SEQ]), times)

    def idle(self) -> None:
        """Call when there is nothing to submit: group commit syncs within its interval."""
        self.journal.tick()

    def snapshot(self) -> Path:
        """Write a snapshot of everything up to ``last_seq`` (journal synced first)."""
        self.journal.sync()
        path = write_snapshot(
            self.snapshot_dir, self.last_seq, self.core.to_bytes(), self.config.snapshots_kept
        )
        self._snapshot_seq = self.last_seq
        return path

    @property
    def event_hash(self) -> str:
        if self._event_hash is None:
            raise ValueError("open the engine with track_event_hash=True")
        return self._event_hash.hexdigest()

    def state_hash(self) -> str:
        return self.core.state_hash()

    # -- queries: read-only answers as of the last batch, from the thread that submits ------

    def instrument_status(self, instrument: InstrumentId) -> InstrumentState | None:
        """The instrument's trading status; None if it was never listed."""
        return self.core.instrument_status(instrument)

    def account_open(self, account: AccountId) -> bool:
        return self.core.account_open(account)

    def balances(self, account: AccountId) -> tuple[AssetBalance, ...] | None:
        """Each configured asset of the account, by asset id: total, reserved (collateral
        for open buys) and available (what a withdrawal would be granted now). None if the
        account is not open."""
        return self.core.balances(account)

    def reservations(self, account: AccountId) -> Reservations | None:
        """What the account's open orders hold back: quote units for buys, inventory per
        instrument for sells, with its positions. None if the account is not open."""
        return self.core.reservations(account)

    def open_orders(
        self, account: AccountId, *, instrument: InstrumentId | None = None
    ) -> tuple[OpenOrder, ...]:
        """The account's resting orders, on one instrument or on all, by order id."""
        return self.core.account_orders(account, instrument)

    def order(self, order_id: OrderId) -> OpenOrder | None:
        """One resting order; None if the id is unknown or the order no longer rests."""
        return self.core.order(order_id)

    def close(self) -> None:
        self._journal_thread.shutdown()
        try:
            self.journal.close()
        finally:
            self.event_log.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ReplayResult:
    commands: int
    state_hash: str
    event_hash: str
    events: int
    seconds: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def replay(journal_dir: str | Path, config: EngineConfig | None = None) -> ReplayResult:
    """Re-run a whole journal from genesis into a fresh core; nothing is written.

    It takes no lock, so it can replay the journal of a running engine up to its last
    complete batch. A journal damaged before its tail raises ``JournalCorrupt`` (after
    running what comes before the damage, which is checked).
    """
    journal_dir = Path(journal_dir)
    config = config or load_genesis(journal_dir) or EngineConfig()
    core = ExchangeCore(config.risk, config.book_config())
    h = event_stream_hasher()
    commands = events = 0
    started = time.perf_counter()
    # The journal is read and checked ahead in one thread (one pass: CRCs and the hash
    # chain as each segment is read) and the event hash runs in another (hashlib releases
    # the GIL), so the core is the only thing on this one, and it has a CPU to itself.
    hashed = []
    with (
        core_cpu() as helper_cpus,
        ThreadPoolExecutor(
            1, "cx-replay-hash", initializer=pin_helper, initargs=(helper_cpus,)
        ) as hasher,
    ):
        reader = checked_rows(journal_dir, REPLAY_CHUNK)
        ahead = prefetch(reader, REPLAY_READ_AHEAD, setup=lambda: pin_helper(helper_cpus))
        for rows in ahead:
            ev = np.ascontiguousarray(core.process(rows))
            hashed.append(hasher.submit(h.update, ev))  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+; in order: one worker
            commands += len(rows)
            events += len(ev)
    for done in hashed:
        done.result()  # re-raises a failure of the hashing thread
    took = time.perf_counter() - started
    return ReplayResult(commands, core.state_hash(), h.hexdigest(), events, took)
