"""The journal: the truth of the exchange (DESIGN principles 4 and 5).

Append-only segment files of CRC32C-checked records, grouped in hash-chained batches whose
head hash settlement anchors on chain. See ``layout`` for the bytes on disk, ``framing``
for reading them back in bulk (compiled), ``scan`` for the check of a whole journal,
``repair`` for telling a torn tail from corruption, ``reference`` for the same check in
plain Python (the tests' oracle), ``writer`` for appending, group commit and recovery,
``verify`` for the read-only check behind ``cx verify``.
"""

from exchange.journal.crc32c import crc32c, crc32c_many
from exchange.journal.layout import GENESIS_HASH, JournalCorrupt, segment_name
from exchange.journal.verify import VerifyReport, main_verify, verify
from exchange.journal.writer import DEFAULT_SEGMENT_BYTES, FsyncPolicy, Journal

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "GENESIS_HASH",
    "FsyncPolicy",
    "Journal",
    "JournalCorrupt",
    "VerifyReport",
    "crc32c",
    "crc32c_many",
    "main_verify",
    "segment_name",
    "verify",
]
