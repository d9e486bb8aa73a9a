"""Read ahead in a second thread while the caller works on what it already has.

Replay and recovery alternate between reading the journal (framing, CRCs, decoding: compiled
code that releases the GIL, and file reads) and running the core (which releases it too).
On two cores the two can overlap; ``prefetch`` runs the producer one or two items ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(
    items: Iterable[T], depth: int = 2, *, setup: Callable[[], None] | None = None
) -> Iterator[T]:
    """Yield ``items`` in order, produced up to ``depth`` ahead by a daemon thread.

    An exception in the producer is raised in the consumer at the point it occurred.
    Stopping early (closing the generator) stops the producer at its next item.
    ``setup`` runs first in the producer thread (``replay`` pins it to a CPU there).
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            if setup is not None:
                setup()
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_END)
        except BaseException as exc:  # handed to the consumer
            slots.put(_Failure(exc))

    worker = threading.Thread(target=produce, name="cx-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
