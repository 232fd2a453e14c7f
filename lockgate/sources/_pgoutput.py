"""A small decoder of PostgreSQL's built-in ``pgoutput`` logical replication protocol
(version 1): the messages ``pg_logical_slot_peek_binary_changes`` returns, one ``bytea`` each.

Only what change data capture needs: Begin, Commit, Relation, Insert, Update, Delete,
Truncate (Type, Origin and logical Message are recognised and ignored). Column values are
PostgreSQL's text output (``t``), ``None`` for NULL (``n``), or :data:`UNCHANGED` for an
unchanged TOASTed value (``u``: the server did not send it — the stored value stands).

Layouts (PostgreSQL docs, "Logical Replication Message Formats"); integers are big-endian,
timestamps microseconds since 2000-01-01 UTC, strings NUL-terminated::

    B  final_lsn:i64 commit_ts:i64 xid:i32
    C  flags:i8 commit_lsn:i64 end_lsn:i64 commit_ts:i64
    R  oid:i32 namespace:str name:str identity:i8 ncols:i16 (flags:i8 name:str type:i32 mod:i32)*
    I  oid:i32 'N' tuple
    U  oid:i32 ['K'|'O' tuple] 'N' tuple
    D  oid:i32 ('K'|'O') tuple
    T  nrels:i32 options:i8 oid:i32*
    tuple = ncols:i16 (kind:i8 ['t'|'b' len:i32 bytes])*

>>> lsn_int("0/153B4C8"), lsn_text(22262984)
(22262984, '0/153B4C8')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from struct import Struct

#: an unchanged TOASTed value (``'u'``): never written over the stored value
UNCHANGED = b"\x00lg-unchanged-toast\x00"

_I16 = Struct(">h")
_I32 = Struct(">i")
_U32 = Struct(">I")
_I64 = Struct(">q")
_BEGIN = Struct(">qqi")
_COMMIT = Struct(">bqqq")
_REL_COL = Struct(">ii")
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01


class DecodeError(ValueError):
    """A message the decoder does not understand (a protocol change, or corrupt bytes)."""


def lsn_int(text: str) -> int:
    """``'16/B374D848'`` → the LSN as an integer."""
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def lsn_text(value: int) -> str:
    """An integer LSN in PostgreSQL's ``hi/lo`` hexadecimal form."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def pg_time_us(value: int) -> int:
    """pgoutput's timestamp (µs since 2000-01-01) → µs since the Unix epoch."""
    return value + _PG_EPOCH_US


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_ts: dt.datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: dt.datetime


@dataclass(frozen=True)
class Relation:
    """A table's description, sent before its first change (and after DDL)."""

    oid: int
    namespace: str
    name: str
    #: ``d`` default (primary key), ``n`` nothing, ``f`` full, ``i`` index
    replica_identity: str
    columns: tuple[str, ...]
    key: tuple[bool, ...]  # per column: part of the replica identity
    type_oids: tuple[int, ...]
    type_mods: tuple[int, ...] = field(default=(), compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"


#: a decoded tuple: per column its text (bytes), None (NULL) or :data:`UNCHANGED`
Values = list[bytes | None]


@dataclass(frozen=True)
class Insert:
    oid: int
    new: Values


@dataclass(frozen=True)
class Update:
    oid: int
    #: ``K`` (old key: the key changed), ``O`` (whole old row: REPLICA IDENTITY FULL), ``""``
    old_kind: str
    old: Values | None
    new: Values


@dataclass(frozen=True)
class Delete:
    oid: int
    old_kind: str  # ``K`` or ``O``
    old: Values


@dataclass(frozen=True)
class Truncate:
    options: int  # 1: CASCADE, 2: RESTART IDENTITY
    oids: tuple[int, ...]


@dataclass(frozen=True)
class Ignored:
    """Type, Origin or a logical decoding Message: nothing for CDC to apply."""

    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Ignored


def _cstr(data: bytes, off: int) -> tuple[str, int]:
    end = data.index(0, off)
    return data[off:end].decode(), end + 1


def _ts(value: int) -> dt.datetime:
    return _PG_EPOCH + dt.timedelta(microseconds=value)


def read_tuple(data: bytes, off: int) -> tuple[Values, int]:
    """The tuple at ``off``: its values and the offset after it."""
    (n,) = _I16.unpack_from(data, off)
    off += 2
    values: Values = [None] * n
    for i in range(n):
        kind = data[off]
        off += 1
        if kind == 116 or kind == 98:  # 't' text, 'b' binary: length-prefixed bytes
            (length,) = _I32.unpack_from(data, off)
            off += 4
            if off + length > len(data):
                raise DecodeError(f"value of column {i + 1} runs past the end of the message")
            values[i] = data[off : off + length]
            off += length
        elif kind == 117:  # 'u'
            values[i] = UNCHANGED
        elif kind != 110:  # 'n' is NULL
            raise DecodeError(f"unknown tuple value kind {chr(kind)!r} at byte {off - 1}")
    return values, off


def decode(data: bytes) -> Message:
    """One pgoutput message."""
    if not data:
        raise DecodeError("empty message")
    kind = chr(data[0])
    if kind in "IUD":
        (oid,) = _U32.unpack_from(data, 1)
        tag, off = chr(data[5]), 6
        if kind == "I":
            if tag != "N":
                raise DecodeError(f"insert: expected 'N', got {tag!r}")
            return Insert(oid, read_tuple(data, off)[0])
        if kind == "D":
            if tag not in "KO":
                raise DecodeError(f"delete: expected 'K' or 'O', got {tag!r}")
            return Delete(oid, tag, read_tuple(data, off)[0])
        old: Values | None = None
        old_kind = ""
        if tag in "KO":
            old_kind = tag
            old, off = read_tuple(data, off)
            tag, off = chr(data[off]), off + 1
        if tag != "N":
            raise DecodeError(f"update: expected 'N', got {tag!r}")
        return Update(oid, old_kind, old, read_tuple(data, off)[0])
    if kind == "B":
        final_lsn, ts, xid = _BEGIN.unpack_from(data, 1)
        return Begin(final_lsn, _ts(ts), xid)
    if kind == "C":
        flags, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(data, 1)
        return Commit(flags, commit_lsn, end_lsn, _ts(ts))
    if kind == "R":
        return _relation(data)
    if kind == "T":
        (n,) = _I32.unpack_from(data, 1)
        options = data[5]
        oids = tuple(_U32.unpack_from(data, 6 + 4 * i)[0] for i in range(n))
        return Truncate(options, oids)
    if kind in "YOM":
        return Ignored(kind)
    raise DecodeError(f"unknown pgoutput message type {kind!r}")


def _relation(data: bytes) -> Relation:
    (oid,) = _U32.unpack_from(data, 1)
    namespace, off = _cstr(data, 5)
    name, off = _cstr(data, off)
    identity = chr(data[off])
    (n,) = _I16.unpack_from(data, off + 1)
    off += 3
    cols: list[str] = []
    key: list[bool] = []
    types: list[int] = []
    mods: list[int] = []
    for _ in range(n):
        flags = data[off]
        col, off = _cstr(data, off + 1)
        typ, mod = _REL_COL.unpack_from(data, off)
        off += 8
        cols.append(col)
        key.append(bool(flags & 1))
        types.append(typ & 0xFFFFFFFF)
        mods.append(mod)
    return Relation(
        oid,
        namespace or "pg_catalog",
        name,
        identity,
        tuple(cols),
        tuple(key),
        tuple(types),
        tuple(mods),
    )
