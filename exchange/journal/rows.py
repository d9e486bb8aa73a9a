"""Command rows in and out of the journal in bulk: one compiled call per batch.

The engine's commands are rows of an ``int64`` array with ``N_COMMAND_FIELDS`` (15)
columns, column 0 being the sequence number. A row is journaled as one DATA record whose
payload is the 14 other columns as little-endian int64 (112 bytes) and whose header carries
the sequence number, so the journal assigns it and the bytes are exactly what
``layout.encode_batch`` writes for those payloads: the on-disk format does not know about
rows, and ``Journal.read`` still returns each row's payload.

Going through ``encode_batch`` costs a ``struct.pack``, a ``bytes`` concatenation and a CRC
body per record; at a million commands per second that is the whole budget. Here numba
writes the headers, copies the payloads and computes the CRCs into one buffer, hashlib
hashes the batch in one call, and reading is the mirror image (``frame_records`` then
``decode_rows``). Lossless for every int64 value.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from exchange.journal.crc32c import TABLES, crc32c
from exchange.journal.framing import Frames, as_u8, frame_records, record_crcs
from exchange.journal.layout import (
    CRC,
    HASH_SIZE,
    HEAD,
    HEADER_SIZE,
    KIND_DATA,
    KIND_TRAILER,
    MAGIC,
    TRAILER,
    VERSION,
    chain_hasher,
)
from matching.codes import C_SEQ, N_COMMAND_FIELDS

__all__ = [
    "ROW_COLUMNS",
    "ROW_PAYLOAD_SIZE",
    "ROW_RECORD_SIZE",
    "TRAILER_RECORD_SIZE",
    "Frames",
    "check_rows",
    "decode_rows",
    "encode_rows",
    "encode_rows_array",
    "encoded_size",
    "frame_records",
]

ROW_COLUMNS = N_COMMAND_FIELDS  # 15 int64 columns, C_SEQ first
ROW_PAYLOAD_SIZE = 8 * (ROW_COLUMNS - 1)  # 112: the seq is in the header, not the payload
ROW_RECORD_SIZE = HEADER_SIZE + ROW_PAYLOAD_SIZE  # 132
TRAILER_RECORD_SIZE = HEADER_SIZE + TRAILER.size  # 56
_CRC_AT = HEAD.size  # where the CRC field starts in a record
_M0, _M1 = MAGIC[0], MAGIC[1]
assert C_SEQ == 0, "the row codec assumes the sequence number is column 0"


@njit(cache=True, nogil=True)
def _encode(tables: np.ndarray, rows: np.ndarray, first_seq: int, out: np.ndarray) -> None:
    """Write one DATA record per row of ``rows`` (uint8 view, 120 bytes per row) into ``out``."""
    n = rows.shape[0]
    for i in range(n):
        p = i * ROW_RECORD_SIZE
        out[p] = _M0
        out[p + 1] = _M1
        out[p + 2] = VERSION
        out[p + 3] = KIND_DATA
        out[p + 4] = ROW_PAYLOAD_SIZE
        out[p + 5] = 0
        out[p + 6] = 0
        out[p + 7] = 0
        seq = first_seq + i
        for k in range(8):
            out[p + 8 + k] = (seq >> (8 * k)) & 0xFF
        q = p + HEADER_SIZE
        for k in range(ROW_PAYLOAD_SIZE):
            out[q + k] = rows[i, 8 + k]
    offsets = np.arange(n) * ROW_RECORD_SIZE
    crcs = np.empty(n, dtype=np.int64)
    record_crcs(tables, out, offsets, np.full(n, ROW_PAYLOAD_SIZE), crcs)
    for i in range(n):
        p = offsets[i] + _CRC_AT
        c = crcs[i]
        for k in range(4):
            out[p + k] = (c >> (8 * k)) & 0xFF


@njit(cache=True, nogil=True)
def _decode(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Copy each record's header seq and payload into a row of ``out`` (uint8 view, 120 wide)."""
    for i in range(offsets.shape[0]):
        p = offsets[i]
        if p < 0:  # also lets LLVM drop numba's negative-index wraparound
            raise IndexError("negative record offset")
        for k in range(8):
            out[i, k] = data[p + 8 + k]
        q = p + HEADER_SIZE
        for k in range(ROW_PAYLOAD_SIZE):
            out[i, 8 + k] = data[q + k]


