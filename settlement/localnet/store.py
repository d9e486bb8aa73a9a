"""Chain state on disk: a snapshot (written atomically) plus a log of change records.

Rewriting every account and signature each second would not scale with the history, so
changes are appended to ``chain.wal`` as checksummed records (a torn last record is
ignored) and folded into ``chain.snapshot`` (write, fsync, rename) when the log grows,
on start and on stop. The snapshot says whether the node stopped cleanly; after a crash
the loader knows that blockhashes it handed out may be lost.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import orjson

SNAPSHOT = "chain.snapshot"
WAL = "chain.wal"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<II")  # payload length, crc32 of payload


class StoreError(RuntimeError):
    """The state directory holds something this version cannot read."""


class ChainStore:
    """Reads and writes one state directory; calls come from a single thread at a time."""

    def __init__(self, state_dir: str | Path) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = self.dir / SNAPSHOT
        self.wal_path = self.dir / WAL
        self._wal: Any = None
        self.wal_bytes = 0
        self.snapshot_bytes = 0
        self._seq = 0

    def load(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The snapshot (or None on first start) and the change records written after it."""
        snapshot = None
        if self.snapshot_path.exists():
            raw = self.snapshot_path.read_bytes()
            snapshot = orjson.loads(raw)
            if snapshot.get("version") != FORMAT_VERSION:
                raise StoreError(f"{self.snapshot_path}: unknown format {snapshot.get('version')}")
            self._seq = snapshot["seq"]
            self.snapshot_bytes = len(raw)
        records = []
        for record in self._read_wal():
            if record["seq"] > self._seq:
                records.append(record)
                self._seq = record["seq"]
        return snapshot, records

    def _read_wal(self) -> list[dict[str, Any]]:
        if not self.wal_path.exists():
            return []
        data = self.wal_path.read_bytes()
        records = []
        at = 0
        while at + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, at)
            payload = data[at + _HEADER.size : at + _HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break  # torn tail: the record being written when the process died
            records.append(orjson.loads(payload))
            at += _HEADER.size + length
        if at < len(data):
            os.truncate(self.wal_path, at)  # later appends must follow the last good record
        self.wal_bytes = at
        return records

    def write_snapshot(self, state: dict[str, Any], clean: bool) -> None:
        """Atomically replace the snapshot with ``state`` and start an empty change log."""
        self._seq += 1
        body = orjson.dumps({**state, "version": FORMAT_VERSION, "seq": self._seq, "clean": clean})
        tmp = self.snapshot_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
        self._fsync_dir()
        self.snapshot_bytes = len(body)
        # Records up to seq are now in the snapshot; the loader skips any that survive.
        self._close_wal()
        with open(self.wal_path, "wb") as f:
            os.fsync(f.fileno())
        self.wal_bytes = 0

    def append(self, record: dict[str, Any]) -> None:
        """Durably append one change record."""
        self._seq += 1
        payload = orjson.dumps({**record, "seq": self._seq})
        if self._wal is None:
            self._wal = open(self.wal_path, "ab")  # noqa: SIM115 - kept open between appends
        self._wal.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._wal.flush()
        os.fsync(self._wal.fileno())
        self.wal_bytes += _HEADER.size + len(payload)

    def wants_compaction(self) -> bool:
        """Fold the log into the snapshot once it outgrows it (and a few MB)."""
        return self.wal_bytes > max(4 << 20, self.snapshot_bytes)

    def close(self) -> None:
        self._close_wal()

    def _close_wal(self) -> None:
        if self._wal is not None:
            self._wal.close()
            self._wal = None

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
