"""``type: postgres`` — a PostgreSQL table, read through a named connection.

``source: {type: postgres, connection: shop_db, table: public.orders}`` with, in
``lockgate.yaml``, ``connections: {shop_db: {type: postgres, url: "${SHOP_DB_URL}"}}`` (or
``host``/``port``/``user``/``password``/``dbname`` fields, any of them a reference).

Or ``query: SELECT …``; ``columns: [a, b]`` selects columns; ``incremental: {cursor: col}`` on
the dataset reads ``col >= <last value read>`` (the run loop settles rows read again) and
``settle: 2m`` leaves out rows newer than ``now() - 2m`` (transactions still in flight).
The read itself is :mod:`lockgate.sources._pg_read` (Arrow stream, catalog types).

:func:`load_table` is what ``lockgate check`` uses for a ``postgresql://…?table=schema.name``
target: the table copied with ``COPY … TO STDOUT (FORMAT csv)`` into a spill file, loaded
with the catalog's column types.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from pydantic import Field, JsonValue
from sqlglot import exp

from lockgate.errors import ConfigError, InputError, Problem
from lockgate.redact import redact, remember
from lockgate.sources._db import (
    DbSourceConfig,
    fingerprint_select,
    future_cursor,
    parse_query,
    quote_userinfo,
    start_staging,
)
from lockgate.sources._pg_partition import PartitionSpec
from lockgate.sources._pg_read import (
    PG_CAST,
    PG_NATIVE,
    is_driver_error,
    pg_errors,
    read_postgres,
    translate_error,
)
from lockgate.sources.base import (
    ResumeToken,
    Source,
    SourceConfig,
    SqlConnection,
    StagedSource,
    register_source,
    staged_table,
)
from lockgate.sql import ident

if TYPE_CHECKING:
    from lockgate.engine.session import Session

log = logging.getLogger(__name__)


class PostgresSourceSpec(DbSourceConfig):
    """A PostgreSQL table (or query) read through a named connection."""

    type: Literal["postgres"] = "postgres"
    partition: PartitionSpec | None = Field(
        default=None,
        description="read in parallel ranges of an integer column, all on one snapshot: "
        "{column: id, partitions: 4}",
    )


@register_source
class PostgresSource(Source):
    """Streams Arrow batches (ADBC, else psycopg) typed from the catalog; with
    ``incremental:`` reads ``cursor >= <last cursor>`` (and ``< now() - settle``)."""

    TYPE: ClassVar[str] = "postgres"
    CONFIG: ClassVar[type[SourceConfig]] = PostgresSourceSpec
    SUPPORTS_INCREMENTAL: ClassVar[bool] = True
    SUPPORTS_REJECTS: ClassVar[bool] = True
    SUPPORTS_PARALLEL: ClassVar[bool] = True
    SUPPORTS_FINGERPRINT: ClassVar[bool] = True

    def fingerprint(self) -> JsonValue:
        """Incremental reads: the newest settled cursor value and how many rows are at it
        (or within the lookback before it) — one indexed query, no data read; an unchanged
        answer makes the step a no-op. A full read has none (None: every run reads)."""
        assert isinstance(self.config, PostgresSourceSpec)
        relation = _relation(self.config)
        clock = exp.AtTimeZone(this=exp.func("now"), zone=exp.Literal.string("UTC"))
        query = fingerprint_select(
            self.request, relation, now=exp.func("now"), text_type="text", clock=clock
        )
        if query is None:
            return None
        inc = self.request.incremental
        assert inc is not None
        # the cursor's collation (NULL: not text) and the database's: the resume point is
        # the largest value read byte-wise (as the engine orders text); under a linguistic
        # collation ('en-US': a < B < b < C) the newest value the database sees says
        # nothing of a row 'c' added below it but above the resume point
        query = query.select(
            _collation_of(self.config, relation, inc.cursor),
            exp.select("datcollate")
            .from_("pg_database")
            .where("datname = current_database()")
            .subquery(),
            copy=False,
        )
        import psycopg

        try:
            with psycopg.connect(self._conninfo()) as pg:
                pg.execute("SET TimeZone = 'UTC'")
                row = pg.execute(query.sql("postgres")).fetchone()
        except pg_errors() as e:  # the read reports the problem (with its own message)
            log.info("dataset %s: no fingerprint: %s", self.dataset, translate_error(e, "it"))
            return None
        newest, count, clock, collation, default = row if row is not None else (None,) * 5
        if future_cursor(newest, clock):  # later rows with current cursors are below it
            return None
        if not byte_ordered(collation, default):
            return None  # read on every run (a text cursor under a linguistic collation)
        return {"type": "postgres", "newest": newest, "rows_at_newest": int(count or 0)}

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        assert isinstance(self.config, PostgresSourceSpec)
        start_staging(session, self.request, self.config, table)
        conninfo = self._conninfo()
        label = self.config.table or "query"
        warnings: list[str] = []
        try:
            rejected, last = read_postgres(self, session, table, conninfo, resume, warnings)
        except Exception as e:  # a lost connection mid-read (ADBC: an OSError) is transient
            if not is_driver_error(e):
                raise
            raise translate_error(e, label) from None
        out = staged_table(
            session.con, table, rejected, resume=last if last is not None else resume
        )
        out.warnings.extend(warnings)
        return out

    def _conninfo(self) -> str:
        """The libpq connection string of the request's connection (secrets resolved now)."""
        conn = self.request.connection
        if conn is None:
            raise ConfigError(
                [Problem(f"dataset '{self.dataset}': source needs 'connection: NAME'")]
            )
        fields = conn.resolve()
        url = str(fields.pop("url", None) or "")
        from psycopg import ProgrammingError
        from psycopg.conninfo import make_conninfo

        # hidden before libpq parses them: its parse errors quote the URL's text
        remember(url)
        remember(str(fields["password"]) if fields.get("password") else None)
        if url.startswith("postgresql+") or url.startswith("postgres+"):
            url = "postgresql" + url[url.index("://") :]
        url = quote_userinfo(url)
        params = {k: str(v) for k, v in fields.items()}
        try:
            info = make_conninfo(url, **params)
        except ProgrammingError:  # its message quotes the URL (a part of the password)
            raise ConfigError(
                [
                    Problem(
                        f"dataset '{self.dataset}': the URL of connection "
                        f"'{self.config.connection_name()}' cannot be parsed",
                        hint="percent-encode @ : / ? # % and spaces in the user name and "
                        "password (p@ss → p%40ss), or give password: as its own field",
                    )
                ]
            ) from None
        remember(info)
        return info


