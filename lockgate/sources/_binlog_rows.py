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
from collections.abc import Callable, Sequence
from struct import Struct
from typing import Any

Text = str | None
Reader = Callable[[bytes, int], tuple[Text, int]]

_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_EPOCH = dt.datetime(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _int24(unsigned: bool) -> Reader:
    def read(data: bytes, off: int) -> tuple[Text, int]:
        v = int.from_bytes(data[off : off + 3], "little", signed=not unsigned)
        return str(v), off + 3

    return read


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


def _decimal_code(precision: int, scale: int, target: str) -> list[str]:
    """MySQL's binary DECIMAL (groups of 9 digits in 4 bytes, big-endian, the sign in the
    top bit, negative values with every bit inverted) into ``target``, as
    ``format(Decimal, 'f')`` prints the library's value: statements for the column's
    precision and scale (the groups unrolled), advancing ``off``."""
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
    lines = [
        f"v = _from(data[off:off + {size}], 'big')",
        f"if v & {top}:",
        f" v ^= {top}",
        " sign = ''",
        "else:",
        f" v = ~(v ^ {top}) & {everything}",
        " sign = '-'",
    ]
    terms, place = [], 1
    for k, (width, base) in enumerate(frac_groups):  # from the right: the last group first
        lines += [f"f{k} = v & {(1 << width) - 1}", f"v >>= {width}"]
        terms.append(f"f{k} * {place}" if place != 1 else f"f{k}")
        place *= base
    frac = " + ".join(terms) or "0"
    terms, place = [], 1
    for k, (width, base) in enumerate(int_groups):
        lines += [f"w{k} = v & {(1 << width) - 1}", f"v >>= {width}"]
        terms.append(f"w{k} * {place}" if place != 1 else f"w{k}")
        place *= base
    whole = " + ".join(terms) or "0"
    if scale:
        lines.append(f"{target} = sign + str({whole}) + '.' + str({frac}).rjust({scale}, '0')")
    else:
        lines.append(f"{target} = sign + str({whole})")
    lines.append(f"off += {size}")
    return lines


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
    try:
        return dt.date(year, month, day).isoformat(), off + 3
    except ValueError:  # an invalid date (ALLOW_INVALID_DATES): as zero, quarantined
        return "0000-00-00", off + 3


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


#: how one column is decoded in the compiled row reader: ("struct", format char, text
#: function name) for fixed-size numbers, ("string", length bytes, encoding), or ("call",
#: reader) for the rest
Spec = tuple[Any, ...]


def spec_for(col: Any) -> Spec | None:
    """How to decode one table-map column (the library's), or None (not handled here)."""
    from pymysqlreplication.constants import FIELD_TYPE as F

    t = col.type
    u = bool(col.unsigned)
    fixed = {
        F.TINY: "B" if u else "b",
        F.SHORT: "H" if u else "h",
        F.LONG: "I" if u else "i",
        F.LONGLONG: "Q" if u else "q",
    }
    if t in fixed:
        return ("struct", fixed[t], "str")
    if t == F.DOUBLE:
        return ("struct", "d", "repr")
    if t in (F.VARCHAR, F.STRING, F.BLOB):
        encoding = _encoding(col)
        if encoding is None:
            return None
        prefix = 2 if t != F.BLOB and col.max_length > 255 else 1
        return ("string", col.length_size if t == F.BLOB else prefix, encoding)
    if t == F.DATETIME2:
        return ("datetime2", col.fsp)
    if t == F.NEWDECIMAL:
        return ("decimal", col.precision, col.decimals)
    read = _reader(col)
    return None if read is None else ("call", read)


def _reader(col: Any) -> Reader | None:
    from pymysqlreplication.constants import FIELD_TYPE as F

    t = col.type
    if t == F.INT24:
        return _int24(bool(col.unsigned))
    if t == F.FLOAT:
        return _float
    if t == F.DATE:
        return _date
    if t == F.TIMESTAMP2:
        return _timestamp2(col.fsp)
    return None


class RowDecoder:
    """Decodes the row images of one table map's rows events into lists of texts, with one
    function compiled for the table (:func:`compile_rows`): no call per column, one
    ``struct.unpack_from`` per run of fixed-size numbers without a NULL."""

    def __init__(self, specs: list[Spec], keys: frozenset[int] = frozenset()) -> None:
        self.specs = specs
        self.source = compile_rows(specs, keys)
        namespace: dict[str, Any] = {
            "_from": int.from_bytes,
            "_ERR": _ERRORS,
            "_ZERO": "0000-00-00 00:00:00",
        }
        for i, spec in enumerate(specs):
            if spec[0] == "struct":
                namespace[f"U{i}"] = Struct("<" + spec[1]).unpack_from
            elif spec[0] == "string":
                namespace[f"E{i}"] = spec[2]
            elif spec[0] == "datetime2":
                namespace[f"DD{i}"], namespace[f"DF{i}"] = _texts(_date_part)
                namespace[f"TD{i}"], namespace[f"TF{i}"] = _texts(_time_part)
            elif spec[0] == "call":
                namespace[f"R{i}"] = spec[1]
        for start, end in _runs(specs):
            fmt = "<" + "".join(specs[k][1] for k in range(start, end))
            namespace[f"S{start}"] = Struct(fmt).unpack_from
        exec(compile(self.source, "<binlog rows>", "exec"), namespace)  # our own source
        self.rows: Callable[..., list[list[Text]]] = namespace["rows"]


def _runs(specs: list[Spec]) -> list[tuple[int, int]]:
    """[start, end) of each run of ≥ 2 adjacent fixed-size number columns."""
    out, i = [], 0
    while i < len(specs):
        j = i
        while j < len(specs) and specs[j][0] == "struct":
            j += 1
        if j - i >= 2:
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def _column(k: int, spec: Spec, pad: str) -> list[str]:
    """The statements decoding column ``k`` into ``v<k>`` (its NULL bit tested)."""
    if spec[0] == "struct":
        size = Struct("<" + spec[1]).size
        body = [f"v{k} = {spec[2]}(U{k}(data, off)[0])", f"off += {size}"]
    elif spec[0] == "string":
        n = spec[1]
        if n == 1:
            body = ["n = data[off]", "off += 1"]
        elif n == 2:
            body = ["n = data[off] | data[off + 1] << 8", "off += 2"]
        else:
            body = [f"n = _from(data[off:off + {n}], 'little')", f"off += {n}"]
        if spec[2] == "binary":
            body.append(f"v{k} = data[off:off + n].hex().upper()")
        elif _ascii_first(spec[2]):  # its codec is Python code: ASCII text skips it
            body.append("raw = data[off:off + n]")
            body.append(f"v{k} = raw.decode('ascii') if raw.isascii() else raw.decode(E{k}, _ERR)")
        else:
            body.append(f"v{k} = data[off:off + n].decode(E{k}, _ERR)")
        body.append("off += n")
    elif spec[0] == "datetime2":
        body = _datetime2_code(k, spec[1])
    elif spec[0] == "decimal":
        body = _decimal_code(spec[1], spec[2], f"v{k}")
    else:
        body = [f"v{k}, off = R{k}(data, off)"]
    return [f"{pad}if nb & {1 << k}:", f"{pad} v{k} = None", f"{pad}else:"] + [
        f"{pad} {line}" for line in body
    ]


def _datetime2_code(k: int, fsp: int) -> list[str]:
    """DATETIME2 (5 bytes big-endian: sign, year*13+month, day, hour, minute, second; then
    the fraction): the date and the time of day from caches of their texts (a batch has
    few distinct ones); an invalid or zero value is MySQL's zero datetime."""
    n = (fsp + 1) // 2
    out = [
        "v = _from(data[off:off + 5], 'big')",
        "dk = v >> 17 & 4194303",  # without the sign bit
        "tk = v & 131071",
        f"v{k} = (DD{k}.get(dk) or DF{k}(dk)) + (TD{k}.get(tk) or TF{k}(tk))",
    ]
    if n:
        scale = 10 ** (6 - fsp)
        out.append(f"us = _from(data[off + 5:off + {5 + n}], 'big')")
        if fsp % 2 or scale != 1:
            out.append(f"us = (us // 10) * {scale}" if fsp % 2 else f"us = us * {scale}")
        out += [
            f"if len(v{k}) != 19 or us >= 1000000:",
            f" v{k} = _ZERO",
            "elif us:",
            f" v{k} += f'.{{us:06d}}'",
        ]
    else:
        out += [f"if len(v{k}) != 19:", f" v{k} = _ZERO"]
    out.append(f"off += {5 + n}")
    return out


def _date_part(key: int) -> str:
    """``YYYY-MM-DD `` of DATETIME2's bits 17.. (year*13+month, day), or ``""``: invalid."""
    y, m = divmod(key >> 5, 13)
    try:
        return dt.date(y, m, key & 31).isoformat() + " "
    except ValueError:
        return ""


def _time_part(key: int) -> str:
    """``HH:MM:SS`` of DATETIME2's low 17 bits, or ``""``: invalid."""
    h, mi, sec = key >> 12, (key >> 6) & 63, key & 63
    return f"{h:02d}:{mi:02d}:{sec:02d}" if h < 24 and mi < 60 and sec < 60 else ""


def _texts(make: Callable[[int], str]) -> tuple[dict[int, str], Callable[[int], str]]:
    """A cache of ``make``'s texts and the function that fills it (bounded)."""
    cache: dict[int, str] = {}

    def fill(key: int) -> str:
        if len(cache) > 200_000:
            cache.clear()
        text = cache[key] = make(key)
        return text

    return cache, fill


def _ascii_first(encoding: str) -> bool:
    """``encoding`` reads every ASCII byte as that character, statelessly, and its decoder
    is not one of the C fast ones (UTF-8, latin-1, ASCII): worth trying ASCII first."""
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "iso8859-1", "ascii") or "2022" in name or name.startswith("utf"):
        return False
    ascii_bytes = bytes(range(128))
    try:
        return ascii_bytes.decode(encoding) == ascii_bytes.decode("ascii")
    except UnicodeDecodeError:
        return False


