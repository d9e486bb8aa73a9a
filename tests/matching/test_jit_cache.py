"""An edit to a kernel that a cached kernel compiles in takes effect in the next process.

Two modules in a temporary directory: ``a``'s cached kernel calls ``b``'s and adds a
constant imported from ``b``. numba alone keys ``a``'s cache on ``a.py`` only and would
load the stale compiled ``a`` after ``b.py`` changed; ``matching.jit_cache`` keys it on both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]

A = """
from numba import njit

import matching.jit_cache  # noqa: F401
from b import OFFSET, g


@njit(cache=True)
def f(x):
    return g(x) + OFFSET
"""

B = """
from numba import njit

OFFSET = {offset}


@njit(cache=True)
def g(x):
    return x * {factor}
"""

RUN = """
import json, a
print(json.dumps({"f": int(a.f(3)), "hits": sum(a.f.stats.cache_hits.values())}))
"""


def write_b(where: Path, factor: int, offset: int) -> None:
    (where / "b.py").write_text(B.format(factor=factor, offset=offset))


def run(where: Path, **env: str) -> dict:
    """``a.f(3)`` in a fresh interpreter, and how many of its overloads came from the cache."""
    out = subprocess.run(
        [sys.executable, "-c", RUN],
        cwd=where,
        env={**os.environ, "PYTHONPATH": f"{where}{os.pathsep}{ROOT}", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def test_an_edit_to_an_inlined_kernel_takes_effect(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(A)
    write_b(tmp_path, factor=2, offset=10)
    assert run(tmp_path) == {"f": 16, "hits": 0}  # compiled and saved
    assert run(tmp_path) == {"f": 16, "hits": 1}  # loaded from the cache
    write_b(tmp_path, factor=5, offset=10)  # the called kernel changed
    assert run(tmp_path) == {"f": 25, "hits": 0}
    write_b(tmp_path, factor=5, offset=1000)  # a constant compiled into f changed
    assert run(tmp_path) == {"f": 1015, "hits": 0}
    assert run(tmp_path) == {"f": 1015, "hits": 1}
    write_b(tmp_path, factor=2, offset=10)  # back: the first directory is still valid
    assert run(tmp_path) == {"f": 16, "hits": 1}
    assert len(list((tmp_path / "__pycache__").glob("numba-*/a.f-*.nbi"))) == 3  # a's versions


def test_numba_cache_dir_is_honoured(tmp_path: Path) -> None:
    src, cache = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    (src / "a.py").write_text(A)
    write_b(src, factor=2, offset=10)
    assert run(src, NUMBA_CACHE_DIR=str(cache)) == {"f": 16, "hits": 0}
    assert run(src, NUMBA_CACHE_DIR=str(cache)) == {"f": 16, "hits": 1}
    assert list(cache.rglob("numba-*/a.f-*.nbi"))
    assert not list(src.rglob("*.nbi"))


def test_every_module_with_cached_kernels_registers_the_locator() -> None:
    """A cached kernel decorated before ``matching.jit_cache`` is imported would be keyed on
    its own file only (stale when an inlined source changes): each such module imports it."""
    root = Path(__file__).resolve().parents[2]
    missing = [
        str(path.relative_to(root))
        for package in ("matching", "risk", "exchange", "settlement", "feeds")
        for path in sorted((root / package).rglob("*.py"))
        if "cache=True" in path.read_text()
        and path.name != "jit_cache.py"
        and "import matching.jit_cache" not in path.read_text()
    ]
    assert missing == []
