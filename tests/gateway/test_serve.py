"""``cx serve`` end to end: the whole exchange in one process on real servers, killed with
SIGKILL under demo traffic and restarted, then stopped cleanly.

Each part is checked where it lands, not through the service's own report: trades in the
Postgres ledger, book updates in Redis, prices on the local chain's status, the engine's
recovery. Only the embedded Solana runtime and oracle run inside the served process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from servers import RUN_PREFIX, delete_matching

from exchange.engine import Engine

STARTUP_S = 300  # a cold start compiles the engine (minutes on a loaded 2-core machine)
STOP_S = 60
# ``python -m cx`` from the repository root: the code under test, installed or not.
CX = [sys.executable, "-m", "cx"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, var: Path, env: dict[str, str]) -> None:
        self.var, self.env, self.port = var, env, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.groups: list[int] = []  # every process group started, stopped by ``close``

    def start(self) -> None:
        self.log_path = self.var.parent / f"serve-{self.port}.log"
        cmd = [*CX, "serve", "--var", str(self.var), "--port", str(self.port), "--demo-traffic"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: the server and its children
            )  # fmt: skip
        self.groups.append(self.proc.pid)
        self.wait_for(lambda s: True, "health")

    def status(self) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/status", timeout=5)
        r.raise_for_status()
        return r.json()

    def wait_for(self, ok: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + STARTUP_S
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "cx serve exited"
            try:
                last = self.status()
                if ok(last):
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}: {last}")

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=STOP_S)

    def close(self) -> None:
        """SIGKILL every process group this test started (a server left running, the
        embedded Solana node of a killed one) and reap the server."""
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_S)


@pytest.fixture
def served(tmp_path: Path, fresh_pg_url: str, redis_url: str) -> Iterator[Served]:
    prefix = f"{RUN_PREFIX}:serve:{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "CX_DATABASE_URL": fresh_pg_url,
        "CX_REDIS_URL": redis_url,
        "CX_REDIS_PREFIX": prefix,
        "CX_RECONCILE_EVERY_S": "2",
        "CX_SETTLEMENT_AUTHORITY": str(tmp_path / "keys" / "authority.json"),
    }
    env.pop("CX_SOLANA_RPC_URL", None)
    env.pop("CX_PYTH_SOURCE", None)
    s = Served(tmp_path / "var", env)
    try:
        yield s
    finally:  # also when the run is interrupted: pytest tears fixtures down on Ctrl-C
        try:
            s.close()
        finally:
            delete_matching(redis_url, f"{prefix}:*")


def ledger_value(url: str, query: str) -> Any:
    async def fetch() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def trades_in_ledger(url: str) -> int:
    return ledger_value(url, "SELECT count(*) FROM trades")


def test_the_whole_exchange_survives_sigkill_and_stops_cleanly(
    served: Served, fresh_pg_url: str, redis_url: str
) -> None:
    served.start()
    first = served.wait_for(
        lambda s: (
            s["ledger"]["cursor"] > 0
            and s["market_data"]["updates_published"] > 0
            and "SOL" in s["oracle"]
            and s["chain"]["reconciled"] is True
        ),
        "trading, projections and a clean reconciliation",
    )
    assert first["oracle"]["SOL"]["label"] == "SIMULATED"
    # The configured settlement key signs (it used to be replaced by the data directory's).
    assert Path(served.env["CX_SETTLEMENT_AUTHORITY"]).is_file()
    assert not (served.var / "settlement-authority.json").exists()
    assert first["engine"]["instruments"] == 32  # 2 resources x 2 regions x (spot + 7 days)
    served.wait_for(lambda s: trades_in_ledger(fresh_pg_url) > 0, "a trade in the ledger")
    served.wait_for(
        lambda s: ledger_value(fresh_pg_url, "SELECT count(name) FROM instruments") == 32,
        "instrument names in the ledger",
    )
    assert ledger_value(fresh_pg_url, "SELECT min(name) FROM instruments").startswith("A100-80G.")
    r = redis.Redis.from_url(redis_url)
    try:
        prefix = served.env["CX_REDIS_PREFIX"]
        assert any(r.scan_iter(match=f"{prefix}:book:*", count=1000))
    finally:
        r.close()

    acked = served.status()["engine"]["last_seq"]
    assert served.kill(signal.SIGKILL) == -signal.SIGKILL
    served.start()  # recovery: engine from its journal, projections from their cursors
    after = served.wait_for(
        lambda s: (
            s["engine"]["last_seq"] > acked
            and s["ledger"]["cursor"] >= acked
            and s["chain"]["reconciled"] is True
        ),  # reconciled by the new process
        "recovery past the acknowledged sequence, ledger and chain caught up and agreeing",
    )
    assert after["restarts"] == {}
    # SIGTERM: uvicorn shuts the application down, then re-raises the signal as its status.
    assert served.kill(signal.SIGTERM) == -signal.SIGTERM
    assert b"Application shutdown complete" in served.log_path.read_bytes()
    with Engine.open(served.var / "engine") as engine:  # closed cleanly: journal unlocked
        assert engine.last_seq >= after["engine"]["last_seq"]
        assert engine.recovery.replayed == engine.last_seq  # nothing lost across both stops
