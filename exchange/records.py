"""The one mapping between typed records (commands, events) and their int64 rows.

Commands and events are both rows of the shared layout (``matching.codes`` C_*/E_*); a record
class names the column of each of its fields once (``COLUMNS``), and this base writes fields
into a row and reads them back, so ``to_row`` and ``from_row`` are exact inverses. The
conversion of a column back into a field follows the field's annotation: an enum becomes its
member, a typed id (``exchange.ids``) stays an int, ``X | int`` keeps values that are not
members (echoed fields), ``... | None`` reads 0 as None. ``record_table`` checks every class
at import, so a wrong table fails there and not on the first row that uses it.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from enum import Enum, IntEnum
from typing import (
    Any,
    ClassVar,
    NewType,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import numpy as np

Row = Sequence[int] | np.ndarray
Converter = Callable[[int], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A command or event: ``KIND`` in the kind column, each field in its own column."""

    KIND: ClassVar[int]
    COLUMNS: ClassVar[dict[str, int]]  # field -> column, for the fields of this kind
    # set once per family (commands, events):
    WIDTH: ClassVar[int]  # columns in a row
    KIND_COLUMN: ClassVar[int]
    HEADER: ClassVar[dict[str, int]]  # fields every record of the family has (events: seq)
    RESERVED: ClassVar[frozenset[int]]  # columns no field may use (seq, ts, kind)

    def _row(self) -> np.ndarray:
        row = np.zeros(self.WIDTH, dtype=np.int64)
        row[self.KIND_COLUMN] = self.KIND
        for columns in (self.HEADER, self.COLUMNS):
            for name, col in columns.items():
                value = getattr(self, name)
                row[col] = 0 if value is None else int(value)
        return row

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record of this class a row holds (``ValueError`` for an out-of-range value)."""
        return cls(**{name: convert(int(row[col])) for name, col, convert in _DECODERS[cls]})

    def to_wire(self) -> dict[str, Any]:
        """Plain values for orjson: enums by name, ``type`` = the class name."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.name if isinstance(value, Enum) else value
        return out


R = TypeVar("R", bound=Record)
_DECODERS: dict[type[Record], list[tuple[str, int, Converter]]] = {}


def record_table(classes: Iterable[type[R]]) -> dict[int, type[R]]:
    """``KIND`` -> class, after checking each class's columns against its fields."""
    table: dict[int, type[R]] = {}
    for cls in classes:
        if cls.KIND in table:
            raise TypeError(f"{cls.__name__}: kind {cls.KIND} is also {table[cls.KIND].__name__}")
        hints = get_type_hints(cls)
        names = [f.name for f in fields(cls)]
        columns = {**cls.HEADER, **cls.COLUMNS}
        if set(columns) != set(names) or len(columns) != len(cls.HEADER) + len(cls.COLUMNS):
            raise TypeError(f"{cls.__name__}: COLUMNS must name exactly its fields")
        used = list(cls.COLUMNS.values())
        if len(set(used)) != len(used) or set(used) & (cls.RESERVED | set(cls.HEADER.values())):
            raise TypeError(f"{cls.__name__}: two fields share a column, or one is reserved")
        if not all(0 <= col < cls.WIDTH for col in columns.values()):
            raise TypeError(f"{cls.__name__}: a column outside the row")
        _DECODERS[cls] = [(name, columns[name], _converter(hints[name])) for name in names]
        table[cls.KIND] = cls
    return table


def _converter(tp: Any) -> Converter:
    """How a column's integer becomes a field of type ``tp``."""
    if isinstance(tp, NewType):
        return _converter(tp.__supertype__)
    if tp is int or tp is bool:
        return tp
    if isinstance(tp, type) and issubclass(tp, IntEnum):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        args = [a.__supertype__ if isinstance(a, NewType) else a for a in get_args(tp)]
        enums = [a for a in args if isinstance(a, type) and issubclass(a, IntEnum)]
        if len(enums) <= 1 and set(args) <= {int, type(None), *enums}:
            return _lenient(enums[0] if enums else None, int in args, type(None) in args)
    raise TypeError(f"no row conversion for a field of type {tp!r}")


def _lenient(enum: type[IntEnum] | None, keep_int: bool, zero_is_none: bool) -> Converter:
    def convert(value: int) -> Any:
        if zero_is_none and value == 0:
            return None
        if enum is not None:
            try:
                return enum(value)
            except ValueError:
                if not keep_int:
                    raise
        return value

    return convert
