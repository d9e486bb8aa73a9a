"""The journal's bulk path: command rows encoded and decoded by numba, the compiled scan.

The bulk path must not change a byte on disk, so most tests hold it to the record-by-record
code it replaces: ``encode_rows`` to ``encode_batch``, ``frame_records`` to ``frame``, and
``scan`` to ``scan_reference`` on journals damaged in every way we can think of.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from exchange.journal import FsyncPolicy, Journal, JournalCorrupt, crc32c, crc32c_many, verify
from exchange.journal.checked_read import checked_rows
from exchange.journal.crc32c import TABLES, crc_update, crc_update2
from exchange.journal.framing import frame_records
from exchange.journal.layout import (
    GENESIS_HASH,
    HEADER_SIZE,
    KIND_DATA,
    encode_batch,
    list_segments,
    segment_name,
)
from exchange.journal.reference import first_bad_crc, frame, scan_reference
from exchange.journal.rows import (
    ROW_COLUMNS,
    ROW_PAYLOAD_SIZE,
    ROW_RECORD_SIZE,
    TRAILER_RECORD_SIZE,
    decode_rows,
    encode_rows,
)
from exchange.journal.scan import Scan, scan
from matching.codes import C_SEQ, N_COMMAND_FIELDS

I64 = np.iinfo(np.int64)


def make_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random command rows over the whole int64 range, extremes included."""
    rows = rng.integers(I64.min, I64.max, size=(n, ROW_COLUMNS), dtype=np.int64, endpoint=True)
    if n:
        rows[0, 1:] = I64.min
        rows[-1, 1:] = I64.max
    rows[:, C_SEQ] = -1  # the journal assigns it
    return rows


def as_payloads(rows: np.ndarray) -> list[bytes]:
    return [struct.pack("<14q", *r[1:]) for r in rows.tolist()]


# -- CRC32C --------------------------------------------------------------------------------


def crc32c_bitwise(data: bytes, crc: int = 0) -> int:
    """The definition, one bit at a time: the oracle for the slicing-by-8 tables."""
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def test_crc32c_check_values_and_bitwise_definition() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"The quick brown fox jumps over the lazy dog") == 0x22620404
    assert crc32c_bitwise(b"123456789") == 0xE3069283
    rng = random.Random(11)
    for n in range(0, 70):  # every tail length and position of the 8-byte steps
        data = rng.randbytes(n)
        seed = rng.getrandbits(32)
        assert crc32c(data) == crc32c_bitwise(data), n
        assert crc32c(data, seed) == crc32c_bitwise(data, seed), n
        for cut in (0, n // 3, n):
            assert crc32c(data[cut:], crc32c(data[:cut])) == crc32c(data)
    bufs = [rng.randbytes(rng.randint(0, 40)) for _ in range(101)]  # odd count: the lone tail
    assert crc32c_many(bufs) == [crc32c_bitwise(b) for b in bufs]


def test_crc_update2_is_two_crc_updates() -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, 400, dtype=np.uint8)
    for _ in range(200):
        a0, b0 = sorted(rng.integers(0, 400, 2)), sorted(rng.integers(0, 400, 2))
        sa, sb = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
        got = crc_update2(TABLES, data, a0[0], a0[1], sa, b0[0], b0[1], sb)
        assert got == (
            crc_update(TABLES, data, a0[0], a0[1], sa),
            crc_update(TABLES, data, b0[0], b0[1], sb),
        )


# -- encoding ------------------------------------------------------------------------------


def test_row_layout_is_the_engine_command_row() -> None:
    assert ROW_COLUMNS == N_COMMAND_FIELDS == 15 and C_SEQ == 0
    assert ROW_PAYLOAD_SIZE == 112 and ROW_RECORD_SIZE == 132 and TRAILER_RECORD_SIZE == 56


