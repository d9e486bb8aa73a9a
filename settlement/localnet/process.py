"""LocalSolanaProcess: the same node in a child process.

LiteSVM holds the GIL while it executes a transaction (milliseconds for a batch of token
transfers), which would stall every other thread of an in-process server. A child process
keeps the exchange responsive; the interface is LocalSolana's.
"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import httpx

_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the settlement package


class LocalSolanaProcess:
    """``python -m settlement.localnet`` as a child; stop() stops it cleanly."""

    def __init__(
        self, state_dir: str | Path, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 60
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("LocalSolanaProcess is not started")
        return self._url

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("LocalSolanaProcess is not started")
        return self._proc.pid

    def start(self) -> str:
        """Start the child and return its URL once it serves."""
        if self._proc is not None:
            raise RuntimeError("LocalSolanaProcess is already started")
        cmd = [
            sys.executable,
            "-m",
            "settlement.localnet",
            "--state-dir",
            str(self.state_dir.resolve()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--exit-with-parent",
        ]
        proc = subprocess.Popen(cmd, cwd=_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        try:
            # The child prints its URL once it serves; a child that hangs must not hang us.
            ready, _, _ = select.select([proc.stdout], [], [], self.timeout)
            line = proc.stdout.readline().decode().strip() if ready else ""
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if not line.startswith("http://"):
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"local Solana node did not start within {self.timeout} s (exit code {proc.poll()})"
            )
        self._proc, self._url = proc, line
        self.port = int(line.rsplit(":", 1)[1])
        return line

    def stop(self) -> None:
        """Stop the child cleanly (it saves its state) and wait for it."""
        proc = self._proc
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # --exit-with-parent: EOF means stop
        try:
            proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._proc = None
        self._url = None

    def advance_blocks(self, n: int) -> None:
        """Close ``n`` blocks now (through the local-only ``cx_advanceBlocks`` method)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "cx_advanceBlocks", "params": [n]}
        reply = httpx.post(self.url, json=body, timeout=self.timeout).json()
        if "error" in reply:
            raise ValueError(reply["error"]["message"])

    def __enter__(self) -> LocalSolanaProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
