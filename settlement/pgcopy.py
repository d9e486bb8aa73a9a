"""PostgreSQL's binary COPY format, written by numpy from integer columns.

The projector's tables are integers only, so each COPY row has a fixed size: a field count,
then per field a length and a big-endian value. One structured array with that layout is
filled column by column and sent as it is: no Python object per row or per value, which
is what lets the ledger keep up with the engine (``copy_records_to_table`` builds a tuple
per row and encodes each value in turn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_PG_TYPES = {2: "smallint", 4: "integer", 8: "bigint"}


def encode(rows: np.ndarray, columns: Sequence[str]) -> memoryview:
    """``rows`` (a structured array of signed integer fields) as one binary COPY stream.

    ``columns`` picks and orders the fields; each field's width (2, 4 or 8 bytes) must be
    the width of the table's column (smallint, integer, bigint).
    """
    columns_of = rows.dtype.fields
    if columns_of is None:
        raise TypeError("rows must be a structured array")
    fields = []
    for i, name in enumerate(columns):
        dt = columns_of[name][0]
        if dt.kind != "i" or dt.itemsize not in _PG_TYPES:
            raise TypeError(f"{name}: only int16/int32/int64 columns, not {dt}")
        fields += [(f"l{i}", ">i4"), (f"v{i}", f">i{dt.itemsize}")]
    out = np.empty(len(rows), dtype=np.dtype([("n", ">i2"), *fields]))
    out["n"] = len(columns)
    for i, name in enumerate(columns):
        out[f"l{i}"] = columns_of[name][0].itemsize
        out[f"v{i}"] = rows[name]
    # a memoryview, not bytes: asyncpg would take bytes for a file path
    return memoryview(b"".join((_HEADER, out.tobytes(), _TRAILER)))


def pg_type(dtype: np.dtype) -> str:
    """The SQL type of a column holding ``dtype`` values (for ``unnest`` casts)."""
    return _PG_TYPES[np.dtype(dtype).itemsize]