def _collation_of(config: PostgresSourceSpec, relation: exp.Expr, cursor: str) -> exp.Expr:
    """SQL for the collation name of the cursor column (NULL: its type has none): the
    column's own for a table; for a query, 'unknown' when its type is collatable (the
    query may use any collation: no fingerprint, read every run)."""
    if config.table is not None:
        regclass = exp.func("to_regclass", exp.Literal.string(relation.sql("postgres")))
        return (
            exp.select("co.collname")
            .from_("pg_attribute AS a")
            .join("pg_collation AS co", on="co.oid = a.attcollation")
            .where(exp.EQ(this=exp.column("attrelid", "a"), expression=regclass))
            .where(exp.EQ(this=exp.column("attname", "a"), expression=exp.Literal.string(cursor)))
            .subquery()
        )
    newest = exp.select(exp.func("max", exp.column(ident(cursor)))).from_(relation.copy())
    typed = exp.EQ(this=exp.column("oid", "t"), expression=exp.func("pg_typeof", newest.subquery()))
    collatable = exp.If(
        this=exp.NEQ(this=exp.column("typcollation", "t"), expression=exp.Literal.number(0)),
        true=exp.Literal.string("unknown"),
    )
    return exp.select(exp.Case(ifs=[collatable])).from_("pg_type AS t").where(typed).subquery()


def byte_ordered(collation: object, database_default: object) -> bool:
    """Whether text under ``collation`` (``pg_collation_for``: NULL for a type that has
    none) sorts byte-wise, as the engine orders the text cursor values it read.

    >>> byte_ordered(None, "en_US.UTF-8"), byte_ordered('"C"', "x")
    (True, True)
    >>> byte_ordered('"default"', "C.UTF-8"), byte_ordered('"default"', "en_US.UTF-8")
    (True, False)
    >>> byte_ordered('"en-US-x-icu"', "C")
    False
    """
    if collation is None:
        return True
    name = str(collation).strip('"')
    if name == "default":
        name = str(database_default or "")
    return name in ("C", "POSIX", "ucs_basic") or name.lower() in ("c.utf8", "c.utf-8")


def _relation(config: PostgresSourceSpec) -> exp.Expr:
    """The table (``schema.name``, default schema public) or the query, as a relation."""
    if config.table is not None:
        schema, _, name = config.table.rpartition(".")
        return exp.table_(ident(name), db=ident(schema or "public"))
    assert config.query is not None
    return parse_query(config.query, "postgres").subquery("q")


# ---- the reader ---------------------------------------------------------------------------

#: catalog type → column type of the CSV copy (binary, JSON, intervals stay text there)
_PG_TYPES = {
    t: v
    for t, v in {**PG_NATIVE, **PG_CAST}.items()
    if v not in ("BLOB", "JSON", "INTERVAL", "TIMETZ")
}


def engine_type(t: str) -> str:
    """The staging type of a PostgreSQL catalog type (``format_type`` text).

    >>> engine_type("numeric(12,2)"), engine_type("character varying(20)")
    ('NUMERIC(12,2)', 'VARCHAR')
    """
    t = t.lower()
    if t in _PG_TYPES:
        return _PG_TYPES[t]
    if t.startswith("numeric(") or t.startswith("decimal("):
        p = int(t.split("(")[1].split(",")[0].rstrip(")"))
        return t.upper() if p <= 38 else "DOUBLE"
    if t in ("numeric", "decimal"):
        return "DOUBLE"
    return "VARCHAR"  # varchar(n), char, json, arrays, …: compared as text