@settings(max_examples=150, deadline=None)
@given(
    rows=hnp.arrays(np.int64, st.tuples(st.integers(1, 40), st.just(ROW_COLUMNS))),
    first_seq=st.integers(1, 2**62),
    prev_hash=st.binary(min_size=32, max_size=32),
)
def test_encode_rows_is_byte_identical_to_encode_batch(
    rows: np.ndarray, first_seq: int, prev_hash: bytes
) -> None:
    got = encode_rows(rows, first_seq, prev_hash)
    assert got == encode_batch(first_seq, as_payloads(rows), prev_hash)
    other = rows.copy()
    other[:, C_SEQ] += 1  # column 0 is not in the payload
    assert encode_rows(other, first_seq, prev_hash) == got


def test_encode_rows_takes_any_layout_and_refuses_what_is_not_rows() -> None:
    rows = make_rows(np.random.default_rng(1), 9)
    expected = encode_rows(rows, 3, GENESIS_HASH)
    assert encode_rows(np.asfortranarray(rows), 3, GENESIS_HASH) == expected
    wide = np.zeros((9, 30), dtype=np.int64)
    wide[:, ::2] = rows
    assert encode_rows(wide[:, ::2], 3, GENESIS_HASH) == expected
    with pytest.raises(TypeError):
        encode_rows(rows.astype(np.int32), 1, GENESIS_HASH)
    with pytest.raises(ValueError, match="shape"):
        encode_rows(rows[:, :14], 1, GENESIS_HASH)
    with pytest.raises(ValueError, match="at least one"):
        encode_rows(rows[:0], 1, GENESIS_HASH)
    with pytest.raises(ValueError):
        encode_rows(rows, 0, GENESIS_HASH)
    with pytest.raises(ValueError):
        encode_rows(rows, 1, b"short")


# -- framing and decoding ------------------------------------------------------------------


def check_frames_match_reference(buf: bytes) -> None:
    """``frame_records`` agrees with ``frame`` and a per-record CRC check on ``buf``."""
    frames, stop = frame(buf)
    got = frame_records(buf)
    assert got.stop == stop
    assert got.offset.tolist() == [f.offset for f in frames]
    assert got.kind.tolist() == [f.kind for f in frames]
    assert got.length.tolist() == [f.length for f in frames]
    assert [s & (2**64 - 1) for s in got.seq.tolist()] == [f.seq for f in frames]
    assert got.crc_ok.tolist() == [first_bad_crc(buf, [f]) is None for f in frames]
    assert got.first_bad_crc() == first_bad_crc(buf, frames)


def test_frame_records_and_decode_rows_round_trip() -> None:
    rng = np.random.default_rng(2)
    rows = make_rows(rng, 300)
    buf, _ = encode_rows(rows, 41, GENESIS_HASH)
    frames = frame_records(buf)
    assert len(frames) == 301 and frames.stop == len(buf) and frames.crc_ok.all()
    out = decode_rows(buf, frames)
    assert out.dtype == np.int64 and out.shape == (300, ROW_COLUMNS)
    assert (out[:, 1:] == rows[:, 1:]).all()
    assert out[:, C_SEQ].tolist() == list(range(41, 341))
    assert (decode_rows(buf, frames, np.array([5, 7])) == out[[5, 7]]).all()
    check_frames_match_reference(buf)
    assert len(frame_records(buf, len(buf))) == 0


def test_frame_records_matches_frame_on_damaged_buffers() -> None:
    rng = random.Random(3)
    nrng = np.random.default_rng(3)
    clean = b"".join(
        encode_rows(make_rows(nrng, 3), 1, GENESIS_HASH)[0]
        + encode_batch(4, [rng.randbytes(rng.randint(0, 50)) for _ in range(3)], GENESIS_HASH)[0]
        for _ in range(3)
    )
    check_frames_match_reference(clean)
    for _ in range(400):
        buf = bytearray(clean)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(buf))
            buf[pos] ^= rng.randint(1, 255)
        cut = rng.choice([len(buf), rng.randrange(len(buf))])
        check_frames_match_reference(bytes(buf[:cut]))


