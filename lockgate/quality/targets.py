"""Read a check/profile *target* into DuckDB: a file or glob (CSV/TSV, Parquet, JSON/NDJSON,
by extension, ``.gz``/``.zst`` allowed), a Delta table folder, or a PostgreSQL table by URL
(``postgresql://user@host:port/db?table=schema.name``).

One reader for ``lockgate check``, ``lockgate profile`` and ``lockgate suggest``.
"""

from __future__ import annotations

import glob as _glob
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import duckdb
from sqlglot import exp

from lockgate.errors import InputError
from lockgate.quality.compile import ident, table_ref
from lockgate.redact import redact, remember

log = logging.getLogger(__name__)

_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".txt": "read_csv",
    ".json": "read_json",
    ".ndjson": "read_json",
    ".jsonl": "read_json",
}


def is_delta_table(path: Path) -> bool:
    return path.is_dir() and (path / "_delta_log").is_dir()


def reader_for(file: str) -> str:
    """The DuckDB table function for a file, from its extension."""
    suffixes = [s.lower() for s in Path(file).suffixes]
    while suffixes and suffixes[-1] in (".gz", ".zst", ".gzip"):
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext not in _READERS:
        raise InputError(
            f"cannot tell the format of {file} from its extension {ext or '(none)'}",
            hint="use a .parquet, .csv, .tsv, .json/.ndjson file or glob, a Delta folder or a "
            "postgresql://…?table=schema.name URL",
        )
    return _READERS[ext]


@dataclass(frozen=True)
class RejectedRecord:
    """One input record that could not be read (so it is in no count of the checks)."""

    file: str | None
    line: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class TargetRead:
    """What reading a target gave: ``rows`` readable as the relation, and the records that
    could not be read (``rejected``: a value that does not convert to its column's type, a
    ragged or malformed line, invalid bytes, an empty file), with a sample of them.
    ``records = rows + rejected``; ``label`` is the target with any password hidden."""

    label: str
    rows: int | None = None
    rejected: int = 0
    sample: tuple[RejectedRecord, ...] = ()

    @property
    def records(self) -> int | None:
        return None if self.rows is None else self.rows + self.rejected

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.rejected, "sample": [r.to_dict() for r in self.sample]}


def target_label(target: str) -> str:
    """``target`` as it may be shown: any password hidden."""
    return redact(target)


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgresql+", "postgres://"))


def register_target(
    con: duckdb.DuckDBPyConnection, name: str, target: str, tmp: str | None = None
) -> TargetRead:
    """Expose ``target`` as relation ``name`` on ``con``.

    CSV and JSON/NDJSON files are read record by record into a table by the same reader
    as a project's file sources (:class:`lockgate.sources.files.FileSource`): a record that
    does not read is rejected with its file, line and reason, never dropped silently, and
    every column is converted once, so the counts do not depend on which columns a check
    reads. Parquet files and Delta tables are read in place (a view); a PostgreSQL table
    is copied into a table. ``tmp`` (a folder) is where DuckDB may spill.
    """
    if is_postgres(target):
        remember(target)
        if tmp is not None:
            _load_postgres(con, name, target, tmp)
        else:
            with tempfile.TemporaryDirectory(prefix="lockgate-pg-") as d:
                _load_postgres(con, name, target, d)
        return TargetRead(label=target_label(target))
    path = Path(target).expanduser()
    if is_delta_table(path):
        _register_delta(con, name, path)
        return TargetRead(label=target_label(target))
    if path.is_dir():
        raise InputError(
            f"{target!r} is a folder but not a Delta table (no _delta_log/)",
            hint="pass a file, a glob such as 'data/*.parquet', or a Delta table folder",
        )
    pattern = str(path)
    files = sorted(_glob.glob(pattern)) if _glob.has_magic(pattern) else [pattern]
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise InputError(f"no file matches {target!r}", hint="check the path or glob")
    readers = {reader_for(f) for f in files}
    if len(readers) != 1:
        raise InputError(f"{target!r} matches files of different formats: {sorted(readers)}")
    reader = readers.pop()
    if reader != "read_parquet":
        if tmp is not None:
            con.execute("SET temp_directory = ?", [tmp])
        return _stage_records(con, name, target)
    fn = exp.Anonymous(
        this=reader,
        expressions=[exp.Array(expressions=[exp.Literal.string(f) for f in files])],
    )
    view = exp.Create(
        this=table_ref(name),
        kind="VIEW",
        replace=True,
        expression=exp.select(exp.Star()).from_(exp.Table(this=fn)),
    )
    try:
        con.execute(view.sql("duckdb"))
        con.execute(exp.Describe(this=table_ref(name)).sql("duckdb")).fetchall()
    except duckdb.Error as e:
        raise InputError(f"cannot read {target!r}: {str(e).splitlines()[0]}") from None
    return TargetRead(label=target_label(target))


