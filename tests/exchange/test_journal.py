"""The journal on real files: round trips, the hash chain, recovery of torn tails, refusal
of corruption before the tail, fsync policies, and a SIGKILL crash test."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from exchange.journal import (
    FsyncPolicy,
    Journal,
    JournalCorrupt,
    crc32c,
    crc32c_many,
    main_verify,
    segment_name,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]
DATA_REC = 20 + 120  # header + crc + one command row
TRAILER_REC = 20 + 36


def row(seq: int) -> bytes:
    """A stand-in for one engine command row: 15 int64 = 120 bytes, derived from seq."""
    return struct.pack("<15q", *(seq * 100 + k for k in range(15)))


def append(j: Journal, n: int) -> tuple[int, int]:
    first = j.last_seq + 1
    return j.append_batch([row(first + i) for i in range(n)])


def files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.cxj"))}


def small_journal(d: Path, sizes: tuple[int, ...] = (3, 1, 2)) -> tuple[Path, list[int]]:
    """One segment; returns its path and the byte offset where each batch ends."""
    ends, pos = [], 0
    with Journal.open(d) as j:
        for n in sizes:
            append(j, n)
            pos += n * DATA_REC + TRAILER_REC
            ends.append(pos)
    return d / segment_name(1), ends


# -- CRC32C --------------------------------------------------------------------------------


def test_crc32c_known_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI) appendix B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


def test_crc32c_many_and_continuation_agree_with_single() -> None:
    rng = random.Random(7)
    bufs = [rng.randbytes(rng.choice([0, 1, 9, 136, 136, 136, 300])) for _ in range(200)]
    assert crc32c_many(bufs) == [crc32c(b) for b in bufs]
    assert crc32c_many([b"123456789"] * 20) == [0xE3069283] * 20
    assert crc32c(b"456789", crc32c(b"123")) == 0xE3069283


# -- round trip, chain, reopen -------------------------------------------------------------


def test_round_trip_across_segment_rolls(tmp_path: Path) -> None:
    rng = random.Random(1)
    sizes = [rng.randint(1, 40) for _ in range(300)]
    with Journal.open(tmp_path, segment_bytes=16 * 1024) as j:
        expect_first = 1
        for n in sizes:
            first, last = append(j, n)
            assert (first, last) == (expect_first, expect_first + n - 1)
            expect_first = last + 1
        total = sum(sizes)
        assert j.last_seq == total
        got = list(j.read())
        assert [s for s, _ in got] == list(range(1, total + 1))
        assert all(p == row(s) for s, p in got)
        assert [s for s, _ in j.read(total - 5)] == list(range(total - 5, total + 1))
        assert list(j.read(total + 1)) == []
    segs = sorted(tmp_path.glob("*.cxj"))
    assert len(segs) > 10
    assert segs[0].name == "00000000000000000001.cxj"
    assert all(p.stat().st_size <= 16 * 1024 for p in segs)
    # segment names are the first seq of each segment, so they chain
    for a, b in itertools.pairwise(segs):
        assert int(b.stem) > int(a.stem)


def test_head_hash_matches_independent_chain(tmp_path: Path) -> None:
    sizes = [1, 5, 2, 17, 3]
    with Journal.open(tmp_path, segment_bytes=2048) as j:
        for n in sizes:
            append(j, n)
        head = j.head_hash
        assert j.head == (j.last_seq, head) == (sum(sizes), head)
    raw = b"".join(files(tmp_path).values())
    h, pos = bytes(32), 0
    for n in sizes:
        data = raw[pos : pos + n * DATA_REC]
        h = hashlib.sha256(h + data).digest()
        trailer = raw[pos + n * DATA_REC : pos + n * DATA_REC + TRAILER_REC]
        assert trailer[-32:] == h  # each trailer carries the chained hash
        pos += n * DATA_REC + TRAILER_REC
    assert pos == len(raw)
    assert head == h
    assert verify(tmp_path).head_hash == h.hex()


def test_reopen_continues_sequence_and_chain(tmp_path: Path) -> None:
    with Journal.open(tmp_path, segment_bytes=4096) as j:
        for _ in range(20):
            append(j, 4)
        head, last = j.head_hash, j.last_seq
    with Journal.open(tmp_path, segment_bytes=4096) as j:
        assert (j.head_hash, j.last_seq) == (head, last)
        assert append(j, 3) == (last + 1, last + 3)
        assert [s for s, _ in j.read(last - 1)] == list(range(last - 1, last + 4))
    # the chain over the reopened journal is the same as one written in one go
    other = tmp_path / "other"
    with Journal.open(other) as j:
        for _ in range(20):
            append(j, 4)
        append(j, 3)
        expected = j.head_hash
    assert verify(tmp_path).head_hash == expected.hex()


def test_read_while_appending_sees_only_complete_batches(tmp_path: Path) -> None:
    with Journal.open(tmp_path, segment_bytes=1500) as j:
        append(j, 5)
        cursor = 0
        for _ in range(30):
            got = list(j.read(cursor + 1))
            assert [s for s, _ in got] == list(range(cursor + 1, j.last_seq + 1))
            cursor = j.last_seq
            append(j, 3)
        it = j.read(cursor + 1)  # the end is fixed at call time
        append(j, 2)
        assert [s for s, _ in it] == [cursor + 1, cursor + 2, cursor + 3]


def test_empty_batch_and_second_writer_are_refused(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as j:
        with pytest.raises(ValueError):
            j.append_batch([])
        with pytest.raises(RuntimeError, match="already open"):
            Journal.open(tmp_path)
    with Journal.open(tmp_path) as j:  # released on close
        assert j.last_seq == 0


# -- recovery ------------------------------------------------------------------------------


def test_truncated_tail_at_every_offset_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seg, ends = small_journal(tmp_path / "j")
    full = seg.read_bytes()
    good_end = ends[-2]
    # the head hash after the second batch, from a clean journal of the first two batches
    ref_seg, _ = small_journal(tmp_path / "ref", sizes=(3, 1))
    good_head = bytes.fromhex(verify(tmp_path / "ref").head_hash)
    for cut in range(good_end + 1, len(full)):
        seg.write_bytes(full[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING), Journal.open(tmp_path / "j") as j:
            assert (j.last_seq, j.head_hash) == (4, good_head), cut
            assert f"cut {cut - good_end} bytes" in caplog.text
            assert seg.stat().st_size == good_end
            assert append(j, 2) == (5, 6)
            assert [p for _, p in j.read(5)] == [row(5), row(6)]
        assert verify(tmp_path / "j").ok
    seg.write_bytes(full[:good_end])  # a clean cut at a batch boundary needs no repair
    caplog.clear()
    with caplog.at_level(logging.WARNING), Journal.open(tmp_path / "j") as j:
        assert j.last_seq == 4
    assert caplog.text == ""
    assert ref_seg.read_bytes() == full[:good_end]


def test_flipped_byte_anywhere_in_last_batch_is_cut(tmp_path: Path) -> None:
    seg, ends = small_journal(tmp_path)
    full = seg.read_bytes()
    for pos in range(ends[-2], len(full)):
        bad = bytearray(full)
        bad[pos] ^= 0x5A
        seg.write_bytes(bytes(bad))
        assert not verify(tmp_path).ok
        with Journal.open(tmp_path) as j:
            assert j.last_seq == 4, pos
            assert seg.stat().st_size == ends[-2]
            append(j, 2)
        assert verify(tmp_path).ok


def test_flipped_byte_in_earlier_batch_refuses_to_start(tmp_path: Path) -> None:
    seg, ends = small_journal(tmp_path)
    full = seg.read_bytes()
    for pos in range(0, ends[-2]):
        bad = bytearray(full)
        bad[pos] ^= 0x01
        seg.write_bytes(bytes(bad))
        with pytest.raises(JournalCorrupt, match=r"00000000000000000001\.cxj at offset \d+") as e:
            Journal.open(tmp_path)
        assert e.value.offset is not None and e.value.offset <= pos
        assert seg.read_bytes() == bytes(bad)  # nothing was cut
        assert not verify(tmp_path).ok


def test_corruption_in_an_earlier_segment_refuses_to_start(tmp_path: Path) -> None:
    with Journal.open(tmp_path, segment_bytes=1024) as j:
        for _ in range(10):
            append(j, 3)
    segs = sorted(tmp_path.glob("*.cxj"))
    assert len(segs) >= 3
    raw = segs[1].read_bytes()
    segs[1].write_bytes(raw[:-10])  # a torn tail, but not in the last segment
    with pytest.raises(JournalCorrupt, match="not the last segment"):
        Journal.open(tmp_path)
    segs[1].write_bytes(raw)
    segs[1].rename(tmp_path / "gone")  # a missing segment breaks the sequence
    with pytest.raises(JournalCorrupt, match="expected"):
        Journal.open(tmp_path)


def test_valid_crc_but_broken_chain_is_refused_even_at_the_tail(tmp_path: Path) -> None:
    seg, ends = small_journal(tmp_path)
    full = bytearray(seg.read_bytes())
    trailer = ends[-1] - TRAILER_REC
    full[trailer + 24] ^= 0xFF  # inside the stored hash
    head = bytes(full[trailer : trailer + 16])
    body = bytes(full[trailer + 20 : trailer + 56])
    full[trailer + 16 : trailer + 20] = struct.pack("<I", crc32c(head + body))
    seg.write_bytes(bytes(full))
    with pytest.raises(JournalCorrupt, match="hash chain broken"):
        Journal.open(tmp_path)


# -- verify --------------------------------------------------------------------------------


def test_verify_reports_without_modifying(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    seg, _ = small_journal(tmp_path)
    report = verify(tmp_path)
    assert report.ok and report.problems == ()
    assert (report.records, report.batches, report.last_seq, report.segments) == (6, 3, 6, 1)
    assert main_verify(tmp_path) == 0
    assert "OK" in capsys.readouterr().out

    torn = seg.read_bytes()[:-7]
    seg.write_bytes(torn)
    before = seg.stat().st_mtime_ns
    report = verify(tmp_path)
    assert not report.ok and "torn tail" in report.problems[0]
    assert report.last_seq == 4
    assert main_verify(tmp_path) == 1
    assert "PROBLEM torn tail" in capsys.readouterr().out
    assert seg.read_bytes() == torn and seg.stat().st_mtime_ns == before

    bad = bytearray(torn)
    bad[5] ^= 1
    seg.write_bytes(bytes(bad))
    report = verify(tmp_path)
    assert not report.ok and report.problems[0].startswith("corrupt:")
    assert seg.read_bytes() == bytes(bad)
    assert not verify(tmp_path / "missing").ok


# -- fsync policies ------------------------------------------------------------------------


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_strict_fsyncs_before_each_append_returns(tmp_path: Path, fsyncs: list[int]) -> None:
    j = Journal.open(tmp_path, FsyncPolicy.STRICT)
    fsyncs.clear()
    for i in range(1, 11):
        append(j, 2)
        assert len(fsyncs) == i
        assert j.unsynced_records == 0
    j.close()


def test_batch_policy_groups_fsyncs(tmp_path: Path, fsyncs: list[int]) -> None:
    j = Journal.open(tmp_path, sync_records=10, sync_interval_ms=60_000)
    assert j.policy is FsyncPolicy.BATCH
    fsyncs.clear()
    for _ in range(25):
        append(j, 1)
    assert len(fsyncs) == 2 and j.unsynced_records == 5
    assert not j.tick()  # interval not reached
    j.sync()
    assert len(fsyncs) == 3 and j.unsynced_records == 0
    j.close()

    j = Journal.open(tmp_path, sync_records=1000, sync_interval_ms=30)
    fsyncs.clear()
    append(j, 1)
    append(j, 1)
    assert fsyncs == [] and j.unsynced_records == 2
    time.sleep(0.05)
    assert j.tick() and len(fsyncs) == 1
    assert not j.tick()  # nothing left to sync
    j.close()


# -- crash ---------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import struct, sys
    from exchange.journal import FsyncPolicy, Journal

    def row(seq):
        return struct.pack("<15q", *(seq * 100 + k for k in range(15)))

    j = Journal.open(sys.argv[1], FsyncPolicy.STRICT, segment_bytes=32 * 1024)
    with open(sys.argv[2], "a") as side:
        n = 0
        while True:
            n = n % 7 + 1
            first = j.last_seq + 1
            lo, hi = j.append_batch([row(first + i) for i in range(n)])
            side.write(f"{lo} {hi}\\n")
            side.flush()
    """
)


