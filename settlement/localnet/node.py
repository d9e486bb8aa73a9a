"""LocalSolana: the embedded Solana node, served over JSON-RPC from a background thread.

The exchange talks to it exactly as to a real cluster (solana-py over HTTP). One event loop
thread owns the chain, so no locks are needed; a second thread only writes files.

Blocks: a block closes every ``block_time`` seconds, and sooner (``min_block_interval``
after the previous one) when something changed, so confirmations come quickly while a
blockhash still lives ~150 blocks. A block's changes are saved when it closes, and a
transaction is reported "confirmed" only once they are on disk: a confirmed transaction
survives a crash. After a crash (no clean stop), the chain skips ahead so that every
blockhash handed out before the crash has expired.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .blocks import MAX_PROCESSING_AGE
from .chain import Chain
from .http import MAX_BODY, HttpProtocol
from .methods import Methods
from .rpc import JsonRpc
from .store import ChainStore

log = logging.getLogger(__name__)
T = TypeVar("T")

CRASH_SKIP_BLOCKS = 2 * MAX_PROCESSING_AGE  # > blockhash lifetime + blocks a crash can lose
_MARK_EVERY_BLOCKS = 16  # save the height at least this often (crash skip must cover it)


def open_chain(store: ChainStore) -> tuple[Chain, bool]:
    """The chain saved in ``store`` (or a new one) and whether it had stopped cleanly."""
    snapshot, records = store.load()
    if snapshot is None:
        return Chain(os.urandom(32)), True
    chain = Chain(base64.b64decode(snapshot["genesis"]), snapshot["slot"], snapshot["height"])
    chain.apply(snapshot)
    for record in records:
        chain.apply(record)
    clean = bool(snapshot.get("clean")) and not records
    if not clean:
        chain.skip(CRASH_SKIP_BLOCKS)
    return chain, clean


class LocalSolana:
    """A local Solana JSON-RPC node backed by LiteSVM, its state kept under ``state_dir``."""

    def __init__(
        self,
        state_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        block_time: float = 0.4,
        min_block_interval: float = 0.05,
        max_body: int = MAX_BODY,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.block_time = block_time
        self.min_block_interval = min_block_interval
        self.max_body = max_body
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._chain: Chain | None = None
        self._store: ChainStore | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._connections: set[HttpProtocol] = set()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._fast_timer: asyncio.TimerHandle | None = None
        self._last_close = 0.0
        self._saved_height = 0

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._thread is None:
            raise RuntimeError("LocalSolana is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Load the state, serve JSON-RPC in a background thread; returns the URL."""
        if self._thread is not None:
            raise RuntimeError("LocalSolana is already started")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="localnet", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise self._failure
        log.info("local Solana node at %s (state in %s)", self.url, self.state_dir)
        return self.url

    def stop(self) -> None:
        """Stop serving and save the whole state (a clean stop)."""
        thread = self._thread
        if thread is None:
            return
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop ended already (node failed)
                loop.call_soon_threadsafe(stop_event.set)
        thread.join()
        self._thread = None
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> LocalSolana:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ test hooks
    def advance_blocks(self, n: int) -> None:
        """Close ``n`` blocks now (tests use it to expire a blockhash without waiting)."""
        if n < 1:
            raise ValueError("n must be at least 1")

        self._on_loop(lambda: self._advance_now(n))

    def _advance_now(self, n: int) -> None:
        """Close ``n`` blocks on the loop thread; the last close saves and reschedules."""
        if n > 1:
            self._need_chain().advance(n - 1)
        self._close_block()

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the node's event loop thread and return its result."""
        loop = self._loop
        if self._thread is None or loop is None:
            raise RuntimeError("LocalSolana is not started")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result()

    # ------------------------------------------------------------ the loop thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            log.exception("local Solana node failed")
            self._failure = exc
        finally:
            self._ready.set()
            loop.close()
            self._loop = None

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._store = ChainStore(self.state_dir)
        chain, clean = open_chain(self._store)
        if not clean:
            log.warning("local Solana state was not stopped cleanly; skipped ahead")
        self._chain = chain
        self._store.write_snapshot(chain.export_state(), clean=False)
        self._saved_height = chain.height
        chain.durable_slot = chain.slot - 1
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="localnet-save")
        rpc = JsonRpc(Methods(chain, self._changed, self._advance_now))
        server: asyncio.Server | None = None
        try:
            server = await loop.create_server(
                lambda: HttpProtocol(rpc.handle, self.max_body, self._connections),
                self.host,
                self.port,
            )
            self.port = server.sockets[0].getsockname()[1]
            self._last_close = time.monotonic()
            self._idle_timer = loop.call_later(self.block_time, self._close_block)
            self._ready.set()
            await self._stop_event.wait()
        finally:
            if server is not None:
                server.close()
            for conn in list(self._connections):
                if conn.transport is not None:
                    conn.transport.close()
            for timer in (self._idle_timer, self._fast_timer):
                if timer is not None:
                    timer.cancel()
            await self._final_save()

    async def _final_save(self) -> None:
        chain, store, writer = self._chain, self._store, self._writer
        assert chain is not None and store is not None and writer is not None
        state = chain.export_state()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(writer, lambda: store.write_snapshot(state, clean=True))
        finally:
            writer.shutdown(wait=True)
            store.close()

    def _need_chain(self) -> Chain:
        if self._chain is None:
            raise RuntimeError("LocalSolana is not started")
        return self._chain

    def _changed(self) -> None:
        """Something landed: close the block soon (not sooner than min_block_interval)."""
        if self._fast_timer is not None or self._loop is None:
            return
        wait = max(0.0, self._last_close + self.min_block_interval - time.monotonic())
        self._fast_timer = self._loop.call_later(wait, self._close_block)

    def _close_block(self) -> None:
        """Close the open block, save its changes, and plan the next idle close."""
        chain, loop = self._need_chain(), self._loop
        assert loop is not None
        for timer in (self._idle_timer, self._fast_timer):
            if timer is not None:
                timer.cancel()
        self._fast_timer = None
        self._last_close = time.monotonic()
        self._idle_timer = loop.call_later(self.block_time, self._close_block)
        chain.advance()
        record = chain.export_changes()
        if record is None and chain.height - self._saved_height < _MARK_EVERY_BLOCKS:
            return
        if record is None:
            record = {"slot": chain.slot, "height": chain.height, "accounts": {}}
            record.update(statuses=[], details={})
        self._save(record)

    def _save(self, record: dict[str, Any]) -> None:
        chain, store, writer, loop = self._chain, self._store, self._writer, self._loop
        assert chain is not None and store is not None and writer is not None and loop is not None
        self._saved_height = record["height"]
        record["transactionCount"] = chain.transaction_count
        closed_slot = record["slot"] - 1
        try:
            if store.wants_compaction():
                state = chain.export_state()
                job = loop.run_in_executor(writer, lambda: store.write_snapshot(state, clean=False))
            else:
                job = loop.run_in_executor(writer, store.append, record)
        except RuntimeError:  # the interpreter is exiting under a node nobody stopped
            log.warning("local Solana: exiting without stop(); block %d not saved", closed_slot)
            return

        def saved(fut: asyncio.Future[None]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                log.error("local Solana state could not be saved: %s", fut.exception())
                return
            chain.durable_slot = max(chain.durable_slot, closed_slot)

        job.add_done_callback(saved)