def compile_rows(specs: list[Spec], keys: frozenset[int] = frozenset()) -> str:
    """The source of ``rows(data, update, delete=False)``: every row image of a rows event's
    payload (updates: before, after, …) as lists of texts. With ``keys`` (the key columns'
    indexes), the images only ever used for their key — an update's before image, a
    delete's — get only those decoded (the other values are skipped: None)."""
    nbytes = (len(specs) + 7) // 8
    lines = [
        "def rows(data, update, delete=False):",
        " out = []",
        " append = out.append",
        " off = 0",
        " end = len(data)",
        " full = not (update or delete)",
        " i = 0",
        " while off < end:",
        "  nb = data[off]" if nbytes == 1 else f"  nb = _from(data[off:off + {nbytes}], 'little')",
        f"  off += {nbytes}",
    ]
    every = ", ".join(f"v{i}" for i in range(len(specs)))
    if keys:
        lines.append("  if full or (update and i & 1):")
        lines += _row(specs, "   ")
        lines.append(f"   append([{every}])")
        lines.append("  else:")
        for k, spec in enumerate(specs):
            lines += _column(k, spec, "   ") if k in keys else _skip(k, spec, "   ")
        only = ", ".join(f"v{i}" if i in keys else "None" for i in range(len(specs)))
        lines.append(f"   append([{only}])")
        lines.append("  i += 1")
    else:
        lines += _row(specs, "  ")
        lines.append(f"  append([{every}])")
    lines += [
        " if off != end or (update and len(out) % 2):",
        "  raise ValueError('a rows event does not end where its last row image does')",
        " return out",
    ]
    return "\n".join(lines) + "\n"