def test_decode_rows_refuses_records_that_are_not_rows() -> None:
    buf, _ = encode_batch(1, [bytes(112), bytes(120), bytes(112)], GENESIS_HASH)
    frames = frame_records(buf)
    with pytest.raises(ValueError, match=r"record seq 2 .* 120-byte payload, not a 112-byte"):
        decode_rows(buf, frames)
    assert decode_rows(buf, frames, np.array([0, 2]))[:, C_SEQ].tolist() == [1, 3]
    with pytest.raises(ValueError, match="DATA"):
        decode_rows(buf, frames, np.array([3]))  # the trailer (36-byte payload)


# -- the compiled scan against the reference scan ------------------------------------------


def scan_summary(result: Scan) -> tuple:
    problem = result.problem
    return (
        [(s.path.name, s.first_seq, s.size, s.index) for s in result.segments],
        result.records,
        result.batches,
        result.last_seq,
        result.head_hash,
        None if problem is None else (str(problem), problem.path, problem.offset),
        result.tail,
    )


def fix_crc(buf: bytearray, offset: int) -> None:
    """Recompute the CRC of the record at ``offset`` so damage passes the CRC check."""
    length = struct.unpack_from("<I", buf, offset + 4)[0]
    body = bytes(buf[offset : offset + 16]) + bytes(buf[offset + 20 : offset + 20 + length])
    struct.pack_into("<I", buf, offset + 16, crc32c(body))


def damage(directory: Path, rng: random.Random) -> None:
    """One random kind of damage: torn tails, flipped bytes, valid-CRC lies, lost segments."""
    segments = [p for _, p in list_segments(directory)]
    path = rng.choice(segments)
    buf = bytearray(path.read_bytes())
    frames, _ = frame(bytes(buf))
    if not frames or not buf:  # an earlier damage left nothing to frame
        buf += os.urandom(rng.randint(1, 200))
        path.write_bytes(bytes(buf))
        return
    f = rng.choice(frames)
    what = rng.randrange(9)
    if what == 0:  # torn write
        buf = buf[: rng.randrange(len(buf))]
    elif what == 1:  # bit rot
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    elif what == 2:  # a partial write of garbage at the end
        buf += os.urandom(rng.randint(1, 200))
    elif what == 3:  # a payload changed, CRC fixed: only the hash chain can tell
        if f.length:
            buf[f.offset + HEADER_SIZE + rng.randrange(f.length)] ^= 0x40
        fix_crc(buf, f.offset)
    elif what == 4:  # a header seq or a trailer count changed, CRC fixed
        at = f.offset + (8 if f.kind == KIND_DATA or rng.random() < 0.5 else HEADER_SIZE)
        buf[at] ^= rng.choice([1, 2, 0x80])
        fix_crc(buf, f.offset)
    elif what == 5:  # a valid record copied over another one
        g = rng.choice(frames)
        rec = bytes(buf[g.offset : g.end])
        buf[f.offset : f.offset + len(rec)] = rec
    elif what == 6:  # a record dropped
        del buf[f.offset : f.end]
    elif what == 7:  # a segment lost
        path.unlink()
        return
    else:  # two bytes of damage in different places
        for _ in range(2):
            buf[rng.randrange(len(buf))] ^= rng.randint(1, 255)
    path.write_bytes(bytes(buf))


