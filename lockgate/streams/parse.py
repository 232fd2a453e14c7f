"""Vectorised parse of a micro-batch of JSON messages with an explicit Arrow schema.

All messages are parsed together as NDJSON by Arrow's JSON reader. When that fails (one bad
message spoils the block), the reader's error names the bad row: the rows before it are
parsed again together, that message is rejected with the reader's reason, and parsing goes
on after it — about two parses of the batch however many messages are bad. An error without
a row falls back to bisecting. No message is ever dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from sqlglot import exp

from lockgate.engine.base import Engine
from lockgate.sql import ident


@dataclass(frozen=True)
class Rejected:
    """A message that did not parse: its index in the batch and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class Parsed:
    """The rows that parsed (``rows[i]``: batch index of row ``i``, int64) and the rejects."""

    table: pa.Table
    rows: pa.Array
    rejected: list[Rejected]

    @property
    def indexes(self) -> list[int]:
        """``rows`` as a list."""
        return self.rows.to_pylist()  # type: ignore[no-any-return]


def arrow_schema(con: Engine, columns: Mapping[str, str]) -> pa.Schema:
    """The Arrow schema the engine gives the declared ``columns`` (name → SQL type)."""
    casts = [
        exp.alias_(exp.cast(exp.null(), exp.DataType.build(t, dialect="duckdb")), ident(c))
        for c, t in columns.items()
    ]
    return con.arrow_schema(exp.select(*casts))


@dataclass
class _Out:
    """What parsing collects: tables that parsed, their batch indexes, the rejects."""

    parts: list[pa.Table]
    indexes: list[int]
    rejected: list[Rejected]

    def ok(self, table: pa.Table, idx: list[int]) -> None:
        self.parts.append(table)
        self.indexes.extend(idx)


def parse_json_batch(
    payloads: Sequence[bytes],
    schema: pa.Schema,
    max_bytes: int,
    con: Engine | None = None,
    *,
    expect_bad: bool = False,
) -> Parsed:
    """Parse ``payloads`` (one JSON object each) into a table of ``schema``; fields not in
    the schema are ignored, missing ones are NULL.

    Fast path: one Arrow parse of the whole batch. When it fails, messages that do not start
    with ``{`` and end with ``}`` are rejected (one vectorised pass) and the rest is parsed
    again; if that fails too, ``con`` (if given) tells which messages are not JSON objects
    (``json_valid``, one pass), and what still fails (a value of the wrong type) is found by
    the row scan. ``expect_bad`` (the previous batch had bad messages) skips the
    fast path's attempt."""
    n = len(payloads)
    if not n:
        return Parsed(schema.empty_table(), _rows([]), [])
    opts = _options(schema, max_bytes)
    data = b"\n".join(payloads)
    one_line = data.count(b"\n") == n - 1 and data.count(b"\r") == 0
    if not expect_bad and one_line:
        lens = list(map(len, payloads))
        if max(lens) <= max_bytes and min(lens):
            whole = _read_joined(data, n, opts)
            if isinstance(whole, pa.Table):  # the common case: the batch parses in one go
                return _utf8_checked(Parsed(whole, _all_rows(n), []))
    # vectorised over one Arrow array of the messages: sizes, "{…}" shape, then one parse
    arr = pa.array(payloads, pa.binary())
    rejected, keep = _precheck(payloads, pc.binary_length(arr), max_bytes)
    if not one_line:  # NDJSON: one message per line
        arr = pc.replace_substring(pc.replace_substring(arr, "\n", " "), "\r", " ")
    # cheap first: a JSON object starts with "{" and ends with "}" (truncated and non-JSON
    # messages, the usual bad ones); then the Arrow parse; only if that still fails, one
    # json_valid pass of the engine over the rest
    braced = _braced(arr)
    if braced is not None:
        bad = pc.and_(keep, pc.invert(braced))
        if pc.any(bad).as_py():
            reason = "parse: not a JSON object"
            rejected.extend(Rejected(j, reason) for j in pc.indices_nonzero(bad).to_pylist())
            keep = pc.and_(keep, braced)
    rows = pc.indices_nonzero(keep).cast(pa.int64())
    good = arr.filter(keep)
    whole = _read_array(good, opts) if len(good) else schema.empty_table()
    if isinstance(whole, pa.Table):
        rejected.sort(key=lambda r: r.index)
        return _utf8_checked(Parsed(whole, rows, rejected))
    ok: list[int] = rows.to_pylist()
    lines: list[bytes] = good.to_pylist()
    if con is not None:
        ok, lines = _drop_bad(_json_objects(con, lines), ok, lines, rejected)
        whole = _read(lines, opts) if lines else schema.empty_table()
    out = _Out([], [], rejected)
    if isinstance(whole, pa.Table):
        out.ok(whole, ok)
    else:  # a failing parse costs the rest of its input: scan in bounded windows
        for w in range(0, len(lines), _WINDOW):
            window = slice(w, w + _WINDOW)
            _scan(lines[window], ok[window], opts, out)
    table = pa.concat_tables(out.parts) if out.parts else schema.empty_table()
    rejected.sort(key=lambda r: r.index)
    return _utf8_checked(Parsed(table, _rows(out.indexes), rejected))