def _row(specs: list[Spec], pad: str) -> list[str]:
    """The statements decoding every column of a row image into ``v0``, ``v1``, …"""
    lines: list[str] = []
    runs = dict(_runs(specs))
    k = 0
    while k < len(specs):
        if k in runs:
            end = runs[k]
            mask = sum(1 << i for i in range(k, end))
            names = ", ".join(f"v{i}" for i in range(k, end))
            size = Struct("<" + "".join(specs[i][1] for i in range(k, end))).size
            convs = {specs[i][2] for i in range(k, end)}
            lines.append(f"{pad}if not nb & {mask}:")
            if len(convs) == 1:  # one C-level map over the unpacked run
                lines.append(f"{pad} {names} = map({convs.pop()}, S{k}(data, off))")
            else:
                lines.append(f"{pad} {names} = S{k}(data, off)")
                lines += [f"{pad} v{i} = {specs[i][2]}(v{i})" for i in range(k, end)]
            lines.append(f"{pad} off += {size}")
            lines.append(f"{pad}else:")
            for i in range(k, end):
                lines += _column(i, specs[i], pad + " ")
            k = end
        else:
            lines += _column(k, specs[k], pad)
            k += 1
    return lines


def _skip(k: int, spec: Spec, pad: str) -> list[str]:
    """The statements moving past column ``k``'s value (if not NULL) without decoding it."""
    if spec[0] == "struct":
        step = [f"off += {Struct('<' + spec[1]).size}"]
    elif spec[0] == "string":
        n = spec[1]
        length = "data[off]" if n == 1 else f"_from(data[off:off + {n}], 'little')"
        step = [f"off += {n} + {length}"]
    elif spec[0] == "decimal":
        step = [f"off += {_decimal_size(spec[1], spec[2])}"]
    elif spec[0] == "datetime2":
        step = [f"off += {5 + (spec[1] + 1) // 2}"]
    else:
        step = [f"_, off = R{k}(data, off)"]
    return [f"{pad}if not nb & {1 << k}:"] + [f"{pad} {line}" for line in step]


def _decimal_size(precision: int, scale: int) -> int:
    integral = precision - scale
    uint, ufrac = integral // 9, scale // 9
    cint, cfrac = integral - uint * 9, scale - ufrac * 9
    return _DIG2BYTES[cint] + uint * 4 + ufrac * 4 + _DIG2BYTES[cfrac]


def decoder_for(columns: list[Any], keys: Sequence[str] = ()) -> RowDecoder | None:
    """A decoder of the table map's rows events, or None (the library decodes them);
    ``keys``: the key columns' names (before images and deletes decode only those)."""
    specs = [spec_for(c) for c in columns]
    if not specs or any(s is None for s in specs):
        return None
    index = frozenset(i for i, c in enumerate(columns) if c.name in keys)
    if len(index) != len(keys):
        index = frozenset()  # a key is not in the log's columns: decode everything
    return RowDecoder([s for s in specs if s is not None], index)


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
