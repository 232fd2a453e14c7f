"""Record-level helpers shared by file formats, all executed inside DuckDB.

* :func:`typed_projection` — apply declared/inferred types with ``TRY_CAST``: rows where
  every value converts go to the staging table, the others to the rejects table with a
  reason naming each failing column.
* :func:`stage_json_lines` — the slow path for JSON/NDJSON files that a strict
  ``read_json`` refused: each NDJSON file is re-read as lines (DuckDB's CSV reader with a
  single ``JSON`` column and a delimiter that cannot occur in valid JSON), so malformed
  lines and invalid UTF-8 become DuckDB CSV rejects with exact line numbers, good lines are
  numbered with ``WITH ORDINALITY`` (corrected for the rejected lines), and non-object
  values are rejected. A JSON-array file is read element by element; if it does not parse
  at all, every line of it is rejected with the parser's message.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from lockgate.sources.base import table_columns
from lockgate.sql import ident

if TYPE_CHECKING:
    import duckdb

    pass

log = logging.getLogger(__name__)

#: given the staged columns, the cursor filter and its parameters (or None)
WhereFn = Callable[[dict[str, str]], tuple[exp.Expr | None, list[object]]]

# A valid JSON text never contains a raw control character (RFC 8259 requires them to be
# escaped inside strings), so splitting lines on \x01 never splits a valid record.
_LINE_DELIM = "\x01"

# json_group_structure leaf types → staging types (nested values stay JSON)
_STRUCTURE_TYPES = {
    "UBIGINT": "BIGINT",
    "BIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "VARCHAR": "VARCHAR",
    "NULL": "VARCHAR",
}


@dataclass(frozen=True)
class TypedField:
    """One output column: ``typed`` (NULL when conversion failed) computed from ``raw``."""

    name: str
    raw: exp.Expr
    typed: exp.Expr
    type: str


def tbl(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


def temp_name(kind: str) -> str:
    return f"_lg_{kind}_{uuid.uuid4().hex[:12]}"


def drop(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.execute(exp.Drop(tables=[tbl(name)], kind="TABLE", exists=True).sql("duckdb"))


def _str(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "VARCHAR")


#: longest value quoted in a reject reason (characters); the raw record holds the rest
MAX_REASON_VALUE = 200


def _shorten(value: exp.Expr) -> exp.Expr:
    """``value`` cut to :data:`MAX_REASON_VALUE` characters, ``…`` marking a cut."""
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(
                    this=exp.func("length", value.copy()),
                    expression=exp.Literal.number(MAX_REASON_VALUE),
                ),
                true=exp.DPipe(
                    this=exp.func("left", value.copy(), exp.Literal.number(MAX_REASON_VALUE)),
                    expression=exp.Literal.string("…"),
                    safe=True,
                ),
            )
        ],
        default=value.copy(),
    )


def _concat(*parts: exp.Expr) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.DPipe(this=out, expression=p, safe=True)
    return out


def typed_projection(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    table: str,
    rejects: str,
    fields: Sequence[TypedField],
    passthrough: Sequence[str],
    file_expr: exp.Expr,
    line_expr: exp.Expr,
    prefix_expr: exp.Expr,
    raw_record: exp.Expr,
    where: WhereFn,
    order: Sequence[str] = (),
) -> None:
    """Create ``table`` from relation ``source`` with ``fields`` converted; rows where a
    non-NULL raw value does not convert go to ``rejects`` instead. ``order``: the output
    column order (default: fields, then passthrough)."""
    oks = [
        exp.or_(
            exp.Is(this=f.raw.copy(), expression=exp.Null()),
            exp.not_(exp.Is(this=f.typed.copy(), expression=exp.Null())),
        )
        for f in fields
    ]
    all_ok = exp.and_(*oks) if oks else exp.true()
    out: dict[str, exp.Expr] = {f.name: exp.alias_(f.typed.copy(), ident(f.name)) for f in fields}
    out.update({c: exp.column(ident(c)) for c in passthrough})
    inner = exp.select(
        *(out[c] for c in order or out),
        exp.alias_(all_ok.copy(), "__lg_ok"),
    ).from_(tbl(source))
    outer = exp.select(exp.Star(**{"except_": [exp.column("__lg_ok")]})).from_(
        inner.subquery("src")
    )
    cond, params = where(table_columns(con, outer))
    good = outer.where(exp.column("__lg_ok"))
    if cond is not None:
        good = good.where(cond)
    con.execute(
        exp.Create(this=tbl(table), kind="TABLE", replace=True, expression=good).sql("duckdb"),
        params,
    )
    if not fields:
        return
    problems = [
        exp.Case(
            ifs=[
                exp.If(
                    this=exp.not_(ok.copy()),
                    true=_concat(
                        exp.Literal.string(f"column '{f.name}': cannot convert '"),
                        _shorten(_str(f.raw.copy())),
                        exp.Literal.string(f"' to {f.type}"),
                    ),
                )
            ]
        )
        for f, ok in zip(fields, oks, strict=True)
    ]
    reason = _concat(
        prefix_expr.copy(),
        exp.Literal.string(": "),
        exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string("; "), *problems]),
    )
    bad = exp.select(file_expr, line_expr, raw_record, reason).from_(tbl(source))
    bad = bad.where(exp.not_(all_ok))
    con.execute(exp.insert(bad, tbl(rejects)).sql("duckdb"))


def json_pointer(key: str) -> exp.Literal:
    """RFC 6901 pointer to a top-level key (``/a~1b`` for ``a/b``): dots stay literal."""
    return exp.Literal.string("/" + key.replace("~", "~0").replace("/", "~1"))


def _json_fn(name: str, j: exp.Expr, key: str) -> exp.Expr:
    """``name(j, '/key')`` exactly as written (sqlglot would turn the pointer into a path)."""
    return exp.Anonymous(this=name, expressions=[j.copy(), json_pointer(key)])


def _read_lines(con: duckdb.DuckDBPyConnection, path: Path, max_line_size: int) -> tuple[str, str]:
    """Read ``path`` as lines into temp tables ``(good: line, v VARCHAR)`` (blank lines
    left out) and ``(bad: line, raw, error_type, error_message)`` (lines the reader
    rejected: invalid UTF-8, too long); ``line`` is the physical 1-based line number.

    Lines are read as VARCHAR, not JSON: with a JSON column DuckDB's CSV reader was seen
    (2.0.0) to lose a good line next to a rejected one; as VARCHAR every line is either
    emitted (blank → NULL) or rejected, which the numbering below relies on."""
    raw, good, errs, scans = (temp_name(k) for k in ("raw", "lines", "lerr", "lscan"))
    reader = exp.func(
        "read_csv",
        exp.Literal.string(str(path)),
        *(
            exp.PropertyEQ(this=exp.to_identifier(k), expression=v)
            for k, v in (
                (
                    "columns",
                    exp.Struct(
                        expressions=[
                            exp.PropertyEQ(
                                this=exp.Literal.string("v"),
                                expression=exp.Literal.string("VARCHAR"),
                            )
                        ]
                    ),
                ),
                ("delim", exp.Literal.string(_LINE_DELIM)),
                ("quote", exp.Literal.string("")),
                ("escape", exp.Literal.string("")),
                ("header", exp.false()),
                ("auto_detect", exp.false()),
                ("max_line_size", exp.Literal.number(max_line_size)),
                ("store_rejects", exp.true()),
                ("rejects_table", exp.Literal.string(errs)),
                ("rejects_scan", exp.Literal.string(scans)),
            )
        ),
    )
    ordinal = exp.TableAlias(this=exp.to_identifier("t"), columns=[ident("v"), ident("o")])
    src = exp.Table(this=reader, alias=ordinal, ordinality=True)
    bad = temp_name("lbad")
    try:
        create_temp(con, raw, exp.select("v", "o").from_(src))
        # ordinality counts emitted rows only: the CSV reader's rejects table has the true
        # line numbers of the skipped lines, from which the others are recovered
        create_temp(con, good, exp.replace_tables(_NUMBER_LINES, {"__raw": raw, "__errs": errs}))
        create_temp(
            con,
            bad,
            exp.select(
                exp.cast(exp.column("line"), "BIGINT").as_("line"),
                # the reader may prefix the raw line with the preceding blank line(s)
                exp.func("ltrim", exp.column("csv_line"), exp.Literal.string("\r\n")).as_("raw"),
                _str(exp.column("error_type")).as_("error_type"),
                exp.column("error_message"),
            ).from_(tbl(errs)),
        )
    except BaseException:
        drop(con, good, bad)
        raise
    finally:
        drop(con, raw, errs, scans)
    return good, bad


# Rejected line i (in line order) had ``line_i - i`` emitted rows before it, so the emitted
# row with ordinality ``o`` is preceded by every reject with ``line_i - i < o``: add their
# count. Blank lines are emitted as NULL (and numbered) and dropped after numbering, as are
# lines of only whitespace (not records either, as for DuckDB's own NDJSON reader).
_NUMBER_LINES = sqlglot.parse_one(
    """
    SELECT CAST(r.o + COALESCE(k.cnt, 0) AS BIGINT) AS line, r.v
    FROM __raw AS r
    ASOF LEFT JOIN (
      SELECT gb, MAX(i) AS cnt
      FROM (
        SELECT CAST(line AS BIGINT) - ROW_NUMBER() OVER (ORDER BY line) AS gb,
               ROW_NUMBER() OVER (ORDER BY line) AS i
        FROM __errs
      )
      GROUP BY gb
    ) AS k ON r.o > k.gb
    WHERE r.v IS NOT NULL AND NOT regexp_full_match(r.v, '\\s*')
    """,
    dialect="duckdb",
)


def create_temp(
    con: duckdb.DuckDBPyConnection, name: str, query: exp.Expr, kind: str = "TABLE"
) -> None:
    """``CREATE OR REPLACE TEMPORARY <kind> name AS query``."""
    con.execute(
        exp.Create(
            this=tbl(name),
            kind=kind,
            replace=True,
            expression=query,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ).sql("duckdb")
    )


def _line_reason() -> exp.Expr:
    """Reason for a line the line reader rejected (``line``, ``error_type``)."""
    return sqlglot.parse_one(
        """
        'line ' || line || ': ' || CASE
          WHEN error_type = 'INVALID ENCODING'
            THEN 'invalid UTF-8 byte sequence (JSON files must be UTF-8)'
          WHEN error_type = 'LINE SIZE OVER MAXIMUM'
            THEN 'record longer than options.maximum_object_size'
          ELSE lower(error_type) || ': ' || error_message
        END
        """,
        dialect="duckdb",
    )


def _first_non_space_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf")
    stripped = head.lstrip()
    return stripped[:1]


def stage_json_lines(
    con: duckdb.DuckDBPyConnection,
    *,
    table: str,
    rejects: str,
    files: Sequence[tuple[Path, str]],
    ndjson_only: bool,
    declared: dict[str, str] | None,
    max_line_size: int,
    where: WhereFn,
    hints: Mapping[str, str] | None = None,
) -> None:
    """Stage JSON files record by record, rejecting bad records (see module docstring).

    ``files``: (absolute path, name to show in rejects). ``hints``: DuckDB's inferred
    types (the strict read's), used for string columns (dates, timestamps…) so a file
    gets the same types whether or not one of its records is bad.
    """
    objs = temp_name("objs")
    create_temp(
        con,
        objs,
        sqlglot.parse_one(
            "SELECT CAST(NULL AS VARCHAR) AS f, CAST(NULL AS BIGINT) AS line, "
            "CAST(NULL AS BIGINT) AS rec, CAST(NULL AS JSON) AS j WHERE FALSE",
            dialect="duckdb",
        ),
    )
    try:
        for path, name in files:
            one = _OneFile(path, name, objs, rejects, max_line_size)
            if not ndjson_only and _first_non_space_byte(path) == b"[":
                _array_file(con, one)
            else:
                _ndjson_file(con, one)
        types = _reject_unusable_keys(con, objs, rejects, declared)
        if not declared:
            types = {k: _string_hint(t, (hints or {}).get(k)) for k, t in types.items()}
        names = _column_names(types)
        j = exp.column("j")
        fields = []
        for key, typ in types.items():
            col = names[key]
            dt = exp.DataType.build(typ, dialect="duckdb")
            # Anonymous: sqlglot rewrites json_extract(j, '/k') into j -> '$."/k"' (NULL)
            if dt.is_type(exp.DataType.Type.JSON):
                raw = _json_fn("json_extract", j, key)
                typed: exp.Expr = raw.copy()
            elif dt.is_type(*exp.DataType.NESTED_TYPES):
                raw = _json_fn("json_extract", j, key)
                typed = exp.TryCast(this=raw.copy(), to=dt)
            else:
                raw = _json_fn("json_extract_string", j, key)
                typed = exp.TryCast(this=raw.copy(), to=dt)
            fields.append(TypedField(name=col, raw=raw, typed=typed, type=typ))
        if not fields:
            fields = [
                TypedField(
                    name="column0",
                    raw=exp.Null(),
                    typed=exp.cast(exp.Null(), "VARCHAR"),
                    type="VARCHAR",
                )
            ]
        prefix = _record_prefix()
        typed_projection(
            con,
            source=objs,
            table=table,
            rejects=rejects,
            fields=fields,
            passthrough=[],
            file_expr=exp.column("f"),
            line_expr=_line_or_record(),
            prefix_expr=prefix,
            raw_record=_str(j.copy()),
            where=where,
        )
    finally:
        drop(con, objs)


def _line_or_record() -> exp.Expr:
    """The reject's ``_lg_line``: the line (NDJSON) or the element number (JSON array)."""
    return exp.func("coalesce", exp.column("line"), exp.column("rec"))


def _string_hint(typ: str, hint: str | None) -> str:
    """A string column takes DuckDB's inferred type (DATE, TIMESTAMP, UUID…) if any."""
    if typ != "VARCHAR" or hint is None or hint in ("NULL", "JSON", "VARCHAR"):
        return typ
    try:
        exp.DataType.build(hint, dialect="duckdb")
    except Exception:  # a type sqlglot cannot build: keep the text
        return typ
    return hint


def _record_prefix() -> exp.Expr:
    """``line N`` (NDJSON) or ``record N`` (element of a JSON array)."""
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.not_(exp.Is(this=exp.column("line"), expression=exp.Null())),
                true=_concat(exp.Literal.string("line "), _str(exp.column("line"))),
            )
        ],
        default=_concat(exp.Literal.string("record "), _str(exp.column("rec"))),
    )


