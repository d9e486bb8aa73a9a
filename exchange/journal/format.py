"""The on-disk format of the journal, and the scan that checks it.

A record is ``header | crc | payload``: header = magic ``b"CJ"``, version, kind, payload
length (u32), sequence number (u64), little-endian, 16 bytes; then the CRC32C (u32) of the
header and payload. Every record carries its own length so a reader can frame the file
without an index, and its own sequence number so a gap or a duplicate is visible.

A batch is one or more DATA records followed by a TRAILER record whose ``seq`` is the last
sequence number of the batch and whose payload is ``count (u32) | hash (32 bytes)``, where
hash = blake2b-256(previous batch hash || bytes of the batch's DATA records). The genesis
"previous hash" is 32 zero bytes. Chaining batches rather than records keeps the hashing
cost per group commit, and the head hash is what settlement anchors on chain.

The scan is shared by ``Journal.open`` (which repairs a torn tail) and ``verify`` (which
only reports), so both agree on what is good, what is a torn tail and what is corruption.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
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
_RESYNC = MAGIC + bytes([VERSION])


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


def batch_hash(prev_hash: bytes, data_records: bytes) -> bytes:
    return hashlib.blake2b(prev_hash + data_records, digest_size=HASH_SIZE).digest()


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


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed record: where it is and what its header says."""

    offset: int
    kind: int
    length: int
    seq: int
    crc: int

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.length


def frame(buf: bytes, start: int = 0) -> tuple[list[Frame], int]:
    """Frame records from ``start`` until the end or the first unframeable header.

    Returns the frames and the offset where framing stopped (``len(buf)`` if clean).
    CRCs are not checked here, so that they can be checked in bulk.
    """
    frames = []
    pos, n = start, len(buf)
    while pos < n:
        if n - pos < HEADER_SIZE:
            break
        magic, version, kind, length, seq = HEAD.unpack_from(buf, pos)
        if magic != MAGIC or version != VERSION or kind not in (KIND_DATA, KIND_TRAILER):
            break
        if pos + HEADER_SIZE + length > n:
            break
        (crc,) = CRC.unpack_from(buf, pos + HEAD.size)
        frames.append(Frame(pos, kind, length, seq, crc))
        pos += HEADER_SIZE + length
    return frames, pos


def first_bad_crc(buf: bytes, frames: Sequence[Frame]) -> int | None:
    """Index of the first frame whose CRC does not match, or None."""
    bodies = [
        buf[f.offset : f.offset + HEAD.size] + buf[f.offset + HEADER_SIZE : f.end] for f in frames
    ]
    for i, (f, c) in enumerate(zip(frames, crc32c_many(bodies), strict=True)):
        if f.crc != c:
            return i
    return None


def payload(buf: bytes, f: Frame) -> bytes:
    return buf[f.offset + HEADER_SIZE : f.end]


@dataclass(slots=True)
class SegmentState:
    """What the scan learned about one segment; the writer keeps it up to date."""

    path: Path
    first_seq: int
    size: int  # bytes of complete, valid batches
    index: list[tuple[int, int]] = field(default_factory=list)  # sparse (batch first seq, offset)


INDEX_EVERY = 256 * 1024  # bytes between sparse index entries


@dataclass(frozen=True, slots=True)
class TailCut:
    """A torn or corrupt tail of the last segment: bytes from ``offset`` to ``size``."""

    path: Path
    offset: int
    size: int
    reason: str

    @property
    def cut_bytes(self) -> int:
        return self.size - self.offset


@dataclass(slots=True)
class Scan:
    segments: list[SegmentState] = field(default_factory=list)
    records: int = 0
    batches: int = 0
    last_seq: int = 0
    head_hash: bytes = GENESIS_HASH
    problem: JournalCorrupt | None = None
    tail: TailCut | None = None


