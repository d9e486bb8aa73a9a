"""Snapshots of the whole core, written atomically, found again after a crash.

A snapshot file is ``magic | seq (u64) | length (u64) | blake2b-256 | payload`` named by
the last sequence number it includes. It is written to a temporary name, fsynced and
renamed, so a crash leaves either the old set or the new file complete; a file that does
not check out is skipped (and reported), and recovery uses the newest valid one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"CXSNAP01"
HEAD = struct.Struct("<8sQQ32s")
SUFFIX = ".snap"
_NAME = re.compile(r"^(\d{20})\.snap$")


def _digest(seq: int, payload: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    h.update(seq.to_bytes(8, "little"))
    h.update(payload)
    return h.digest()


def write_snapshot(directory: Path, seq: int, payload: bytes, keep: int = 3) -> Path:
    """Write the snapshot including everything up to ``seq``; keep the newest ``keep``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{seq:020d}{SUFFIX}"
    tmp = directory / f".{path.name}.tmp"
    with open(tmp, "wb") as f:
        f.write(HEAD.pack(MAGIC, seq, len(payload), _digest(seq, payload)))
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for old in list_snapshots(directory)[:-keep]:
        old[1].unlink(missing_ok=True)
    return path


def list_snapshots(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m[1]), directory / m[0]) for m in map(_NAME.match, os.listdir(directory)) if m]
    return sorted(found)


def read_snapshot(path: Path) -> tuple[int, bytes] | None:
    """``(seq, payload)`` if the file is complete and intact, else None."""
    data = path.read_bytes()
    if len(data) < HEAD.size:
        return None
    magic, seq, length, digest = HEAD.unpack_from(data)
    payload = data[HEAD.size :]
    if magic != MAGIC or length != len(payload) or _digest(seq, payload) != digest:
        return None
    return seq, payload


def newest_valid(directory: Path, at_most: int | None = None) -> tuple[int, bytes] | None:
    """The newest intact snapshot (not after ``at_most``), skipping damaged ones."""
    for seq, path in reversed(list_snapshots(directory)):
        if at_most is not None and seq > at_most:
            log.warning("snapshot %s is ahead of the journal (seq %d); skipped", path, at_most)
            continue
        got = read_snapshot(path)
        if got is not None:
            return got
        log.warning("snapshot %s is damaged; skipped", path)
    return None
