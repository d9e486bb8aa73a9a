"""Settlement fixtures; the databases (``pg_url``, ``fresh_pg_url``) come from
``tests/conftest.py``.

- ``ledger_run``: the engine flow the ledger tests project (``ledger_flow``), run once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ledger_flow import EngineMoney


@pytest.fixture(scope="session")
def ledger_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EngineMoney]:
    """The engine flow of ``ledger_flow``, run once: its event log directory and what the
    engine held at the end."""
    import ledger_flow  # the engine: only for the tests that use it

    root = tmp_path_factory.mktemp("engine")
    money = ledger_flow.run(root)
    return root / "events", money