def _reject_unusable_keys(
    con: duckdb.DuckDBPyConnection, objs: str, rejects: str, declared: dict[str, str] | None
) -> dict[str, str]:
    """Reject objects with a repeated key (which value is meant is ambiguous) and, when no
    columns are declared, with an empty key (it cannot be a column name); return the
    declared or inferred column types. One pass computes the reasons (``json_keys``
    parses every object), then the flagged rows move by rowid."""
    keys = exp.column("k")
    dup = exp.NEQ(
        this=exp.func("len", keys.copy()),
        expression=exp.func("len", exp.func("list_distinct", keys.copy())),
    )
    ifs = [exp.If(this=dup, true=exp.Literal.string("object has a duplicate key"))]
    if not declared:
        empty = exp.func("list_contains", keys.copy(), exp.Literal.string(""))
        ifs.append(
            exp.If(this=empty, true=exp.Literal.string('empty key "" cannot be a column name'))
        )
    reason = exp.Case(ifs=ifs)
    flagged = temp_name("flag")
    per_row = exp.select(exp.column("rowid").as_("r"), exp.alias_(reason, "why")).from_(
        exp.select("rowid", exp.alias_(exp.func("json_keys", exp.column("j")), "k"))
        .from_(tbl(objs))
        .subquery("o")
    )
    create_temp(
        con,
        flagged,
        exp.select("*")
        .from_(per_row.subquery("p"))
        .where(exp.not_(exp.Is(this=exp.column("why"), expression=exp.Null()))),
    )
    try:
        con.execute(
            exp.insert(
                exp.select(
                    exp.column("f"),
                    _line_or_record(),
                    _str(exp.column("j")),
                    _concat(_record_prefix(), exp.Literal.string(": "), exp.column("why")),
                )
                .from_(tbl(objs))
                .join(
                    tbl(flagged),
                    on=exp.EQ(
                        this=exp.column("rowid", objs, quoted=True), expression=exp.column("r")
                    ),
                )
                .order_by(exp.column("f"), exp.column("line"), exp.column("rec")),
                tbl(rejects),
            ).sql("duckdb")
        )
        in_flagged = exp.In(
            this=exp.column("rowid"), query=exp.select("r").from_(tbl(flagged)).subquery()
        )
        con.execute(exp.delete(tbl(objs), where=in_flagged).sql("duckdb"))
    finally:
        drop(con, flagged)
    return declared or _infer_types(con, objs)