def test_sigkill_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    jdir, side = tmp_path / "j", tmp_path / "acked.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    acked_max = 0
    for round_ in range(4):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(jdir), str(side)], env=env)
        try:
            # Let the child get past its start-up (imports, maybe a cold compile): until it
            # acknowledges a batch of this round, with a deadline only so a bug cannot hang.
            deadline = time.monotonic() + 240
            while not side.exists() or side.stat().st_size <= acked_max:
                assert child.poll() is None, f"seed {seed}: child exited ({child.returncode})"
                assert time.monotonic() < deadline, f"seed {seed}: child acknowledged nothing"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        lines = side.read_text().split("\n")[:-1]  # a partial last line was never acked
        acked = [tuple(map(int, line.split())) for line in lines]
        with Journal.open(jdir) as j:
            assert acked, f"seed {seed}: child acknowledged nothing"
            last_acked = acked[-1][1]
            assert j.last_seq >= last_acked, f"seed {seed} round {round_}"
            got = list(j.read())
            assert [s for s, _ in got] == list(range(1, j.last_seq + 1))
            assert all(p == row(s) for s, p in got), f"seed {seed}"
        acked_max = side.stat().st_size
        assert verify(jdir).ok


def test_cx_verify_command_reports_intact_and_damaged_journals(tmp_path, capsys) -> None:
    """The operator's ``cx verify`` runs the same check and sets the exit code."""
    from cx.cli import main

    journal = Journal.open(tmp_path / "j")
    journal.append_batch([b"x" * 120, b"y" * 120])
    journal.close()
    assert main(["verify", str(tmp_path / "j")]) == 0
    assert "OK" in capsys.readouterr().out
    segment = sorted((tmp_path / "j").glob("*.cxj"))[0]
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert main(["verify", str(tmp_path / "j")]) == 1
    assert "PROBLEM" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing")]) == 1
