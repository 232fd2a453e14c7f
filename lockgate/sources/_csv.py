"""CSV files, each read on its own and unioned by column name.

Every file is sniffed (``sniff_csv``: dialect, header, column names and types) and then
read with ``auto_detect=false`` and explicit ``columns``: the file's header names are
matched to the dataset's columns ignoring case and surrounding spaces (a BOM is dropped by
DuckDB), declared types are applied whatever the column order of the file, a column only
some files have is NULL in the others, and DuckDB's reject machinery
(``store_rejects``) catches ragged rows, unconvertible values, invalid encoding and lines
longer than ``max_line_size`` one row at a time. (With auto-detection at read time a single
oversized line made the sniffer fail the whole file.)

DuckDB numbers a reject by *record*; a value with a quoted line break shifts the physical
line of every later record, so reject lines of quoted files are recomputed from the
reject's byte offset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from lockgate.sources import _records, _schema
from lockgate.sources._records import tbl
from lockgate.sql import ident

if TYPE_CHECKING:
    import duckdb

    pass

log = logging.getLogger(__name__)

#: DuckDB's default ``max_line_size``
DEFAULT_MAX_LINE = 2_000_000
#: when sniffing fails (e.g. on one huge cell) it is retried allowing these line sizes, so
#: the read can reject that line alone; not the first try: the reader's buffer of a
#: compressed file grows with ``max_line_size``
_SNIFF_RETRY_LINE = (32 << 20, 256 << 20)
#: options that only steer detection (the sniffer gets them, the reader does not)
_SNIFF_ONLY = frozenset(
    {
        "sample_size",
        "normalize_names",
        "all_varchar",
        "union_by_name",
        "delim",
        "quote",
        "escape",
        "header",
        "skip",
        "comment",
        "dateformat",
        "timestampformat",
    }
)

# Turns DuckDB's reject_errors row (aliases e) into "line 57: expected 5 columns, found 7".
# A fixed template (no user input), parsed once by sqlglot.
_CSV_REASON = sqlglot.parse_one(
    r"""
    CASE
      WHEN e.error_type IN ('TOO MANY COLUMNS', 'MISSING COLUMNS')
       AND regexp_matches(e.error_message, 'Expected Number of Columns: (\d+) Found: (\d+)')
        THEN 'line ' || e.line || ': expected '
          || regexp_extract(e.error_message, 'Expected Number of Columns: (\d+) Found: (\d+)', 1)
          || ' columns, found '
          || regexp_extract(e.error_message, 'Expected Number of Columns: (\d+) Found: (\d+)', 2)
      WHEN e.error_type = 'CAST'
       AND regexp_matches(e.error_message, 'Could not convert string "(.*)" to ''([^'']*)''')
        THEN 'line ' || e.line || ': column ''' || e.column_name || ''': cannot convert '''
          || left(regexp_extract(e.error_message,
                                 'Could not convert string "(.*)" to ''([^'']*)''', 1), 200)
          || ''' to '
          || regexp_extract(e.error_message, 'Could not convert string "(.*)" to ''([^'']*)''', 2)
      WHEN e.error_type = 'CAST'
        THEN 'line ' || e.line || ': column ''' || coalesce(e.column_name, '?') || ''': '
          || left(e.error_message, 300)
      WHEN e.error_type = 'INVALID ENCODING'
        THEN 'line ' || e.line || ': invalid byte sequence for the file''s encoding (column '''
          || coalesce(e.column_name, '?')
          || '''); if the file is not UTF-8 set options.encoding, e.g. latin-1'
      WHEN e.error_type = 'LINE SIZE OVER MAXIMUM'
        THEN 'line ' || e.line || ': line longer than the maximum of '
          || e.max_line || ' bytes (raise options.max_line_size to accept it)'
      WHEN e.error_type = 'UNQUOTED VALUE'
        THEN 'line ' || e.line || ': a quoted value is followed by other characters'
      ELSE 'line ' || e.line || ': ' || lower(CAST(e.error_type AS VARCHAR)) || ': '
        || left(e.error_message, 300)
    END
    """,
    dialect="duckdb",
)

# One reject row per bad line: DuckDB reports a line with k extra columns k times (keep
# the last, which has the real count) and a line with several bad values once per column
# (keep each, joined with "; "). __reason is replaced by _CSV_REASON. csv_line of a CRLF
# file starts with the previous line's LF: trimmed.
_CSV_ERRORS = sqlglot.parse_one(
    """
    SELECT scan_id, file_id, CAST(line AS BIGINT) AS line,
           TRIM(ANY_VALUE(csv_line), chr(13) || chr(10)) AS raw,
           STRING_AGG(reason, '; ' ORDER BY column_idx) AS reason
    FROM (
      SELECT e.scan_id, e.file_id, e.line, e.csv_line, e.column_idx, __reason AS reason
      FROM __errs AS e
      QUALIFY ROW_NUMBER() OVER (
        PARTITION BY e.scan_id, e.file_id, e.line, e.error_type,
          CASE WHEN e.error_type = 'TOO MANY COLUMNS' THEN NULL ELSE e.column_idx END
        ORDER BY e.column_idx DESC) = 1
    )
    GROUP BY scan_id, file_id, line
    """,
    dialect="duckdb",
)


@dataclass(frozen=True)
class Sniffed:
    """What ``sniff_csv`` found in one file."""

    path: Path
    dialect: dict[str, object]
    columns: dict[str, str]

    @property
    def quoted(self) -> bool:
        return bool(self.dialect.get("quote"))


def _func(name: str, path: Path, options: Mapping[str, object]) -> exp.Expr:
    from lockgate.sources.files import named_arg  # one literal builder for all readers

    return exp.func(
        name, exp.Literal.string(str(path)), *(named_arg(k, v) for k, v in options.items())
    )


def _opt(value: object) -> str:
    text = str(value)
    return "" if text == "(empty)" else text


def sniff(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    options: Mapping[str, object],
    expected: Collection[str] = (),
) -> Sniffed:
    """Dialect, header and column names/types of ``path`` (``options``: the user's;
    ``expected``: the declared column names, which help choose between dialects)."""
    import duckdb

    max_line = int(str(options.get("max_line_size", DEFAULT_MAX_LINE)))
    error: duckdb.Error | None = None
    for size in (max_line, *(s for s in _SNIFF_RETRY_LINE if s > max_line)):
        try:
            return _best_sniff(con, path, {**options, "max_line_size": size}, expected)
        except (duckdb.InvalidInputException, duckdb.OutOfMemoryException) as e:
            error = error or e
    assert error is not None
    raise error


def _best_sniff(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    options: Mapping[str, object],
    expected: Collection[str],
) -> Sniffed:
    """The tolerant sniffer (as the reader stores rejects, a ragged line must not change
    the dialect) unless its header misses declared columns or it fails; then also the
    strict one (a value holding ``|`` and ``"`` can mislead the tolerant one), keeping
    the result whose header matches more declared names, then has more columns."""
    import duckdb

    want = {_schema.key(c) for c in expected}

    def score(s: Sniffed) -> tuple[int, int]:
        return len(want & {_schema.key(c) for c in s.columns}), len(s.columns)

    found: list[Sniffed] = []
    error: duckdb.Error | None = None
    for tolerant in (True, False):
        try:
            found.append(_sniff(con, path, options, tolerant=tolerant))
        except duckdb.InvalidInputException as e:
            error = error or e
            continue
        if tolerant and want <= {_schema.key(c) for c in found[0].columns}:
            break
    if not found:
        assert error is not None
        raise error
    best = max(found, key=score)  # max keeps the first of equals: the tolerant one
    if "quote" not in options and best.dialect["quote"] not in ('"', ""):
        # a guessed ' quote turns two values with apostrophes (O'Brien ... D'Arcy) into
        # one value spanning lines — rows vanish silently; single-quoted files must say
        # options.quote: "'"
        try:
            return _sniff(con, path, {**options, "quote": '"'}, tolerant=True)
        except duckdb.InvalidInputException:
            log.info("%s: sniffed quote %r kept", path, best.dialect["quote"])
    return best


def _sniff(
    con: duckdb.DuckDBPyConnection, path: Path, options: Mapping[str, object], *, tolerant: bool
) -> Sniffed:
    opts = {**options, "ignore_errors": True} if tolerant else dict(options)
    fields = (
        "Delimiter",
        "Quote",
        "Escape",
        "NewLineDelimiter",
        "Comment",
        "SkipRows",
        "HasHeader",
        "Columns",
        "DateFormat",
        "TimestampFormat",
    )
    query = exp.select(*fields).from_(_func("sniff_csv", path, opts))
    row = con.execute(query.sql("duckdb")).fetchone()
    assert row is not None
    delim, quote, escape, new_line, comment, skip, header, columns, datefmt, tsfmt = row
    dialect: dict[str, object] = {
        "delim": _opt(delim),
        "quote": _opt(quote),
        "escape": _opt(escape),
        "new_line": _opt(new_line).replace("\\r", "\r").replace("\\n", "\n"),
        "comment": _opt(comment),
        "skip": int(skip),
        "header": bool(header),
    }
    if datefmt:
        dialect["dateformat"] = datefmt
    if tsfmt:
        dialect["timestampformat"] = tsfmt
    return Sniffed(path, dialect, {str(c["name"]): str(c["type"]) for c in columns})


def reader(
    sniffed: Sniffed,
    columns: Mapping[str, str],
    options: Mapping[str, object],
    rejects: tuple[str, str] | None,
    paths: Sequence[Path] = (),
) -> exp.Expr:
    """``read_csv`` of one file (or ``paths``, files sniffed alike) with explicit dialect,
    columns and rejects tables (None: bad lines are skipped — only for probing, never for
    staging)."""
    opts: dict[str, object] = dict(sniffed.dialect)
    opts.pop("new_line", None)  # DuckDB accepts \n, \r\n and \r whatever it is told
    opts.update({k: v for k, v in options.items() if k not in _SNIFF_ONLY})
    opts.update(auto_detect=False, columns=dict(columns))
    if rejects is None:
        opts["ignore_errors"] = True
    else:
        opts.update(store_rejects=True, rejects_table=rejects[0], rejects_scan=rejects[1])
    if len(paths) > 1:
        from lockgate.sources.files import named_arg

        files = exp.Array(expressions=[exp.Literal.string(str(p)) for p in paths])
        return exp.func("read_csv", files, *(named_arg(k, v) for k, v in opts.items()))
    return _func("read_csv", sniffed.path, opts)


def runs(
    sniffed: list[Sniffed], per_file: list[dict[str, str]]
) -> list[tuple[Sniffed, dict[str, str], list[Path]]]:
    """Consecutive files sniffed alike (same dialect, same columns in the same order —
    the usual glob) grouped so they share one ``read_csv`` scan."""
    runs: list[tuple[Sniffed, dict[str, str], list[Path]]] = []
    for sniff, cols in zip(sniffed, per_file, strict=True):
        if (
            runs
            and runs[-1][0].dialect == sniff.dialect
            and list(runs[-1][1].items()) == list(cols.items())  # order matters
        ):
            runs[-1][2].append(sniff.path)
        else:
            runs.append((sniff, cols, [sniff.path]))
    return runs


def has_rows(con: duckdb.DuckDBPyConnection, read: exp.Expr) -> bool:
    """Whether a file has at least one data row (only asked for all-text header files)."""
    query = exp.select(exp.Literal.number(1)).from_(read).limit(1)
    return bool(con.execute(query.sql("duckdb")).fetchall())


def physical_lines(path: Path, offsets: list[int]) -> dict[int, int]:
    """Byte offset of a reject (DuckDB's ``line_byte_position``: the record's first byte
    in a CRLF file, one past it in an LF file — either way no line break lies between the
    record's start and it) → 1-based physical line, counting LFs in one streaming pass."""
    out: dict[int, int] = {}
    targets = sorted({o for o in offsets if o > 0})
    if not targets:
        return out
    newlines, pos, i = 0, 0, 0
    with path.open("rb") as fh:
        while i < len(targets):
            chunk = fh.read(1 << 22)
            if not chunk:
                break
            end = pos + len(chunk)
            while i < len(targets) and targets[i] <= end:
                upto = targets[i] - pos
                out[targets[i]] = newlines + chunk.count(b"\n", 0, upto) + 1
                i += 1
            newlines += chunk.count(b"\n")
            pos = end
    return out


_FIXED_LINES = sqlglot.parse_one(
    """
    SELECT e.* REPLACE (greatest(e.line, coalesce(f.phys, 0)) AS line)
    FROM __errs AS e
    JOIN __scans AS s ON s.scan_id = e.scan_id AND s.file_id = e.file_id
    LEFT JOIN __fix AS f ON f.file_path = s.file_path AND f.pos = e.line_byte_position
    """,
    dialect="duckdb",
)


def fix_lines(
    con: duckdb.DuckDBPyConnection, errs: str, scans: str, quoted: Mapping[str, Path]
) -> str | None:
    """A copy of ``errs`` whose record-based ``line`` of rejects from quoted files is the
    physical line (never smaller: a quoted line break only pushes later records down),
    or None when nothing needs fixing. The caller drops the returned table."""
    if not quoted:
        return None
    rows = con.execute(
        exp.select("s.file_path", "e.line_byte_position")
        .distinct()
        .from_(exp.alias_(tbl(errs), "e", table=True))
        .join(exp.alias_(tbl(scans), "s", table=True), using=["scan_id", "file_id"])
        .sql("duckdb")
    ).fetchall()
    by_file: dict[str, list[int]] = {}
    for file_path, offset in rows:
        if file_path in quoted and offset is not None:
            by_file.setdefault(str(file_path), []).append(int(offset))
    fixes = [
        (file_path, offset, line)
        for file_path, offsets in by_file.items()
        for offset, line in physical_lines(quoted[file_path], offsets).items()
    ]
    if not fixes:
        return None
    fix, fixed = _records.temp_name("fix"), _records.temp_name("fixed")
    temp = exp.Properties(expressions=[exp.TemporaryProperty()])
    values = exp.values(fixes, alias="v", columns=["file_path", "pos", "phys"])
    try:
        con.execute(
            exp.Create(
                this=tbl(fix),
                kind="TABLE",
                expression=exp.select("*").from_(values),
                properties=temp,
            ).sql("duckdb")
        )
        query = exp.replace_tables(
            _FIXED_LINES.copy(), {"__errs": errs, "__scans": scans, "__fix": fix}
        )
        con.execute(
            exp.Create(this=tbl(fixed), kind="TABLE", expression=query, properties=temp.copy()).sql(
                "duckdb"
            )
        )
    finally:
        _records.drop(con, fix)
    return fixed


def insert_rejects(
    con: duckdb.DuckDBPyConnection,
    *,
    errs: str,
    scans: str,
    rejects: str,
    file_case: Callable[[exp.Expr], exp.Expr],
    max_line: int,
) -> None:
    """One reject row per bad line of every scan recorded in ``errs``/``scans``."""
    per_error = exp.replace_tables(_CSV_ERRORS.copy(), {"__errs": errs})
    reason = _CSV_REASON.copy().transform(
        lambda n: (
            exp.Literal.number(max_line)
            if isinstance(n, exp.Column) and n.name == "max_line"
            else n
        )
    )
    per_error = per_error.transform(
        lambda n: reason.copy() if isinstance(n, exp.Column) and n.name == "__reason" else n
    )
    assert isinstance(per_error, exp.Select)
    select = (
        exp.select(
            file_case(exp.column("file_path", "s")),
            exp.column("line", "e"),
            exp.column("raw", "e"),
            exp.column("reason", "e"),
        )
        .from_(per_error.subquery("e"))
        .join(exp.alias_(tbl(scans), "s", table=True), using=["scan_id", "file_id"])
        .order_by(exp.column("scan_id", "e"), exp.column("file_id", "e"), exp.column("line", "e"))
    )
    con.execute(exp.insert(select, tbl(rejects)).sql("duckdb"))


def column_defs(columns: Mapping[str, str]) -> list[exp.ColumnDef]:
    return [
        exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
        for c, t in columns.items()
    ]