def split_table_url(url: str) -> tuple[str, str, str]:
    """``postgresql://…/db?table=schema.name`` → (connection URL, schema, table)."""
    parts = urlsplit(url)
    qs = parse_qs(parts.query)
    tables = qs.pop("table", None)
    if not tables:
        raise InputError(
            f"PostgreSQL target {redact(url)!r} names no table",
            hint="append ?table=schema.name, e.g. postgresql://user@host/db?table=public.orders",
        )
    schema, _, tbl = tables[0].rpartition(".")
    conn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(qs, doseq=True), ""))
    return conn, schema or "public", tbl


_COLUMNS_SQL = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = "
    "c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 "
    "AND NOT a.attisdropped ORDER BY a.attnum"
)


#: rejected records of :func:`load_table` whose reason is returned (the rest are counted)
REJECT_SAMPLE = 20


def load_table(
    con: SqlConnection, name: str, conninfo: str, schema: str, table: str, tmp: str
) -> tuple[int, list[tuple[int, str]]]:
    """Copy PostgreSQL table ``schema.table`` into table ``name`` on ``con`` (spilling to a
    CSV file in folder ``tmp``), typed from the catalog. A row with a value its column's
    type cannot hold (``NaN`` in a ``numeric``, a BC date) is not loaded: returns how many
    were rejected and (line, reason) of the first :data:`REJECT_SAMPLE` — the check
    counts them, it never crashes on one nor leaves it out unsaid."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:  # pragma: no cover
        raise InputError(
            "reading PostgreSQL needs psycopg", hint="pip install 'lockgate[postgres]'"
        ) from None
    if "://" in conninfo:  # key=value conninfo: the connection remembered its secrets
        remember(conninfo)
    path = os.path.join(tmp, f"{name}.csv")
    try:
        with psycopg.connect(conninfo) as pg:
            pg.execute("SET TimeZone = 'UTC'")
            pg.execute("SET DateStyle = 'ISO, YMD'")
            pg.execute("SET extra_float_digits = 3")
            cols = pg.execute(_COLUMNS_SQL, (schema, table)).fetchall()
            if not cols:
                raise InputError(f"PostgreSQL table {schema}.{table} not found (or no columns)")
            # BC dates/timestamps in the engine's form: its CSV reader took '0044-03-15 BC'
            # for 44 AD — a silent coercion
            bc = sql.SQL(r"regexp_replace({}::text, '^(\d+-\d\d-\d\d)(.*) BC$', '\1 (BC)\2')")
            exprs = [
                bc.format(sql.Identifier(c))
                if engine_type(t) in ("DATE", "TIMESTAMP", "TIMESTAMPTZ")
                else sql.Identifier(c)
                for c, t in cols
            ]
            q = sql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT csv)").format(
                sql.SQL(", ").join(exprs), sql.Identifier(schema), sql.Identifier(table)
            )
            with pg.cursor() as cur, open(path, "wb") as f, cur.copy(q) as copy:
                for chunk in copy:
                    f.write(chunk)
    except psycopg.Error as e:
        raise InputError(f"cannot read PostgreSQL table {schema}.{table}: {e}") from None
    rejects = name + "__lg_rejects"
    types = {c: engine_type(t) for c, t in cols}
    con.execute(_load_csv(name, path, types, rejects=rejects).sql("duckdb"))
    source_types: dict[str, str] = {str(c): str(t) for c, t in cols}
    ((count,),) = con.execute(f"SELECT count(*) FROM {ident(rejects).sql('duckdb')}").fetchall()
    rows = con.execute(
        f"SELECT line, column_name, error_message FROM {ident(rejects).sql('duckdb')} "
        f"ORDER BY line LIMIT {REJECT_SAMPLE}"
    ).fetchall()
    sample = [
        (int(line), f"column {col} ({source_types.get(col, '?')}): {redact(str(message))}")
        for line, col, message in rows
    ]
    return int(count), sample


def _load_csv(
    name: str, path: str, columns: dict[str, str], *, rejects: str | None = None
) -> exp.Create:
    types = exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(c), expression=exp.Literal.string(t))
            for c, t in columns.items()
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
            *(
                []
                if rejects is None
                else [
                    exp.PropertyEQ(this=exp.var("store_rejects"), expression=exp.true()),
                    exp.PropertyEQ(
                        this=exp.var("rejects_table"), expression=exp.Literal.string(rejects)
                    ),
                    exp.PropertyEQ(
                        this=exp.var("rejects_scan"),
                        expression=exp.Literal.string(rejects + "_scan"),
                    ),
                ]
            ),
        ],
    )
    return exp.Create(
        this=exp.Table(this=ident(name)),
        kind="TABLE",
        replace=True,
        expression=exp.select(exp.Star()).from_(exp.Table(this=fn)),
    )
