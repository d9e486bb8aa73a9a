"""The bytes of the journal on disk: records, batches, the hash chain and segment files.

A record is ``header | crc | payload``: header = magic ``b"CJ"``, version, kind, payload
length (u32), sequence number (u64), little-endian, 16 bytes; then the CRC32C (u32) of the
header and payload. Every record carries its own length so a reader can frame the file
without an index, and its own sequence number so a gap or a duplicate is visible.

A batch is one or more DATA records followed by a TRAILER record whose ``seq`` is the last
sequence number of the batch and whose payload is ``count (u32) | hash (32 bytes)``, where
hash = SHA-256(previous batch hash || bytes of the batch's DATA records). The genesis
"previous hash" is 32 zero bytes. Chaining batches rather than records keeps the hashing
cost per group commit, and the head hash is what settlement anchors on chain. SHA-256
because anyone verifying an anchored head has it everywhere (Solana included), and CPUs
with SHA extensions hash it about twice as fast as blake2b (``chain_hasher``).

Segments are files named by their first sequence number. Reading the bytes back is
``framing`` (compiled) and ``scan``; ``reference`` is the same check in plain Python.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path

from exchange.journal.crc32c import crc32c, crc32c_many

MAGIC = b"CJ"
VERSION = 1
KIND_DATA = 0
KIND_TRAILER = 1
HEAD = struct.Struct("<2sBBIQ")  # magic, version, kind, payload length, seq
CRC = struct.Struct("<I")
TRAILER = struct.Struct("<I32s")  # record count, batch hash
HEADER_SIZE = HEAD.size + CRC.size  # 20
HASH_SIZE = 32
GENESIS_HASH = bytes(HASH_SIZE)
SEGMENT_SUFFIX = ".cxj"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.cxj$")


class JournalCorrupt(Exception):
    """The journal is damaged somewhere other than its tail; it must not be started on.

    Silently dropping good-looking data after a damaged record would rewrite history that
    was acknowledged, so the operator has to look (``cx verify``) and decide.
    """

    def __init__(self, message: str, path: Path | None = None, offset: int | None = None):
        where = f"{path} at offset {offset}: " if path is not None else ""
        super().__init__(where + message)
        self.path = path
        self.offset = offset


def segment_name(first_seq: int) -> str:
    """Segments are named by their first sequence number, so they sort by name."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """(first sequence number, path) of every segment file in ``directory``, in order."""
    found = []
    for entry in os.scandir(directory):
        m = _SEGMENT_NAME.match(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def chain_hasher(prev_hash: bytes) -> hashlib._Hash:
    """The running hash of one batch: feed it the batch's DATA record bytes."""
    return hashlib.sha256(prev_hash)


def batch_hash(prev_hash: bytes, data_records: bytes) -> bytes:
    h = chain_hasher(prev_hash)
    h.update(data_records)
    return h.digest()


def encode_batch(
    first_seq: int, payloads: Sequence[bytes], prev_hash: bytes
) -> tuple[bytes, bytes]:
    """The bytes of one batch (DATA records then TRAILER) and its chained hash."""
    heads = [
        HEAD.pack(MAGIC, VERSION, KIND_DATA, len(p), first_seq + i) for i, p in enumerate(payloads)
    ]
    crcs = crc32c_many([h + p for h, p in zip(heads, payloads, strict=True)])
    data = b"".join(h + CRC.pack(c) + p for h, c, p in zip(heads, crcs, payloads, strict=True))
    new_hash = batch_hash(prev_hash, data)
    last_seq = first_seq + len(payloads) - 1
    body = TRAILER.pack(len(payloads), new_hash)
    head = HEAD.pack(MAGIC, VERSION, KIND_TRAILER, len(body), last_seq)
    return data + head + CRC.pack(crc32c(head + body)) + body, new_hash
