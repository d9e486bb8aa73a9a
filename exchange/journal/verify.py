"""``cx verify JOURNAL``: check a journal's CRCs and hash chain without touching it.

Anyone holding a copy of the journal and an anchored head hash can run this to confirm
that the published history was not rewritten.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from exchange.journal.scan import scan


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found; ``ok`` only if there is no problem at all (torn tail included)."""

    segments: int
    records: int
    batches: int
    last_seq: int
    head_hash: str  # hex of the last good batch hash
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(directory: str | os.PathLike[str]) -> VerifyReport:
    """Scan the journal in ``directory`` read-only and report what is good and what is not.

    Counts cover the good prefix; a torn tail (which ``Journal.open`` would cut) and any
    corruption are listed as problems.
    """
    path = Path(directory)
    if not path.is_dir():
        return VerifyReport(0, 0, 0, 0, bytes(32).hex(), (f"{path}: not a directory",))
    result = scan(path)
    problems = []
    if result.problem is not None:
        problems.append(f"corrupt: {result.problem}")
    if result.tail is not None:
        t = result.tail
        problems.append(
            f"torn tail: {t.path} at offset {t.offset}: {t.reason}; "
            f"opening the journal would cut {t.cut_bytes} bytes"
        )
    if not result.segments and result.problem is None:
        problems.append(f"{path}: no journal segments")
    return VerifyReport(
        segments=len(result.segments),
        records=result.records,
        batches=result.batches,
        last_seq=result.last_seq,
        head_hash=result.head_hash.hex(),
        problems=tuple(problems),
    )


def main_verify(path: str | os.PathLike[str], out: TextIO | None = None) -> int:
    """Print a summary of ``verify(path)``; exit code 0 if ok, 1 if there are problems."""
    out = out if out is not None else sys.stdout
    report = verify(path)
    print(
        f"journal {path}: {report.segments} segments, {report.records} records, "
        f"{report.batches} batches, last seq {report.last_seq}",
        file=out,
    )
    print(f"head hash {report.head_hash}", file=out)
    for problem in report.problems:
        print(f"PROBLEM {problem}", file=out)
    print("OK" if report.ok else f"FAILED ({len(report.problems)} problems)", file=out)
    return 0 if report.ok else 1
