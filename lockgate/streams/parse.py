"""Vectorised parse of a micro-batch of JSON messages with an explicit Arrow schema.

All messages are parsed together as NDJSON by Arrow's JSON reader. When that fails (one bad
message spoils the block), one cheap pass rejects the messages that are not one JSON object
each, the rest is parsed together again, and if that still fails (a value of the wrong type)
the batch is bisected so only the bad messages are parsed alone and rejected with the
reader's reason: good messages keep being parsed in large chunks; no message is dropped.
"""

from __future__ import annotations

import io
import json
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
    parts: list[pa.Table] = []
    indexes: list[int] = []
    table = _read(lines, opts)
    if isinstance(table, pa.Table):
        parts.append(table)
        indexes.extend(ok)
    else:  # find the malformed ones in one cheap pass, bisect the rest (wrong types)
        lines, ok = _well_formed(lines, ok, rejected)
        _bisect(lines, ok, opts, parts, indexes, rejected)
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    rejected.sort(key=lambda r: r.index)
    return Parsed(table, indexes, rejected)


def _read(
    lines: list[bytes], opts: tuple[pajson.ReadOptions, pajson.ParseOptions]
) -> pa.Table | pa.ArrowInvalid:
    """The parsed rows, or the reader's error (also when a message gave more than one row)."""
    try:
        table = pajson.read_json(io.BytesIO(b"\n".join(lines)), *opts)
    except pa.ArrowInvalid as err:
        return err
    if table.num_rows != len(lines):
        return pa.ArrowInvalid(f"{len(lines)} message(s) gave {table.num_rows} row(s)")
    return table.select(opts[1].explicit_schema.names)


def _well_formed(
    lines: list[bytes], idx: list[int], rejected: list[Rejected]
) -> tuple[list[bytes], list[int]]:
    """The messages that are one JSON object each; the others are rejected."""
    keep_lines: list[bytes] = []
    keep_idx: list[int] = []
    for line, i in zip(lines, idx, strict=True):
        try:
            value = json.loads(line)
        except ValueError as err:
            rejected.append(Rejected(i, f"parse: malformed JSON: {err}"))
            continue
        if not isinstance(value, dict):
            rejected.append(Rejected(i, f"parse: not a JSON object ({type(value).__name__})"))
            continue
        keep_lines.append(line)
        keep_idx.append(i)
    return keep_lines, keep_idx


def _bisect(
    lines: list[bytes],
    idx: list[int],
    opts: tuple[pajson.ReadOptions, pajson.ParseOptions],
    parts: list[pa.Table],
    indexes: list[int],
    rejected: list[Rejected],
) -> None:
    if not lines:
        return
    table = _read(lines, opts)
    if isinstance(table, pa.Table):
        parts.append(table)
        indexes.extend(idx)
    elif len(lines) == 1:
        rejected.append(Rejected(idx[0], _reason(table)))
    else:
        mid = len(lines) // 2
        _bisect(lines[:mid], idx[:mid], opts, parts, indexes, rejected)
        _bisect(lines[mid:], idx[mid:], opts, parts, indexes, rejected)


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"parse: {text[:300]}"