def _column_names(types: dict[str, str]) -> dict[str, str]:
    """JSON key → column name: keys that differ only in case from an earlier one get a
    ``_1``, ``_2``… suffix (DuckDB names are case-insensitive), as ``read_json`` does."""
    taken: set[str] = set()
    out: dict[str, str] = {}
    for key in types:
        name, n = key, 0
        while name.lower() in taken:
            n += 1
            name = f"{key}_{n}"
        taken.add(name.lower())
        out[key] = name
    return out


def _infer_types(con: duckdb.DuckDBPyConnection, objs: str) -> dict[str, str]:
    """Column types from the structure of every good record (one aggregate; the result is
    the schema, not data)."""
    rows = con.execute(
        exp.select(exp.func("json_group_structure", exp.column("j"))).from_(tbl(objs)).sql("duckdb")
    ).fetchall()
    if not rows or rows[0][0] is None:
        return {}
    structure = json.loads(rows[0][0])
    if not isinstance(structure, dict):
        return {}
    return {
        str(k): _STRUCTURE_TYPES.get(v, "JSON") if isinstance(v, str) else "JSON"
        for k, v in structure.items()
    }


@dataclass(frozen=True)
class _OneFile:
    """One JSON file read record by record into ``objs`` (bad records into ``rejects``)."""

    path: Path
    name: str  # as shown in rejects
    objs: str
    rejects: str
    max_line_size: int


