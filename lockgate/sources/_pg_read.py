"""The PostgreSQL read of ``type: postgres``: catalog → :class:`Column` plan, then an Arrow
stream (ADBC ``adbc-driver-postgresql`` when installed — the fastest measured —, else
psycopg with a server-side cursor) into the engine session (see :mod:`lockgate.sources._db`).

Types come from ``pg_attribute``/``format_type``, never from what the driver infers:
ints, floats, booleans, text and ``bytea`` stream natively; ``numeric`` (exact decimal; its
digits must survive), dates, times, ``timestamp`` vs ``timestamptz``, ``interval``,
``uuid``, ``json``/``jsonb`` travel as PostgreSQL's text and are cast in the engine; arrays
as JSON, enums as text. The session runs in UTC with ISO dates.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate.errors import InputError, LockgateError, TransientError
from lockgate.redact import redact
from lockgate.sources._db import (
    CAST,
    DECIMAL,
    HEX,
    JSON_LIST,
    NATIVE,
    Column,
    DbSourceConfig,
    cursor_read,
    cursor_select,
    finish,
    held_back_select,
    held_back_warning,
    load_stream,
    optional_module,
    parse_query,
    select_columns,
    text_rows_reader,
)
from lockgate.sql import ident

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.session import Session
    from lockgate.sources.base import ResumeToken, Source

PG_NATIVE = {
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "character": "VARCHAR",
    "name": "VARCHAR",
    '"char"': "VARCHAR",
    "bytea": "BLOB",
}
PG_CAST = {
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMPTZ",
    "time without time zone": "TIME",
    "time with time zone": "TIMETZ",
    "interval": "INTERVAL",
    "uuid": "UUID",
    "json": "JSON",
    "jsonb": "JSON",
}
#: every reading connection: UTC, ISO dates and intervals, floats with every digit
_SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 3",
)
_TIMESTAMPS = ("timestamp without time zone", "timestamp with time zone")
#: scale given to an unconstrained ``numeric`` (values needing more digits are rejected)
UNCONSTRAINED_SCALE = 10

#: a column of a domain type is read as the domain's base type (``CREATE DOMAIN posint AS
#: integer``: an integer, not text); the last field says it is one (the read casts to it)
_CATALOG_SQL = (
    "SELECT a.attname, format_type(b.oid, m.mod), b.typtype, b.typcategory, "
    "format_type(b.typelem, m.mod), t.typtype = 'd' FROM pg_attribute a "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "CROSS JOIN LATERAL (SELECT CASE WHEN t.typtype = 'd' THEN t.typtypmod "
    "ELSE a.atttypmod END AS mod) m "
    "JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
    "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum"
)


def _bare(t: str) -> str:
    """``timestamp(3) with time zone`` → ``timestamp with time zone``; ``varchar(9)`` → …"""
    return re.sub(r"\(\d+(,\d+)?\)", "", t).strip()


def pg_column(
    name: str, typ: str, typtype: str, category: str, elem: str, domain: bool = False
) -> Column:
    """The read plan of one column from its catalog type (``domain``: ``typ`` is the base
    type of the column's domain type; the value is cast to it)."""
    col: exp.Expr = exp.column(ident(name))
    if domain:
        col = exp.cast(col, exp.DataType.build(typ, dialect="postgres", udt=True))
    text = exp.cast(col, "text")
    bare = _bare(typ)
    if category == "A":
        inner = pg_column(name, elem, "b", "", "")
        as_json = exp.cast(exp.func("to_json", col), "text")
        return Column(name, as_json, inner.type + "[]", JSON_LIST, typ)
    if bare in PG_NATIVE:
        return Column(name, col, PG_NATIVE[bare], NATIVE, typ)
    if bare in _TIMESTAMPS:
        # exact and fast natively (binary COPY: int64 microseconds), except where the
        # driver's shift to the Unix epoch overflows: ±infinity and years near 294276; those
        # rows alone also carry their text, cast (or rejected) from it
        odd = exp.or_(
            exp.not_(exp.func("isfinite", col.copy())),
            exp.GTE(
                this=col.copy(),
                expression=exp.cast(exp.Literal.string("290000-01-01"), "timestamp"),
            ),
        )
        guard = exp.Case(ifs=[exp.If(this=odd, true=text)])
        return Column(name, col, PG_CAST[bare], NATIVE, typ, guard=guard)
    if bare in PG_CAST:
        return Column(name, text, PG_CAST[bare], CAST, typ)
    if bare in ("numeric", "decimal"):
        m = re.search(r"\((\d+)(?:,(\d+))?\)", typ)
        p, s = (int(m.group(1)), int(m.group(2) or 0)) if m else (39, UNCONSTRAINED_SCALE)
        # numeric(p<=38, s) fits exactly (PostgreSQL enforces the typmod): only NaN and
        # ±Infinity fail the cast; wider ones are checked digit by digit
        how = CAST if p <= 38 else DECIMAL
        return Column(name, text, f"DECIMAL({min(p, 38)},{min(s, 38)})", how, typ)
    if bare == "money":  # its text depends on lc_monetary ('$1,234.50'); the number does not
        as_number = exp.cast(exp.cast(col, "numeric"), "text")
        return Column(name, as_number, f"DECIMAL(38,{UNCONSTRAINED_SCALE})", DECIMAL, typ)
    return Column(name, text, "VARCHAR", NATIVE, typ)  # enums, inet, xml, …: their text


def as_text_column(c: Column) -> Column:
    """The fallback reader streams text only: natives travel as text and are cast back."""
    if c.guard is not None:
        return Column(c.name, exp.cast(c.remote, "text"), c.type, CAST, c.source_type)
    if c.how != NATIVE:
        return c
    if c.type == "BLOB":
        hexed = exp.func("encode", c.remote, exp.Literal.string("hex"))
        return Column(c.name, hexed, c.type, HEX, c.source_type)
    return Column(c.name, exp.cast(c.remote, "text"), c.type, CAST, c.source_type)


def pg_errors() -> tuple[type[BaseException], ...]:
    import psycopg

    errors: list[type[BaseException]] = [psycopg.Error]
    try:
        import adbc_driver_manager

        errors.append(adbc_driver_manager.Error)
    except ImportError:  # pragma: no cover - the fallback reader has no ADBC errors
        pass
    return tuple(errors)


#: what libpq says when the connection went away (the server ended the backend, a network
#: drop, a restart): ADBC reports it as a plain ``OSError("[libpq] …")`` from the stream
_LOST = (
    "terminating connection",
    "server closed the connection",
    "connection to server",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "connection reset",
    "ssl connection has been closed",
    "the database system is shutting down",
    "the database system is starting up",
    "eof detected",
)


def is_driver_error(e: BaseException) -> bool:
    """A PostgreSQL driver's error: psycopg's, ADBC's, or the ``OSError("[libpq] …")`` an
    ADBC Arrow stream raises mid-read (never another ``OSError``, e.g. a full disk)."""
    if isinstance(e, pg_errors()):
        return True
    return isinstance(e, OSError) and str(e).startswith("[libpq]")


def translate_error(e: BaseException, label: str) -> LockgateError:
    """A driver error as a lockgate error: a lost connection is transient (the step is
    retried; nothing was published), a missing table or bad SQL is an input error."""
    import psycopg

    text = redact(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    lost = isinstance(e, psycopg.OperationalError | psycopg.InterfaceError) or type(e).__name__ in (
        "OperationalError",
        "InterfaceError",
    )  # ADBC's, by name
    if not lost and is_driver_error(e):  # psycopg's subclasses (AdminShutdown…), ADBC's OSError
        lowered = str(e).lower()
        lost = any(marker in lowered for marker in _LOST)
    transient = lost and not any(
        w in text for w in ("does not exist", "syntax error", "permission denied")
    )
    msg = f"cannot read PostgreSQL {label}: {text}"
    return TransientError(msg) if transient else InputError(msg)


def read_postgres(
    source: Source,
    session: Session,
    table: str,
    conninfo: str,
    resume: ResumeToken,
    warnings: list[str] | None = None,
) -> tuple[int, ResumeToken]:
    """Stage the source into ``table`` (+ rejects); returns (rejected rows, resume token).
    What the step should report goes to ``warnings``."""
    import psycopg

    config = source.config
    assert isinstance(config, DbSourceConfig)
    with psycopg.connect(conninfo) as pg:
        relation, columns = _plan(pg, config)
        held = held_back_select(source.request, relation, columns, now=exp.func("now"))
        if held is not None and source.request.incremental is not None:
            _session_setup(pg)
            row = pg.execute(held.sql("postgres")).fetchone()
            note = held_back_warning(source.request.incremental.cursor, *(row or (0, None)))
            if note is not None and warnings is not None:
                warnings.append(note)
    driver = optional_module("adbc_driver_postgresql")
    if driver is None:
        columns = [as_text_column(c) for c in columns]
    partition = getattr(config, "partition", None)
    origin = f"postgres:{config.table or 'query'}"
    if partition is not None:
        raw, cursor = _read_partitioned(
            source, session, table, conninfo, (relation, columns), resume, driver
        )
        rejected, last = finish(session, raw, table, columns, cursor=cursor, origin=origin)
        return rejected, ({"cursor": last} if last is not None else None)
    now = exp.func("now")
    query, cursor = cursor_read(
        source.request, relation, columns, resume, now=now, dialect="postgres"
    )
    if driver is not None:
        raw = _read_adbc(session, table, conninfo, query)
    else:
        raw = _read_psycopg(session, table, conninfo, query, config.batch_rows)
    rejected, last = finish(session, raw, table, columns, cursor=cursor, origin=origin)
    return rejected, ({"cursor": last} if last is not None else None)


def _read_partitioned(
    source: Source,
    session: Session,
    table: str,
    conninfo: str,
    plan: tuple[exp.Expr, list[Column]],
    resume: ResumeToken,
    driver: Any,
) -> tuple[str, Column | None]:
    """The read split in ranges on ``partition.column``, one connection each, all on the
    coordinator's snapshot (:mod:`lockgate.sources._pg_partition`)."""
    import psycopg

    from lockgate.sources._pg_partition import Hooks, SharedSnapshot, read_partitioned

    config = source.config
    assert isinstance(config, DbSourceConfig)
    spec = getattr(config, "partition", None)
    assert spec is not None
    relation, columns = plan
    with SharedSnapshot(conninfo) as snap:
        # now() of the snapshot, the same for every partition (settle: one upper bound)
        (now_value,) = snap.one(exp.select(exp.cast(exp.func("now"), "text")))
        now = exp.cast(exp.Literal.string(str(now_value)), "timestamptz")
        query, cursor = cursor_select(
            source.request, relation, columns, resume, now=now, dialect="postgres"
        )

        def open_reader(i: int, setup: list[str], sql: str) -> tuple[Any, Any]:
            conn: Any = (
                AdbcConnection(conninfo)
                if driver is not None
                else psycopg.connect(conninfo, autocommit=True)
            )
            try:
                for statement in setup:
                    conn.execute(statement)
                _session_setup(conn)
                if Hooks.before_read is not None:
                    Hooks.before_read(i)
                if isinstance(conn, AdbcConnection):
                    return conn.stream(sql), conn.close
                named = conn.cursor(name=f"lg_source_{i}")
                named.execute(sql)
                names = [d.name for d in named.description or []]
                reader = text_rows_reader(names, named.fetchmany, config.batch_rows)
                return reader, lambda: (named.close(), conn.close())
            except BaseException:
                conn.close()
                raise

        raw = read_partitioned(session, table, query, spec, snap, open_reader)
    return raw, cursor


def _plan(pg: Any, config: DbSourceConfig) -> tuple[exp.Expr, list[Column]]:
    if config.table is not None:
        schema, _, name = config.table.rpartition(".")
        relation: exp.Expr = exp.table_(ident(name), db=ident(schema or "public"))
        regclass = relation.sql("postgres")
    else:
        assert config.query is not None
        query = parse_query(config.query, "postgres")
        pg.execute("CREATE TEMP VIEW lg_source_query AS " + query.sql("postgres"))
        relation, regclass = query.subquery("q"), "lg_source_query"
    try:
        rows = pg.execute(_CATALOG_SQL, (regclass,)).fetchall()
    except Exception as e:
        if "does not exist" in str(e):
            raise InputError(f"PostgreSQL table {config.table} not found") from None
        raise
    columns = [pg_column(*r) for r in rows]
    return relation, select_columns(columns, config.columns)


def _session_setup(cur: Any) -> None:
    for setting in _SESSION:
        cur.execute(setting)


class AdbcConnection:
    """One ADBC PostgreSQL connection through the driver manager's low-level API (autocommit).

    Not ``adbc_driver_manager.dbapi``: that module imports pandas and polars (for backends
    this reader never uses), ~0.4 s of CPU in every process that reads."""

    def __init__(self, conninfo: str) -> None:
        import adbc_driver_manager
        import adbc_driver_postgresql

        self._db = adbc_driver_postgresql.connect(conninfo)
        self._conn: Any = None
        self._stmt: Any = None
        self._reader: Any = None
        try:
            self._conn = adbc_driver_manager.AdbcConnection(self._db)
            self._stmt = adbc_driver_manager.AdbcStatement(self._conn)
        except BaseException:
            self.close()
            raise

    def execute(self, sql: str) -> None:
        """Run a statement whose result is not read (``SET``, ``BEGIN``…)."""
        self._stmt.set_sql_query(sql)
        self._stmt.execute_update()

    def stream(self, sql: str) -> pa.RecordBatchReader:
        """The rows of ``sql`` as an Arrow stream (read before :meth:`close`)."""
        import pyarrow as pa

        self._stmt.set_sql_query(sql)
        handle, _ = self._stmt.execute_query()
        self._reader = pa.RecordBatchReader._import_from_c(handle.address)
        return self._reader

    def close(self) -> None:
        """Release the stream, the statement, the connection and the database, in order."""
        for part in (self._reader, self._stmt, self._conn, self._db):
            if part is not None:
                with contextlib.suppress(Exception):  # closing after a failed read
                    part.close()
        self._reader = self._stmt = self._conn = None

    def __enter__(self) -> AdbcConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_adbc(session: Session, table: str, conninfo: str, query: str) -> str:
    with AdbcConnection(conninfo) as conn:
        _session_setup(conn)
        return load_stream(session, table, conn.stream(query))


def _read_psycopg(session: Session, table: str, conninfo: str, query: str, batch: int) -> str:
    import psycopg

    with psycopg.connect(conninfo) as pg:
        _session_setup(pg)
        with pg.cursor(name="lg_source") as cur:
            cur.execute(query)
            names = [d.name for d in cur.description or []]
            return load_stream(session, table, text_rows_reader(names, cur.fetchmany, batch))