#: rejected records listed per target (the count is always complete)
REJECT_SAMPLE = 5
_REASON_CHARS = 300


def _stage_records(con: duckdb.DuckDBPyConnection, name: str, target: str) -> TargetRead:
    """CSV / JSON / NDJSON file or glob → table ``name`` (+ ``name__rejects``)."""
    from lockgate.project.models import DatasetSpec, FileSourceSpec
    from lockgate.sources.base import REJECTS_SUFFIX
    from lockgate.sources.files import FileSource

    root, rel, shown = _split_pattern(target)
    spec = DatasetSpec(name="target", source=FileSourceSpec(path=rel))
    try:
        staged = FileSource(spec, root).stage(con, name)
    except InputError as e:
        raise InputError(e.message.replace("dataset 'target': ", ""), hint=e.hint) from None
    except duckdb.Error as e:
        raise InputError(f"cannot read {target!r}: {str(e).splitlines()[0]}") from None
    sample: list[RejectedRecord] = []
    if staged.rejected:
        rejects = exp.Table(this=exp.to_identifier(name + REJECTS_SUFFIX, quoted=True))
        q = (
            exp.select("_lg_source_file", "_lg_line", "_lg_reason")
            .from_(rejects)
            .order_by("_lg_source_file", "_lg_line")
            .limit(REJECT_SAMPLE)
        )
        for f, line, reason in con.execute(q.sql("duckdb")).fetchall():
            text = re.sub(r"^(line|record) \d+: ", "", str(reason or ""))  # line is its own field
            if len(text) > _REASON_CHARS:  # a reason may quote a megabyte-long value
                text = text[: _REASON_CHARS - 1] + f"… ({len(text):,} characters)"
            file = None if f is None else (os.path.join(shown, f) if shown else str(f))
            sample.append(RejectedRecord(file, None if line is None else int(line), text))
        log.info(
            "%s: %d record(s) could not be read and are not counted as rows: %s%s",
            target_label(target),
            staged.rejected,
            "; ".join(f"{r.file}:{r.line}: {r.reason}" for r in sample[:3]),
            " …" if staged.rejected > 3 else "",
        )
    if not staged.rows and list(staged.columns) == ["column0"] and sample:
        # nothing readable at all (e.g. only empty files): no columns to check or profile
        first = sample[0]
        raise InputError(
            f"{target_label(target)!r} has no readable record ({staged.rejected:,} rejected; "
            f"{first.file}: {first.reason})",
            hint="check the file(s): empty, or not in the format their extension says",
        )
    return TargetRead(
        label=target_label(target), rows=staged.rows, rejected=staged.rejected, sample=tuple(sample)
    )


def _split_pattern(target: str) -> tuple[Path, str, str]:
    """(folder to resolve in, pattern relative to it, folder as the user wrote it): the
    folder is the longest leading part of ``target`` without glob characters."""
    parts = Path(target).parts
    i = next((k for k, p in enumerate(parts) if _glob.has_magic(p)), len(parts) - 1)
    shown = str(Path(*parts[:i])) if i else ""
    root = Path(shown or ".").expanduser().resolve()
    return root, str(Path(*parts[i:])), shown


