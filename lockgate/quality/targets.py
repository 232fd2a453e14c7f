"""Read a check/profile *target* into DuckDB: a file or glob (CSV/TSV, Parquet, JSON/NDJSON,
by extension, ``.gz``/``.zst`` allowed), a Delta table folder, or a PostgreSQL table by URL
(``postgresql://user@host:port/db?table=schema.name``).

One reader for ``lockgate check``, ``lockgate profile`` and ``lockgate suggest``.
"""

from __future__ import annotations

import glob as _glob
import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import duckdb
from sqlglot import exp

from lockgate.errors import InputError
from lockgate.quality.compile import ident, table_ref

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


def register_target(
    con: duckdb.DuckDBPyConnection, name: str, target: str, tmp: str | None = None
) -> None:
    """Expose ``target`` as relation ``name`` on ``con``."""
    if target.startswith(("postgresql://", "postgresql+", "postgres://")):
        if tmp is not None:
            _load_postgres(con, name, target, tmp)
        else:
            with tempfile.TemporaryDirectory(prefix="lockgate-pg-") as d:
                _load_postgres(con, name, target, d)
        return
    path = Path(target).expanduser()
    if is_delta_table(path):
        _register_delta(con, name, path)
        return
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
    args: list[exp.Expr] = [exp.Array(expressions=[exp.Literal.string(f) for f in files])]
    if reader == "read_csv":
        if files[0].lower().split(".gz")[0].endswith(".tsv"):
            args.append(exp.PropertyEQ(this=exp.var("delim"), expression=exp.Literal.string("\t")))
        # without it one ragged line makes the sniffer read the header as a single column;
        # with it malformed records are skipped into ``reject_errors`` (reported by callers)
        args.append(exp.PropertyEQ(this=exp.var("store_rejects"), expression=exp.true()))
    fn = exp.Anonymous(this=reader, expressions=args)
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
            f"PostgreSQL target {url!r} names no table",
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