@pytest.fixture(scope="module")
def base_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few segments of mixed batches: rows, odd payload sizes, one-record batches."""
    d = tmp_path_factory.mktemp("base")
    rng = random.Random(9)
    nrng = np.random.default_rng(9)
    with Journal.open(d, segment_bytes=3000) as j:
        for _ in range(30):
            if rng.random() < 0.5:
                j.append_rows(make_rows(nrng, rng.randint(1, 6)))
            else:
                j.append_batch(
                    [rng.randbytes(rng.randint(0, 150)) for _ in range(rng.randint(1, 4))]
                )
    assert len(list_segments(d)) >= 4
    return d


def test_scan_agrees_with_reference_on_a_clean_journal(base_journal: Path) -> None:
    result = scan(base_journal)
    assert result.problem is None and result.tail is None and result.records > 60
    assert scan_summary(result) == scan_summary(scan_reference(base_journal))


VERDICTS = (
    "segment starts at seq",
    "record has seq",
    "malformed batch trailer",
    "hash chain broken",
    "valid records follow it",
    "it is not the last segment",
    "incomplete batch (no trailer)",
    "torn or corrupt record",
)


def verdict(result: Scan) -> str:
    if result.problem is None:
        return "tail: " + result.tail.reason if result.tail else "clean"
    return next(v for v in VERDICTS if v in str(result.problem))


def test_scan_agrees_with_reference_on_damaged_journals(base_journal: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("JOURNAL_DAMAGE_SEED", int.from_bytes(os.urandom(4), "little")))
    rng = random.Random(seed)
    seen = set()
    for i in range(int(os.environ.get("JOURNAL_DAMAGE_CASES", 300))):
        d = tmp_path / str(i)
        shutil.copytree(base_journal, d)
        for _ in range(rng.choice([1, 1, 2])):
            if list_segments(d):
                damage(d, rng)
        fast = scan(d)
        assert scan_summary(fast) == scan_summary(scan_reference(d)), f"seed {seed} case {i}"
        in_pieces = scan(d, piece=rng.choice([1, 60, 200, 700]))  # records cut by pieces
        assert scan_summary(in_pieces) == scan_summary(fast), f"seed {seed} case {i}"
        seen.add(verdict(fast))
        shutil.rmtree(d)
    assert len(seen) >= 7, f"seed {seed}: only {sorted(seen)}"  # many different verdicts


def test_scan_refuses_a_trailer_count_that_lies(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        j.append_rows(make_rows(np.random.default_rng(13), 3))
        j.append_rows(make_rows(np.random.default_rng(14), 2))
    seg = tmp_path / segment_name(1)
    buf = bytearray(seg.read_bytes())
    trailer = 3 * ROW_RECORD_SIZE
    struct.pack_into("<I", buf, trailer + HEADER_SIZE, 2)  # claims 2 records, has 3
    fix_crc(buf, trailer)
    seg.write_bytes(bytes(buf))
    result = scan(tmp_path)
    assert "hash chain broken" in str(result.problem) and result.problem.offset == trailer
    assert scan_summary(result) == scan_summary(scan_reference(tmp_path))


# -- append_rows / read_rows on a real journal ---------------------------------------------


def all_rows(j: Journal, from_seq: int = 1, chunk: int = 65536) -> np.ndarray:
    chunks = list(j.read_rows(from_seq, chunk))
    assert all(c.dtype == np.int64 and 0 < c.shape[0] <= chunk for c in chunks)
    if not chunks:
        return np.empty((0, ROW_COLUMNS), dtype=np.int64)
    return np.concatenate(chunks)


def test_append_rows_read_rows_round_trip_across_rolls_and_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    written = []
    with Journal.open(tmp_path, segment_bytes=8 * 1024) as j:
        for _ in range(60):
            rows = make_rows(rng, int(rng.integers(1, 50)))
            first, last = j.append_rows(rows)
            assert (first, last) == (j.last_seq - len(rows) + 1, j.last_seq)
            assert rows[:, C_SEQ].tolist() == list(range(first, last + 1))  # written back
            written.append(rows)
        expected = np.concatenate(written)
        assert (all_rows(j) == expected).all()
        assert (all_rows(j, chunk=7) == expected).all()
        assert (all_rows(j, 1000) == expected[999:]).all()
        assert all_rows(j, j.last_seq + 1).shape == (0, ROW_COLUMNS)
        assert [p for _, p in j.read(len(expected) - 2)] == as_payloads(expected[-3:])
        head = j.head_hash
    assert len(list_segments(tmp_path)) > 10 and verify(tmp_path).ok
    with Journal.open(tmp_path, segment_bytes=8 * 1024) as j:
        assert j.head_hash == head and j.last_seq == len(expected)
        more = make_rows(rng, 5)
        assert j.append_rows(more) == (len(expected) + 1, len(expected) + 5)
        expected = np.concatenate([expected, more])
        assert (all_rows(j, 3) == expected[2:]).all()
        head = j.head_hash
    # the same commands through append_batch give the same journal, byte for byte
    other = tmp_path / "other"
    with Journal.open(other, segment_bytes=8 * 1024) as j:
        for rows in [*written, more]:
            j.append_batch(as_payloads(rows))
        assert j.head_hash == head
    assert [p.read_bytes() for _, p in list_segments(other)] == [
        p.read_bytes() for _, p in list_segments(tmp_path)
    ]


def test_read_rows_after_a_torn_tail(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    with Journal.open(tmp_path) as j:
        a, b = make_rows(rng, 10), make_rows(rng, 10)
        j.append_rows(a)
        j.append_rows(b)
    seg = tmp_path / segment_name(1)
    full = seg.read_bytes()
    seg.write_bytes(full[: len(full) - 100])  # tear the second batch
    with Journal.open(tmp_path) as j:
        assert j.last_seq == 10
        assert (all_rows(j) == a).all()
        c = make_rows(rng, 3)
        assert j.append_rows(c) == (11, 13)
        assert (all_rows(j) == np.concatenate([a, c])).all()


def test_mixing_append_batch_and_append_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    with Journal.open(tmp_path) as j:
        a = make_rows(rng, 4)
        j.append_batch(as_payloads(a))  # 112-byte payloads are rows too
        a[:, C_SEQ] = [1, 2, 3, 4]
        b = make_rows(rng, 3)
        j.append_rows(b)
        assert (all_rows(j) == np.concatenate([a, b])).all()
        j.append_batch([b"not a command row"])
        c = make_rows(rng, 2)
        j.append_rows(c)
        with pytest.raises(ValueError, match=r"record seq 8 .* 17-byte payload"):
            all_rows(j)
        assert (all_rows(j, 9) == c).all()
        assert [s for s, _ in j.read(7)] == [7, 8, 9, 10]


def test_read_rows_detects_crc_corruption(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    j = Journal.open(tmp_path, segment_bytes=4096)
    for _ in range(10):
        j.append_rows(make_rows(rng, 8))
    first = list_segments(tmp_path)[0][1]
    raw = bytearray(first.read_bytes())
    raw[ROW_RECORD_SIZE * 3 + 50] ^= 0x10  # inside the fourth record's payload
    first.write_bytes(bytes(raw))
    with pytest.raises(JournalCorrupt, match=rf"{first.name} at offset {ROW_RECORD_SIZE * 3}"):
        all_rows(j)
    assert all_rows(j, 40).shape[0] == 41  # later segments still read
    j.close()
    with pytest.raises(JournalCorrupt):
        Journal.open(tmp_path)


def test_append_rows_refuses_bad_input_without_writing(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    with Journal.open(tmp_path) as j:
        rows = make_rows(rng, 3)
        rows.flags.writeable = False
        with pytest.raises(ValueError, match="writable"):
            j.append_rows(rows)
        with pytest.raises(TypeError):
            j.append_rows(make_rows(rng, 3).astype(np.float64))
        with pytest.raises(ValueError):
            j.append_rows(make_rows(rng, 0))
        assert j.last_seq == 0 and (tmp_path / segment_name(1)).stat().st_size == 0
        # a strided view gets its seqs written back into the caller's array
        big = make_rows(rng, 10)
        view = big[::2]
        assert j.append_rows(view) == (1, 5)
        assert big[::2, C_SEQ].tolist() == [1, 2, 3, 4, 5]
        assert (big[1::2, C_SEQ] == -1).all()
        with pytest.raises(ValueError):
            list(j.read_rows(0))
    with pytest.raises(ValueError, match="closed"):
        j.append_rows(make_rows(rng, 1))


def test_append_rows_follows_the_fsync_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    rng = np.random.default_rng(12)
    j = Journal.open(tmp_path / "s", FsyncPolicy.STRICT)
    calls.clear()
    for i in range(1, 4):
        j.append_rows(make_rows(rng, 5))
        assert len(calls) == i and j.unsynced_records == 0
    j.close()
    j = Journal.open(tmp_path / "b", sync_records=12, sync_interval_ms=60_000)
    calls.clear()
    j.append_rows(make_rows(rng, 5))
    j.append_rows(make_rows(rng, 5))
    assert calls == [] and j.unsynced_records == 10
    j.append_rows(make_rows(rng, 5))
    assert len(calls) == 1 and j.unsynced_records == 0
    j.close()


@pytest.fixture(scope="module")
def rows_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """Several small segments of command-row batches, and the rows they hold."""
    d = tmp_path_factory.mktemp("rows")
    rng = random.Random(21)
    nrng = np.random.default_rng(21)
    with Journal.open(d, segment_bytes=3000) as j:
        for _ in range(40):
            j.append_rows(make_rows(nrng, rng.randint(1, 7)))
        rows = all_rows(j)
    assert len(list_segments(d)) >= 4
    return d, rows


def read_checked(
    d: Path, chunk: int, piece: int = 1 << 20
) -> tuple[np.ndarray, JournalCorrupt | None]:
    """What ``checked_rows`` hands out before it stops, and what it raised."""
    got: list[np.ndarray] = []
    try:
        for part in checked_rows(d, chunk, piece=piece):
            assert part.dtype == np.int64 and 0 < part.shape[0] <= chunk
            got.append(part)
    except JournalCorrupt as exc:
        return np.concatenate(got) if got else np.empty((0, ROW_COLUMNS), np.int64), exc
    return np.concatenate(got) if got else np.empty((0, ROW_COLUMNS), np.int64), None


def test_checked_rows_reads_a_clean_journal_like_read_rows(rows_journal) -> None:
    d, rows = rows_journal
    for chunk, piece in ((1, 1 << 20), (5, 100), (65536, 1000), (3, 1)):
        got, problem = read_checked(d, chunk, piece)
        assert problem is None
        assert (got == rows).all()


def test_checked_rows_agrees_with_scan_on_damaged_journals(rows_journal, tmp_path: Path) -> None:
    """Only rows of batches the scan accepts come out, never a row past a problem, the
    same problem is raised, and the files are left as they were."""
    base, rows = rows_journal
    seed = int(os.environ.get("JOURNAL_DAMAGE_SEED", int.from_bytes(os.urandom(4), "little")))
    rng = random.Random(seed)
    for i in range(int(os.environ.get("JOURNAL_DAMAGE_CASES", 200))):
        d = tmp_path / str(i)
        shutil.copytree(base, d)
        damage(d, rng)
        before = {p.name: p.read_bytes() for p in d.iterdir()}
        result = scan(d)
        got, problem = read_checked(d, rng.choice([3, 64]), rng.choice([100, 900, 1 << 20]))
        assert {p.name: p.read_bytes() for p in d.iterdir()} == before
        assert (got == rows[: len(got)]).all(), f"seed {seed} case {i}"
        if result.problem is None:
            assert problem is None and len(got) == result.last_seq, f"seed {seed} case {i}"
        else:
            assert str(problem) == str(result.problem), f"seed {seed} case {i}"
            assert len(got) <= result.last_seq
        shutil.rmtree(d)
