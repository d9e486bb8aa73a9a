"""``matching`` imports nothing else of CX (DESIGN.md: dependencies point one way)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import matching

# llvmlite is numba's code generator (pinned beside it in pyproject.toml); the kernel
# uses it for numba intrinsics, so it counts as part of numba.
ALLOWED_THIRD_PARTY = {"numpy", "numba", "llvmlite", "sortedcontainers", "matching"}
OURS = {"exchange", "risk", "settlement", "feeds", "gateway", "bots", "benchmarks", "tests"}
PACKAGE_DIR = Path(matching.__file__).parent


def imported_roots(path: Path) -> set[str]:
    """Top-level names of every module a file imports, anywhere in the file."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add("matching" if node.level else (node.module or "").split(".")[0])
    return roots


def test_matching_imports_only_stdlib_numpy_numba_sortedcontainers() -> None:
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"api.py", "reference.py", "fast.py", "kernel.py"}
    allowed = set(sys.stdlib_module_names) | ALLOWED_THIRD_PARTY
    offenders = {
        f.name: sorted(imported_roots(f) - allowed) for f in files if imported_roots(f) - allowed
    }
    assert offenders == {}, f"matching must not import these: {offenders}"
    assert not OURS & allowed, "the allow-list must not let our own packages through"


def test_the_scan_would_notice_a_forbidden_import(tmp_path: Path) -> None:
    """The check above is only worth something if it can fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom exchange.engine import Engine\n")
    assert imported_roots(bad) - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY == {"exchange"}