def _ndjson_file(con: duckdb.DuckDBPyConnection, one: _OneFile) -> None:
    path, name, objs, rejects = one.path, one.name, one.objs, one.rejects
    max_line_size = one.max_line_size
    good, bad = _read_lines(con, path, max_line_size)
    try:
        v = exp.column("v")
        jv = exp.TryCast(this=v.copy(), to=exp.DataType.build("JSON"))
        valid = exp.not_(exp.Is(this=jv.copy(), expression=exp.Null()))
        is_obj = exp.and_(
            valid.copy(),
            exp.EQ(
                this=exp.func("json_type", jv.copy()),
                expression=exp.Literal.string("OBJECT"),
            ),
        )
        con.execute(
            exp.insert(
                exp.select(exp.Literal.string(name), "line", exp.Null(), jv.copy())
                .from_(tbl(good))
                .where(is_obj.copy())
                # in line order: the numbering's ASOF join emits rows in any order, and "the
                # later copy of a key wins" reads the order of ``objs`` (its rowid)
                .order_by(exp.column("line")),
                tbl(objs),
            ).sql("duckdb")
        )
        what = exp.Case(
            ifs=[
                exp.If(
                    this=exp.not_(valid.copy()),
                    true=exp.Literal.string("malformed JSON"),
                )
            ],
            default=_concat(
                exp.Literal.string("not a JSON object (found "),
                exp.func("lower", exp.func("json_type", jv.copy())),
                exp.Literal.string(")"),
            ),
        )
        not_obj = (
            exp.select(
                exp.Literal.string(name),
                "line",
                "v",
                _concat(
                    exp.Literal.string("line "),
                    _str(exp.column("line")),
                    exp.Literal.string(": "),
                    what,
                ),
            )
            .from_(tbl(good))
            .where(exp.func("coalesce", exp.not_(is_obj), exp.true()))
        )
        enc = exp.select(exp.Literal.string(name), "line", "raw", _line_reason()).from_(tbl(bad))
        con.execute(
            exp.insert(
                exp.select("*")
                .from_(exp.union(not_obj, enc, distinct=False).subquery("u"))
                .order_by(exp.column("line")),
                tbl(rejects),
            ).sql("duckdb")
        )
    finally:
        drop(con, good, bad)


