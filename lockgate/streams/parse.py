"""Vectorised parse of a micro-batch of JSON messages with an explicit Arrow schema.

All messages are parsed together as NDJSON by Arrow's JSON reader. When that fails (one bad
message spoils the block), the reader's error names the bad row: the rows before it are
parsed again together, that message is rejected with the reader's reason, and parsing goes
on after it — about two parses of the batch however many messages are bad. An error without
a row falls back to bisecting. No message is ever dropped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
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
    """The rows that parsed (``indexes[i]``: batch index of row ``i``) and the rejects."""

    table: pa.Table
    indexes: list[int]
    rejected: list[Rejected]


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


def parse_json_batch(payloads: Sequence[bytes], schema: pa.Schema, max_bytes: int) -> Parsed:
    """Parse ``payloads`` (one JSON object each) into a table of ``schema``; fields not in
    the schema are ignored, missing ones are NULL."""
    rejected: list[Rejected] = []
    ok: list[int] = []
    for i, p in enumerate(payloads):
        if len(p) > max_bytes:
            rejected.append(Rejected(i, f"too large: {len(p)} bytes > {max_bytes}"))
        elif not p.strip():
            rejected.append(Rejected(i, "empty message"))
        else:
            ok.append(i)
    block = max(1 << 22, 2 * max_bytes + 2)
    opts = (
        pajson.ReadOptions(block_size=block, use_threads=False),
        pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    lines = [payloads[i].replace(b"\n", b" ").replace(b"\r", b" ") for i in ok]
    out = _Out([], [], rejected)
    whole = _read(lines, opts)
    if isinstance(whole, pa.Table):  # the common case: the batch parses in one go
        out.ok(whole, ok)
    else:  # a failing parse costs the rest of its input: scan in bounded windows
        for w in range(0, len(lines), _WINDOW):
            window = slice(w, w + _WINDOW)
            _scan(lines[window], ok[window], opts, out)
    table = pa.concat_tables(out.parts) if out.parts else schema.empty_table()
    rejected.sort(key=lambda r: r.index)
    return Parsed(table, out.indexes, rejected)


_ROW = re.compile(r" in row (\d+)$")
#: messages parsed together while looking for bad ones
_WINDOW = 2048
_Opts = tuple[pajson.ReadOptions, pajson.ParseOptions]


def _read(lines: Sequence[bytes], opts: _Opts) -> pa.Table | pa.ArrowInvalid:
    """The parsed rows, or the reader's error (also when a message gave more than one row).
    One block holds the whole input, so the error's row is the message's position."""
    data = b"\n".join(lines)
    read = pajson.ReadOptions(block_size=max(len(data) + 1, opts[0].block_size), use_threads=False)
    try:
        table = pajson.read_json(io.BytesIO(data), read, opts[1])
    except pa.ArrowInvalid as err:
        return err
    if table.num_rows != len(lines):
        return pa.ArrowInvalid(f"{len(lines)} message(s) gave {table.num_rows} row(s)")
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