def _rows(indexes: list[int]) -> pa.Array:
    return pa.array(indexes, pa.int64())


def _all_rows(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64()) if n > 64 else _rows(list(range(n)))


def _read_array(lines: pa.Array, opts: _Opts) -> pa.Table | pa.ArrowInvalid:
    """:func:`_read` of an Arrow binary array, joined by the engine (no Python bytes)."""
    one = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    buf = pc.binary_join(one, b"\n")[0].as_buffer()
    return _read_joined(buf, len(lines), opts)


def _utf8_checked(parsed: Parsed) -> Parsed:
    """Arrow's JSON reader does not check that strings are UTF-8: a message with such
    bytes inside a string is rejected here (one full validation of the batch; row by row
    only when it fails), not left to fail the batch later, again at every restart."""
    table = parsed.table
    try:
        table.validate(full=True)
        return parsed
    except pa.ArrowInvalid:
        pass
    good = [_valid(table.slice(i, 1)) for i in range(table.num_rows)]
    indexes = parsed.indexes
    bad = [
        Rejected(indexes[i], "parse: a string is not valid UTF-8")
        for i, ok in enumerate(good)
        if not ok
    ]
    mask = pa.array(good, pa.bool_())
    rejected = sorted([*parsed.rejected, *bad], key=lambda r: r.index)
    return Parsed(table.filter(mask), parsed.rows.filter(mask), rejected)


def _valid(row: pa.Table) -> bool:
    try:
        row.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _options(schema: pa.Schema, max_bytes: int) -> _Opts:
    block = max(1 << 22, 2 * max_bytes + 2)
    return (
        pajson.ReadOptions(block_size=block, use_threads=False),
        pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )


_JSON_RELATION = "__lg_stream_json"


def _precheck(
    payloads: Sequence[bytes], lens: pa.Array, max_bytes: int
) -> tuple[list[Rejected], pa.BooleanArray]:
    """Reject too large and empty messages; per message, whether it is still in."""
    large = pc.indices_nonzero(pc.greater(lens, max_bytes)).to_pylist()
    short = pc.indices_nonzero(pc.less(lens, 16)).to_pylist()
    empty = [i for i in short if not payloads[i].strip()]
    rejected = [Rejected(i, f"too large: {len(payloads[i])} bytes > {max_bytes}") for i in large]
    rejected += [Rejected(i, "empty message") for i in empty]
    if not rejected:
        return rejected, pa.repeat(pa.scalar(True), len(payloads))
    out = pa.array([r.index for r in rejected], pa.int64())
    return rejected, pc.invert(pc.is_in(pa.array(range(len(payloads)), pa.int64()), value_set=out))


def _drop_bad(
    objects: pa.BooleanArray | None, ok: list[int], lines: list[bytes], rejected: list[Rejected]
) -> tuple[list[int], list[bytes]]:
    """Reject the lines ``objects`` says are not JSON objects; the others."""
    if objects is None or pc.all(objects).as_py():
        return ok, lines
    bad = pc.indices_nonzero(pc.invert(objects)).to_pylist()
    rejected.extend(Rejected(ok[j], "parse: not a JSON object") for j in bad)
    keep = pc.indices_nonzero(objects).to_pylist()
    return [ok[j] for j in keep], [lines[j] for j in keep]


