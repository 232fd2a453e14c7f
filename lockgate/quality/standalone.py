"""``lockgate check TARGET --checks FILE``: run a check file on any table, no project.

Targets (and ``references:`` values):

* a Parquet / CSV / JSON / NDJSON file or a glob of them (by extension; read in place by
  DuckDB, only the columns the checks need);
* a Delta table folder (has ``_delta_log/``; read through ``deltalake`` → Arrow dataset);
* a PostgreSQL table: ``postgresql://user[:pw]@host[:port]/db?table=schema.name``
  (``postgresql+psycopg://`` works too). Streamed with ``COPY … TO STDOUT (FORMAT csv)``
  through psycopg into a temporary CSV file and loaded into DuckDB with the column types
  mapped from PostgreSQL's catalog (DuckDB's postgres extension is not needed).
"""

from __future__ import annotations

import glob
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import duckdb
from sqlglot import exp

from lockgate.errors import ConfigError, InputError
from lockgate.quality.checkfile import CheckFile, load_check_file
from lockgate.quality.compile import ident, table_ref
from lockgate.quality.engine import AuditResult, audit, describe
from lockgate.quality.profile import warn_csv_rejects
from lockgate.quality.validate import validate_checks

log = logging.getLogger(__name__)

TARGET = "__lg_target"

_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".json": "read_json",
    ".ndjson": "read_json",
    ".jsonl": "read_json",
}


def run_standalone(
    target: str,
    checks: str | Path | CheckFile,
    *,
    now: datetime | None = None,
    refs: Mapping[str, str] | None = None,
    sample_size: int = 5,
    con: duckdb.DuckDBPyConnection | None = None,
) -> AuditResult:
    """Load the check file, expose ``target`` and the references, validate statically
    (ConfigError, before reading data) and audit in count mode."""
    cf = checks if isinstance(checks, CheckFile) else load_check_file(checks)
    if not cf.raw_checks:
        cf = CheckFile(cf.path, cf.checks, cf.lines, cf.references, cf.dataset, list(cf.checks))
    con = con or duckdb.connect()
    tmp = tempfile.TemporaryDirectory(prefix="lockgate-check-")
    try:
        register_target(con, TARGET, target, tmp.name)
        references: dict[str, str] = {}
        ref_cols: dict[str, dict[str, str]] = {}
        for name, tgt in {**cf.references, **(refs or {})}.items():
            rel = f"__lg_ref_{name}"
            register_target(con, rel, tgt, tmp.name)
            references[name] = rel
            ref_cols[name] = describe(con, rel)
        columns = describe(con, TARGET)
        problems = validate_checks(
            cf.raw_checks, columns, file=cf.path, lines=cf.lines, references=ref_cols
        )
        if problems:
            raise ConfigError(problems)
        dataset = cf.dataset or _stem(target)
        result = audit(
            con,
            TARGET,
            cf.checks,
            references=references,
            mark=False,
            now=now,
            sample_size=sample_size,
            dataset=dataset,
        )
        warn_csv_rejects(con)
        return result
    finally:
        tmp.cleanup()


def _stem(target: str) -> str | None:
    if "://" in target:
        q = parse_qs(urlsplit(target).query).get("table")
        return q[0].split(".")[-1] if q else None
    name = Path(target.rstrip("/")).name
    return name.split(".")[0] if "*" not in name else None


def register_target(con: duckdb.DuckDBPyConnection, name: str, target: str, tmp: str) -> None:
    """Expose ``target`` as relation ``name`` on ``con`` (see the module docstring)."""
    if target.startswith(("postgresql://", "postgresql+", "postgres://")):
        _load_postgres(con, name, target, tmp)
        return
    path = Path(target)
    if path.is_dir() and (path / "_delta_log").is_dir():
        from deltalake import DeltaTable

        con.register(name, DeltaTable(str(path)).to_pyarrow_dataset())
        return
    if path.is_dir():
        raise InputError(
            f"{target!r} is a folder but not a Delta table (no _delta_log/)",
            hint="point at a file or a glob such as 'folder/*.parquet'",
        )
    ext = Path(target.replace("*", "x")).suffix.lower()
    if ext == ".gz":
        ext = Path(target.replace("*", "x")[:-3]).suffix.lower()
    reader = _READERS.get(ext)
    if reader is None:
        raise InputError(
            f"cannot tell the format of {target!r}",
            hint="use a .parquet, .csv, .json/.ndjson file or glob, a Delta folder or a "
            "postgresql://…?table=schema.name URL",
        )
    if not glob.glob(target):
        raise InputError(f"no file matches {target!r}")
    args: list[exp.Expr] = [exp.Literal.string(target)]
    if reader == "read_csv":
        # without it one ragged line makes the sniffer read the header as a single column;
        # with it malformed records are skipped into ``reject_errors`` (reported after)
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
    except duckdb.Error as e:
        raise InputError(f"cannot read {target!r}: {str(e).splitlines()[0]}") from None


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