def _array_file(con: duckdb.DuckDBPyConnection, one: _OneFile) -> None:
    import duckdb

    path, name, objs, rejects = one.path, one.name, one.objs, one.rejects
    max_line_size = one.max_line_size
    reader = exp.func(
        "read_json",
        exp.Literal.string(str(path)),
        exp.PropertyEQ(this=exp.to_identifier("format"), expression=exp.Literal.string("array")),
        exp.PropertyEQ(this=exp.to_identifier("records"), expression=exp.false()),
        exp.PropertyEQ(
            this=exp.to_identifier("columns"),
            expression=exp.Struct(
                expressions=[
                    exp.PropertyEQ(
                        this=exp.Literal.string("v"), expression=exp.Literal.string("JSON")
                    )
                ]
            ),
        ),
    )
    ordinal = exp.TableAlias(this=exp.to_identifier("t"), columns=[ident("v"), ident("o")])
    src = exp.Table(this=reader, alias=ordinal, ordinality=True)
    elements = temp_name("elems")
    try:
        create_temp(con, elements, exp.select("v", "o").from_(src))
    except (duckdb.InvalidInputException, duckdb.ConversionException) as e:
        message = str(e).splitlines()[0]
        log.info("JSON file %s does not parse; rejecting all its lines: %s", name, message)
        _reject_whole_file(con, path, name, rejects, message, max_line_size)
        return
    try:
        # a ``null`` element may come through as SQL NULL: it is not an object either (a NULL
        # predicate would leave it in neither the records nor the rejects)
        is_obj = exp.Coalesce(
            this=exp.EQ(
                this=exp.func("json_type", exp.column("v")),
                expression=exp.Literal.string("OBJECT"),
            ),
            expressions=[exp.false()],
        )
        con.execute(
            exp.insert(
                exp.select(exp.Literal.string(name), exp.Null(), "o", "v")
                .from_(tbl(elements))
                .where(is_obj.copy())
                .order_by(exp.column("o")),  # in element order (see _ndjson_file)
                tbl(objs),
            ).sql("duckdb")
        )
        con.execute(
            exp.insert(
                exp.select(
                    exp.Literal.string(name),
                    exp.column("o"),
                    _str(exp.column("v")),
                    _concat(
                        exp.Literal.string("record "),
                        _str(exp.column("o")),
                        exp.Literal.string(": not a JSON object"),
                    ),
                )
                .from_(tbl(elements))
                .where(exp.not_(is_obj))
                .order_by("o"),
                tbl(rejects),
            ).sql("duckdb")
        )
    finally:
        drop(con, elements)


