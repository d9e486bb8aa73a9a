"""prefetch: same items in the same order, errors where they happened, early stop."""

from __future__ import annotations

import threading

import pytest

from exchange.prefetch import prefetch


def test_items_arrive_in_order_from_another_thread() -> None:
    producers: set[str] = set()

    def items():
        for i in range(1000):
            producers.add(threading.current_thread().name)
            yield i

    assert list(prefetch(items(), depth=3)) == list(range(1000))
    assert producers == {"cx-prefetch"}


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def items():
        yield 1
        yield 2
        raise OSError("disk")

    got = []
    with pytest.raises(OSError, match="disk"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer() -> None:
    made = []

    def items():
        for i in range(10**6):
            made.append(i)
            yield i

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert len(made) <= 5
