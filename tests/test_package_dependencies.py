"""Dependencies between our packages point one way (docs/architecture.md).

The CLI package ``cx`` is the composition root: it may import every package and none
imports it. Nothing below it imports ``gateway``. ``matching`` imports nothing of ours
(tests/matching/test_imports.py checks its third-party imports too).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = {"matching", "risk", "exchange"}
ALLOWED: dict[str, set[str]] = {
    "matching": set(),
    "risk": {"matching"},
    "exchange": {"risk", "matching"},
    "settlement": CORE,
    "feeds": CORE,
    "gateway": CORE | {"settlement", "feeds"},
    "sdk": set(),
    "bots": CORE | {"sdk"},
    "benchmarks": CORE | {"settlement", "feeds"},
    "cx": CORE | {"settlement", "feeds", "gateway", "bots", "sdk"},
}


def imported_packages(path: Path, own: str) -> set[str]:
    """Our top-level packages that one file imports, anywhere in it (lazy imports too)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            roots.add((node.module or "").split(".")[0])
    return (roots & set(ALLOWED)) - {own}


def violations(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            bad = imported_packages(path, package) - allowed
            if bad:
                found[str(path.relative_to(root))] = sorted(bad)
    return found


def test_packages_import_only_what_they_may() -> None:
    assert (ROOT / "cx").is_dir() and (ROOT / "gateway").is_dir()
    assert violations(ROOT) == {}


def test_the_allowed_graph_has_no_cycle() -> None:
    order: list[str] = []
    pending = dict(ALLOWED)
    while pending:
        ready = [p for p, deps in pending.items() if deps <= set(order)]
        assert ready, f"a cycle among {sorted(pending)}"
        order += sorted(ready)
        for p in ready:
            del pending[p]
    assert order[0] == "matching"
    assert not any("cx" in deps for deps in ALLOWED.values()), "nothing imports the CLI package"
    assert [p for p, deps in ALLOWED.items() if "gateway" in deps] == ["cx"]


def test_the_check_notices_a_forbidden_import(tmp_path: Path) -> None:
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange" / "bad.py").write_text(
        "def f():\n    from gateway import app\n    import settlement.db\n"
    )
    assert violations(tmp_path) == {"exchange/bad.py": ["gateway", "settlement"]}