def _find_later_batch(buf: bytes, damage: int, batch_first: int) -> int | None:
    """Offset of a valid record proving that good data follows the damage, or None.

    A crash tears only the batch being written, so after a torn tail there can be at most
    records of that same batch. A valid TRAILER of another batch, or any valid record after
    the damaged batch's own TRAILER, shows that the damage is in the middle of the history.
    """
    own_trailer_end = None
    pos = buf.find(_RESYNC, damage + 1)
    while pos != -1:
        rec = buf[pos : pos + HEADER_SIZE + _peek_length(buf, pos)]
        frames, _ = frame(rec)
        if not frames or first_bad_crc(rec, frames[:1]) is not None:
            pos = buf.find(_RESYNC, pos + 1)
            continue
        f = frames[0]
        if own_trailer_end is not None and pos >= own_trailer_end:
            return pos
        if f.kind == KIND_TRAILER and f.length == TRAILER.size:
            (count, _h) = TRAILER.unpack_from(rec, HEADER_SIZE)
            if f.seq - count + 1 != batch_first:
                return pos
            own_trailer_end = pos + f.end
        pos = buf.find(_RESYNC, pos + f.end)
    return None


def _peek_length(buf: bytes, pos: int) -> int:
    if len(buf) - pos < HEAD.size:
        return 0
    return HEAD.unpack_from(buf, pos)[3]


def scan(directory: Path) -> Scan:
    """Check every segment's framing, CRCs, sequence numbers and hash chain.

    Never modifies anything. A damaged or incomplete final batch of the last segment is
    reported as ``tail``; any other damage as ``problem`` (scanning stops there).
    """
    result = Scan()
    segments = list_segments(directory)
    expected = 1
    for n, (first_seq, path) in enumerate(segments):
        is_last = n == len(segments) - 1
        if first_seq != expected:
            result.problem = JournalCorrupt(
                f"segment starts at seq {first_seq}, expected {expected}", path, 0
            )
            return result
        buf = path.read_bytes()
        seg = SegmentState(path, first_seq, 0)
        result.segments.append(seg)
        frames, stop = frame(buf)
        bad = first_bad_crc(buf, frames)
        damage = stop if bad is None else frames[bad].offset
        if bad is not None:
            frames = frames[:bad]
        batch_start = 0  # offset of the current batch's first DATA record
        batch_records = 0
        last_indexed = -INDEX_EVERY
        for f in frames:
            if f.kind == KIND_DATA:
                if f.seq != expected:
                    result.problem = JournalCorrupt(
                        f"record has seq {f.seq}, expected {expected}", path, f.offset
                    )
                    return result
                expected += 1
                batch_records += 1
                continue
            if f.length != TRAILER.size or batch_records == 0 or f.seq != expected - 1:
                result.problem = JournalCorrupt("malformed batch trailer", path, f.offset)
                return result
            count, stored = TRAILER.unpack_from(buf, f.offset + HEADER_SIZE)
            computed = batch_hash(result.head_hash, buf[batch_start : f.offset])
            if count != batch_records or stored != computed:
                result.problem = JournalCorrupt(
                    "hash chain broken: trailer hash does not match the batch", path, f.offset
                )
                return result
            if batch_start - last_indexed >= INDEX_EVERY:
                seg.index.append((expected - batch_records, batch_start))
                last_indexed = batch_start
            result.head_hash = computed
            result.records += batch_records
            result.batches += 1
            result.last_seq = expected - 1
            batch_start, batch_records = f.end, 0
        seg.size = batch_start
        expected = result.last_seq + 1
        if batch_start == len(buf):
            continue
        reason = "incomplete batch (no trailer)" if damage == len(buf) else "torn or corrupt record"
        later = _find_later_batch(buf, damage, expected) if damage < len(buf) else None
        if not is_last or later is not None:
            what = "valid records follow it" if later is not None else "it is not the last segment"
            result.problem = JournalCorrupt(
                f"{reason} before the tail ({what}); refusing to start", path, damage
            )
            return result
        result.tail = TailCut(path, batch_start, len(buf), reason)
    return result