def _braced(lines: pa.Array) -> pa.BooleanArray | None:
    """Per message: does it start with ``{`` and end with ``}`` (JSON whitespace aside) —
    what every JSON object does (None: not UTF-8 somewhere; the engine's pass decides)."""
    if not len(lines):
        return None
    try:
        text = lines.cast(pa.string())
    except pa.ArrowInvalid:
        return None
    t = pc.utf8_trim(text, characters=" \t\r\n")
    return pc.fill_null(pc.and_(pc.starts_with(t, "{"), pc.ends_with(t, "}")), False)


def _json_objects(con: Engine, lines: Sequence[bytes]) -> pa.BooleanArray | None:
    """Per message: is it a JSON object (``json_valid`` + ``json_type``, one vectorised
    query); None when the engine cannot tell (the row scan decides then)."""
    try:
        text = pa.array(lines, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:  # not UTF-8 somewhere: the row scan finds it
        return None
    p = exp.column("p")
    valid = exp.Anonymous(this="json_valid", expressions=[p])
    # valid JSON that starts with "{" is an object (one JSON parse, not two)
    first = exp.func("left", exp.func("ltrim", p), exp.Literal.number(1))
    is_object = exp.EQ(this=first, expression=exp.Literal.string("{"))
    case = exp.Case(ifs=[exp.If(this=valid, true=is_object)], default=exp.false())
    q = exp.select(exp.func("coalesce", case, exp.false()).as_("ok")).from_(_JSON_RELATION)
    try:
        con.register_arrow(_JSON_RELATION, pa.table({"p": text}))
        try:
            ok = con.arrow(q).column("ok")
        finally:
            con.unregister(_JSON_RELATION)
    except Exception:
        return None
    out = ok.combine_chunks()
    return out if len(out) == len(lines) else None


_ROW = re.compile(r" in row (\d+)$")
#: messages parsed together while looking for bad ones
_WINDOW = 2048
_Opts = tuple[pajson.ReadOptions, pajson.ParseOptions]


def _read(lines: Sequence[bytes], opts: _Opts) -> pa.Table | pa.ArrowInvalid:
    """The parsed rows, or the reader's error (also when a message gave more than one row).
    One block holds the whole input, so the error's row is the message's position."""
    return _read_joined(b"\n".join(lines), len(lines), opts)


def _read_joined(data: bytes | pa.Buffer, n: int, opts: _Opts) -> pa.Table | pa.ArrowInvalid:
    read = pajson.ReadOptions(block_size=max(len(data) + 1, opts[0].block_size), use_threads=False)
    try:
        table = pajson.read_json(pa.BufferReader(data), read, opts[1])
    except pa.ArrowInvalid as err:
        return err
    if table.num_rows != n:
        return pa.ArrowInvalid(f"{n} message(s) gave {table.num_rows} row(s)")
    return table.select(opts[1].explicit_schema.names)


def _scan(lines: list[bytes], idx: list[int], opts: _Opts, out: _Out) -> None:
    """Parse all; on an error at row ``n`` keep rows before it (parsed again), reject row
    ``n`` and go on after it: about two parses of the batch whatever the number of bad
    messages. An error without a row falls back to bisecting."""
    start = 0
    while start < len(lines):
        table = _read(lines[start:], opts)
        if isinstance(table, pa.Table):
            out.ok(table, idx[start:])
            return
        m = _ROW.search(str(table))
        if m is None or int(m.group(1)) >= len(lines) - start:
            _bisect(lines[start:], idx[start:], opts, out)
            return
        bad = start + int(m.group(1))
        if isinstance(_read(lines[bad : bad + 1], opts), pa.Table):  # not the culprit alone
            _bisect(lines[start:], idx[start:], opts, out)
            return
        _bisect(lines[start:bad], idx[start:bad], opts, out)
        out.rejected.append(Rejected(idx[bad], _reason(table)))
        start = bad + 1


def _bisect(lines: list[bytes], idx: list[int], opts: _Opts, out: _Out) -> None:
    if not lines:
        return
    table = _read(lines, opts)
    if isinstance(table, pa.Table):
        out.ok(table, idx)
    elif len(lines) == 1:
        out.rejected.append(Rejected(idx[0], _reason(table)))
    else:
        mid = len(lines) // 2
        _bisect(lines[:mid], idx[:mid], opts, out)
        _bisect(lines[mid:], idx[mid:], opts, out)


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"parse: {text[:300]}"
