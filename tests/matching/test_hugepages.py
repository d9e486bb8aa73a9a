"""``matching.hugepages.zeros`` must be ``np.zeros`` in every way a kernel can see."""

from __future__ import annotations

import numpy as np
import pytest

from matching import hugepages


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [(10, np.int64), ((3, 7), np.int64), (1 << 19, np.int64), ((1 << 17, 7), np.int64),
     ((1 << 20,), np.uint8), (0, np.int64)],
)  # fmt: skip
def test_zeros_is_np_zeros(shape, dtype) -> None:
    a = hugepages.zeros(shape, dtype)
    b = np.zeros(shape, dtype)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert not a.any()
    a.reshape(-1)[::997] = 5
    assert int(a.reshape(-1)[::997].sum()) == 5 * len(range(0, a.size, 997))


def test_big_arrays_start_on_a_huge_page_and_do_not_share_memory() -> None:
    a = hugepages.zeros((1 << 18, 8))
    b = hugepages.zeros((1 << 18, 8))
    if hugepages._MADVISE is not None:
        assert a.ctypes.data % hugepages.HUGE_PAGE == 0
    a[:] = 1
    assert not b.any()
    assert not np.shares_memory(a, b)


def test_memory_outlives_the_name_it_was_created_under() -> None:
    view = hugepages.zeros(1 << 20)[10:20]
    view[:] = np.arange(10)
    assert view.tolist() == list(range(10))