def check_rows(rows: np.ndarray) -> None:
    """Refuse what is not a non-empty (n, 15) int64 array, before anything is written."""
    if not isinstance(rows, np.ndarray) or rows.dtype != np.int64:
        raise TypeError(f"command rows must be an int64 numpy array, not {type(rows).__name__}")
    if rows.ndim != 2 or rows.shape[1] != ROW_COLUMNS:
        raise ValueError(f"command rows must have shape (n, {ROW_COLUMNS}), not {rows.shape}")
    if rows.shape[0] == 0:
        raise ValueError("a batch needs at least one record")


def encoded_size(rows: int) -> int:
    """Bytes of a batch of ``rows`` command rows: DATA records plus the trailer."""
    return rows * ROW_RECORD_SIZE + TRAILER_RECORD_SIZE


def encode_rows_array(
    rows: np.ndarray, first_seq: int, prev_hash: bytes, out: np.ndarray | None = None
) -> tuple[np.ndarray, bytes]:
    """``encode_rows`` into a uint8 array, so the writer can hand it to ``write`` uncopied.

    With ``out`` (uint8, at least ``encoded_size(len(rows))`` long) the batch is written
    into its start and that view is returned: a writer that reuses one buffer does not pay
    for fresh pages on every batch.
    """
    check_rows(rows)
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes")
    n = rows.shape[0]
    if first_seq < 1 or first_seq + n - 1 >= 2**63:
        raise ValueError(f"first_seq {first_seq} out of range")
    src = np.ascontiguousarray(rows, dtype="<i8").view(np.uint8)  # (n, 120), no copy if C-order
    size = encoded_size(n)
    if out is None:
        out = np.empty(size, dtype=np.uint8)
    elif out.dtype != np.uint8 or out.ndim != 1 or out.shape[0] < size:
        raise ValueError(f"out must be a uint8 array of at least {size} bytes")
    out = out[:size]
    _encode(TABLES, src, first_seq, out)
    data_end = n * ROW_RECORD_SIZE
    h = chain_hasher(prev_hash)
    h.update(out[:data_end])  # type: ignore[arg-type]  # numpy stubs: buffer protocol only on 3.12+
    new_hash = h.digest()
    body = TRAILER.pack(n, new_hash)
    head = HEAD.pack(MAGIC, VERSION, KIND_TRAILER, len(body), first_seq + n - 1)
    out[data_end:] = np.frombuffer(head + CRC.pack(crc32c(head + body)) + body, dtype=np.uint8)
    return out, new_hash


def encode_rows(rows: np.ndarray, first_seq: int, prev_hash: bytes) -> tuple[bytes, bytes]:
    """The bytes of one batch of command rows and its chained hash.

    Byte for byte ``encode_batch(first_seq, [row[1:] as <14q for row in rows], prev_hash)``;
    column 0 is ignored (the record header carries ``first_seq + i``).
    """
    out, new_hash = encode_rows_array(rows, first_seq, prev_hash)
    return out.tobytes(), new_hash


def decode_rows(
    buf: bytes | bytearray | memoryview | np.ndarray,
    frames: Frames,
    select: np.ndarray | None = None,
) -> np.ndarray:
    """The DATA records of framed ``buf`` (or the frame indices ``select``) as (n, 15) rows.

    Column 0 is each record's seq from its header. CRCs are not looked at here: check
    ``frames.crc_ok`` first. A record whose payload is not 112 bytes is not a command row
    (``append_batch`` takes any bytes), so it raises ``ValueError`` instead of being guessed at.
    """
    idx = np.flatnonzero(frames.kind == KIND_DATA) if select is None else np.asarray(select)
    if np.any(frames.kind[idx] != KIND_DATA):
        raise ValueError("only DATA records hold command rows")
    wrong = np.flatnonzero(frames.length[idx] != ROW_PAYLOAD_SIZE)
    if wrong.size:
        i = int(idx[wrong[0]])
        raise ValueError(
            f"record seq {int(frames.seq[i])} at offset {int(frames.offset[i])} has a "
            f"{int(frames.length[i])}-byte payload, not a {ROW_PAYLOAD_SIZE}-byte command row"
        )
    out = np.empty((idx.shape[0], ROW_COLUMNS), dtype="<i8")
    _decode(as_u8(buf), frames.offset[idx], out.view(np.uint8))
    return out.astype(np.int64, copy=False)
