"""A faster decoder of binlog row images for the common column types, straight to the text
:mod:`lockgate.sources._binlog` stages (the ``mysql-replication`` library builds a Python
object per value, then a dict per row: ~85 % of a batch's time).

The library still reads the stream, the events and the table maps; only a rows event's
payload (the row images after its header) is decoded here, by one small reader per column
compiled from the table map. A table with a column type not listed below, a character set
Python has no codec for, or a partial row image is left to the library (``None``). Both give
the same texts (tested against each other).

Row image (``binlog_row_image=FULL``: every column present): a NULL bitmap of
``(columns + 7) / 8`` bytes, then each non-NULL value in its binary form.
"""

from __future__ import annotations

import codecs
import datetime as dt
from collections.abc import Callable
from struct import Struct
from typing import Any

Text = str | None
Reader = Callable[[bytes, int], tuple[Text, int]]

_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_EPOCH = dt.datetime(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _int(fmt: str) -> Reader:
    s = Struct(fmt)
    size, unpack = s.size, s.unpack_from

    def read(data: bytes, off: int) -> tuple[Text, int]:
        return str(unpack(data, off)[0]), off + size

    return read


def _int24(unsigned: bool) -> Reader:
    def read(data: bytes, off: int) -> tuple[Text, int]:
        v = int.from_bytes(data[off : off + 3], "little", signed=not unsigned)
        return str(v), off + 3

    return read


def _double(data: bytes, off: int) -> tuple[Text, int]:
    return repr(_D.unpack_from(data, off)[0]), off + 8


_D = Struct("<d")
_F = Struct("<f")


def _float(data: bytes, off: int) -> tuple[Text, int]:
    from lockgate.sources._binlog import _float as text

    return text(_F.unpack_from(data, off)[0]), off + 4


def _byte_as_code_point(err: UnicodeError) -> tuple[str, int]:
    """A byte the codec has no character for is the code point of the same number: what
    MySQL does for the five holes of its ``latin1`` (cp1252: 0x81, 0x8D, 0x8F, 0x90,
    0x9D are U+0081 …), so the change reads as the snapshot does instead of failing."""
    assert isinstance(err, UnicodeDecodeError)
    return "".join(map(chr, err.object[err.start : err.end])), err.end


_ERRORS = "lockgate-byte-as-code-point"
codecs.register_error(_ERRORS, _byte_as_code_point)


def _string(length_size: int, encoding: str) -> Reader:
    binary = encoding == "binary"

    def read(data: bytes, off: int) -> tuple[Text, int]:
        n = int.from_bytes(data[off : off + length_size], "little")
        start = off + length_size
        raw = data[start : start + n]
        return (raw.hex().upper() if binary else raw.decode(encoding, _ERRORS)), start + n

    return read


def _decimal(precision: int, scale: int) -> Reader:
    """MySQL's binary DECIMAL (groups of 9 digits in 4 bytes, big-endian, the sign in the
    top bit, negative values with every bit inverted), as ``format(Decimal, 'f')`` prints
    the library's value."""
    integral = precision - scale
    uint, ufrac = integral // 9, scale // 9
    cint, cfrac = integral - uint * 9, scale - ufrac * 9
    bint, bfrac = _DIG2BYTES[cint], _DIG2BYTES[cfrac]
    size = bint + uint * 4 + ufrac * 4 + bfrac
    bits = size * 8
    top, everything = 1 << (bits - 1), (1 << bits) - 1
    frac_groups = [(bfrac * 8, 10**cfrac)] if bfrac else []
    frac_groups += [(32, 10**9)] * ufrac
    int_groups = [(32, 10**9)] * uint + ([(bint * 8, 10**cint)] if bint else [])

    def read(data: bytes, off: int) -> tuple[Text, int]:
        v = int.from_bytes(data[off : off + size], "big")
        negative = not v & top
        v ^= top
        if negative:
            v = ~v & everything
        frac, scale_so_far = 0, 1
        for width, base in frac_groups:  # from the right: the last group first
            frac += (v & ((1 << width) - 1)) * scale_so_far
            scale_so_far *= base
            v >>= width
        whole, place = 0, 1
        for width, base in int_groups:
            whole += (v & ((1 << width) - 1)) * place
            place *= base
            v >>= width
        text = ("-" if negative else "") + str(whole)
        if scale:
            text += "." + str(frac).rjust(scale, "0")
        return text, off + size

    return read


def _fsp(fsp: int) -> tuple[int, Callable[[bytes, int], int]]:
    """Bytes and reader of a fractional-seconds part (as the library computes it)."""
    n = (fsp + 1) // 2
    scale: int = 10 ** (6 - fsp)

    def micro(data: bytes, off: int) -> int:
        if not n:
            return 0
        v = int.from_bytes(data[off : off + n], "big")
        if fsp % 2:
            v //= 10
        return v * scale

    return n, micro


def _date(data: bytes, off: int) -> tuple[Text, int]:
    v = int.from_bytes(data[off : off + 3], "little")
    year, month, day = v >> 9, (v >> 5) & 15, v & 31
    if not (year and month and day):
        return "0000-00-00", off + 3  # a zero date: the conversion quarantines it
    return dt.date(year, month, day).isoformat(), off + 3


def _datetime2(fsp: int) -> Reader:
    n, micro = _fsp(fsp)

    def read(data: bytes, off: int) -> tuple[Text, int]:
        v = int.from_bytes(data[off : off + 5], "big")
        ym = (v >> 22) & ((1 << 17) - 1)
        try:
            t = dt.datetime(
                ym // 13, ym % 13, (v >> 17) & 31, (v >> 12) & 31, (v >> 6) & 63, v & 63
            )
        except ValueError:
            return "0000-00-00 00:00:00", off + 5 + n
        us = micro(data, off + 5)
        if us > 0:
            t = t.replace(microsecond=us)
        return t.isoformat(sep=" "), off + 5 + n

    return read


def _timestamp2(fsp: int) -> Reader:
    n, micro = _fsp(fsp)

    def read(data: bytes, off: int) -> tuple[Text, int]:
        secs = int.from_bytes(data[off : off + 4], "big")
        t = (_UTC_EPOCH + dt.timedelta(seconds=secs)).replace(tzinfo=None)
        us = micro(data, off + 4)
        if us > 0:
            t = t.replace(microsecond=us)
        if t == _EPOCH:
            return "0000-00-00 00:00:00+00", off + 4 + n
        return t.isoformat(sep=" ") + "+00", off + 4 + n

    return read


def _encoding(col: Any) -> str | None:
    """The Python codec of a string column's character set as the library decodes it
    (``binary``: bytes, shown as hex), or None (not one Python knows: the library's)."""
    import codecs

    from pymysqlreplication.row_event import RowsEvent

    name = getattr(col, "character_set_name", None)
    if not name:
        return None
    if name.lower() == "binary":
        return "binary"
    encoding = RowsEvent.charset_to_encoding(name)
    try:
        codecs.lookup(encoding)
    except LookupError:
        return None
    return str(encoding)


def reader_for(col: Any) -> Reader | None:
    """The reader of one table-map column (the library's), or None (not handled here)."""
    from pymysqlreplication.constants import FIELD_TYPE as F

    t = col.type
    u = bool(col.unsigned)
    fixed = {
        F.TINY: "<B" if u else "<b",
        F.SHORT: "<H" if u else "<h",
        F.LONG: "<I" if u else "<i",
        F.LONGLONG: "<Q" if u else "<q",
    }
    if t in fixed:
        return _int(fixed[t])
    if t == F.INT24:
        return _int24(u)
    if t == F.DOUBLE:
        return _double
    if t == F.FLOAT:
        return _float
    if t == F.NEWDECIMAL:
        return _decimal(col.precision, col.decimals)
    if t == F.DATE:
        return _date
    if t == F.DATETIME2:
        return _datetime2(col.fsp)
    if t == F.TIMESTAMP2:
        return _timestamp2(col.fsp)
    if t in (F.VARCHAR, F.STRING, F.BLOB):
        encoding = _encoding(col)
        if encoding is None:
            return None
        prefix = 2 if t != F.BLOB and col.max_length > 255 else 1
        return _string(col.length_size if t == F.BLOB else prefix, encoding)
    return None


class RowDecoder:
    """Decodes the row images of one table map's rows events into lists of texts."""

    def __init__(self, readers: list[Reader]) -> None:
        self.readers = readers
        self.nbytes = (len(readers) + 7) // 8

    def row(self, data: bytes, off: int) -> tuple[list[Text], int]:
        nulls = data[off : off + self.nbytes]
        off += self.nbytes
        out: list[Text] = []
        for i, read in enumerate(self.readers):
            if nulls[i >> 3] & (1 << (i & 7)):
                out.append(None)
            else:
                v, off = read(data, off)
                out.append(v)
        return out, off

    def rows(self, data: bytes, update: bool) -> list[list[Text]]:
        """Every row image of a payload (updates: before, after, before, after, …)."""
        out = []
        off = 0
        end = len(data)
        while off < end:
            values, off = self.row(data, off)
            out.append(values)
        if off != end or (update and len(out) % 2):
            raise ValueError("a rows event does not end where its last row image does")
        return out


def decoder_for(columns: list[Any]) -> RowDecoder | None:
    """A decoder of the table map's rows events, or None (the library decodes them)."""
    readers = [reader_for(c) for c in columns]
    if any(r is None for r in readers):
        return None
    return RowDecoder([r for r in readers if r is not None])


def payload(ev: Any) -> bytes | None:
    """The row images of a rows event the library has not decoded yet (None: partial row
    images or an event the library could not place)."""
    n = getattr(ev, "number_of_columns", None)
    if not getattr(ev, "complete", True) or n is None:
        return None
    full = (1 << n) - 1
    for name in ("columns_present_bitmap", "columns_present_bitmap2"):
        bitmap = getattr(ev, name, None)
        if bitmap is not None and int.from_bytes(bytes(bitmap), "little") & full != full:
            return None
    return bytes(ev.packet.read(ev.event_size - ev.packet.read_bytes))