def _register_delta(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """DuckDB's own Parquet reader over the active files when the table is plain (lower
    memory, parallel); a pyarrow dataset otherwise."""
    from deltalake import DeltaTable

    from lockgate.storage.scan import native_scan

    try:
        scan = native_scan(path, None)
        if scan is not None:
            con.execute(
                exp.Create(this=table_ref(name), kind="VIEW", replace=True, expression=scan).sql(
                    "duckdb"
                )
            )
            return
        con.register(name, DeltaTable(str(path)).to_pyarrow_dataset())
    except duckdb.Error as e:
        raise InputError(f"cannot read Delta table {path}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # deltalake raises several unrelated types
        raise InputError(f"cannot read Delta table {path}: {e}") from e


# ---- PostgreSQL ----------------------------------------------------------------------------

_PG_TYPES = {
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
    "date": "DATE",
    "uuid": "UUID",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "time without time zone": "TIME",
}


def _pg_type(t: str) -> str:
    t = t.lower()
    if t in _PG_TYPES:
        return _PG_TYPES[t]
    if t.startswith("numeric(") or t.startswith("decimal("):
        p = int(t.split("(")[1].split(",")[0].rstrip(")"))
        return t.upper() if p <= 38 else "DOUBLE"
    if t in ("numeric", "decimal"):
        return "DOUBLE"
    return "VARCHAR"  # varchar(n), char, json, arrays, …: compared as text


def split_pg_url(url: str) -> tuple[str, str, str]:
    """``postgresql://…/db?table=schema.name`` → (connection URL, schema, table)."""
    parts = urlsplit(url)
    qs = parse_qs(parts.query)
    tables = qs.pop("table", None)
    if not tables:
        raise InputError(
            f"PostgreSQL target {target_label(url)!r} names no table",
            hint="append ?table=schema.name, e.g. postgresql://user@host/db?table=public.orders",
        )
    schema, _, tbl = tables[0].rpartition(".")
    conn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(qs, doseq=True), ""))
    return conn, schema or "public", tbl


def _load_postgres(con: duckdb.DuckDBPyConnection, name: str, url: str, tmp: str) -> None:
    try:
        import psycopg
        from psycopg import sql
    except ImportError:  # pragma: no cover
        raise InputError(
            "reading PostgreSQL needs psycopg", hint="pip install 'lockgate[postgres]'"
        ) from None
    conn_url, schema, table = split_pg_url(url)
    path = os.path.join(tmp, f"{name}.csv")
    try:
        with psycopg.connect(conn_url) as pg:
            pg.execute("SET TimeZone = 'UTC'")
            pg.execute("SET DateStyle = 'ISO, YMD'")
            pg.execute("SET extra_float_digits = 3")
            cols = pg.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 "
                "AND NOT a.attisdropped ORDER BY a.attnum",
                (schema, table),
            ).fetchall()
            if not cols:
                raise InputError(f"PostgreSQL table {schema}.{table} not found (or no columns)")
            q = sql.SQL("COPY (SELECT * FROM {}.{}) TO STDOUT (FORMAT csv)").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            with pg.cursor() as cur, open(path, "wb") as f, cur.copy(q) as copy:
                for chunk in copy:
                    f.write(chunk)
    except psycopg.Error as e:
        raise InputError(f"cannot read PostgreSQL table {schema}.{table}: {e}") from None
    types = exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(c), expression=exp.Literal.string(_pg_type(t)))
            for c, t in cols
        ]
    )
    fn = exp.Anonymous(
        this="read_csv",
        expressions=[
            exp.Literal.string(path),
            exp.PropertyEQ(this=exp.var("columns"), expression=types),
            exp.PropertyEQ(this=exp.var("header"), expression=exp.false()),
            exp.PropertyEQ(this=exp.var("allow_quoted_nulls"), expression=exp.false()),
            exp.PropertyEQ(this=exp.var("auto_detect"), expression=exp.false()),
        ],
    )
    stmt = exp.Create(
        this=exp.Table(this=ident(name)),
        kind="TABLE",
        replace=True,
        expression=exp.select(exp.Star()).from_(exp.Table(this=fn)),
    )
    con.execute(stmt.sql("duckdb"))