def _reject_whole_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    rejects: str,
    message: str,
    max_line_size: int,
) -> None:
    """Every line of an unparseable JSON file becomes a reject carrying the parser's error."""
    good, bad = _read_lines(con, path, max_line_size)
    try:
        reason = exp.Literal.string(f"file is not valid JSON ({message})")
        lines = exp.union(
            exp.select(exp.Literal.string(name), "line", "v", reason.copy()).from_(tbl(good)),
            exp.select(exp.Literal.string(name), "line", "raw", reason.copy()).from_(tbl(bad)),
            distinct=False,
        )
        con.execute(
            exp.insert(
                exp.select("*").from_(lines.subquery("u")).order_by(exp.column("line")),
                tbl(rejects),
            ).sql("duckdb")
        )
    finally:
        drop(con, good, bad)


def has_null_records(
    con: duckdb.DuckDBPyConnection, table: str, paths: exp.Array, opts: dict[str, object]
) -> bool:
    """Whether the files hold a record that is JSON ``null`` (``read_json(records=true)``
    reads it as a row of NULLs, like ``{}``). Only when the staged table has an all-NULL
    row — rare — are the files scanned again, as objects, to tell the two apart."""
    cols = [
        exp.column(c, quoted=True) for c in table_columns(con, exp.select("*").from_(tbl(table)))
    ]
    if not cols:
        return False
    all_null = exp.and_(*[exp.Is(this=c, expression=exp.Null()) for c in cols])
    row = con.execute(
        exp.select(exp.Literal.number(1)).from_(tbl(table)).where(all_null).limit(1).sql("duckdb")
    ).fetchone()
    if row is None:
        return False
    from lockgate.sources.files import named_arg  # one literal builder for all readers

    fmt = {k: v for k, v in opts.items() if k in ("format", "compression", "maximum_object_size")}
    objects = exp.func(
        "read_json_objects", paths.copy(), *(named_arg(k, v) for k, v in fmt.items())
    )
    not_object = exp.NEQ(
        this=exp.func("json_type", exp.column("json")), expression=exp.Literal.string("OBJECT")
    )
    found = con.execute(
        exp.select(exp.Literal.number(1)).from_(objects).where(not_object).limit(1).sql("duckdb")
    ).fetchone()
    return found is not None
