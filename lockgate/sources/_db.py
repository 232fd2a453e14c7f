"""What the database sources (``postgres``, ``mysql``) share: the config fields, the read
query (columns, cursor window, settle), and the typed load of a raw Arrow stream.

A database adapter reads the catalog and describes each column as a :class:`Column`: the
expression that reads it remotely (native when the driver's Arrow type is exact, else the
database's own text form) and the staging type it must become. The rows stream as Arrow
batches into ``<table>__raw`` of the engine session (bounded memory: the engine consumes the
reader batch by batch), then one pass casts every column to its catalog type. A row with a
value the staging type cannot hold exactly (``NaN`` in a ``numeric``, a MySQL zero date, a
``time`` beyond 24 h, a ``numeric`` with more than 38 digits) goes to ``<table>__rejects``
with the column and the reason — never coerced, never dropped.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlglot
from pydantic import Field
from sqlglot import exp

from lockgate.errors import ConfigError, Problem
from lockgate.sources.base import (
    REJECTS_SUFFIX,
    SourceConfig,
    SourceRequest,
    create_rejects_table,
)
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.session import Session

#: how a raw value becomes its staging type
NATIVE, CAST, DECIMAL, JSON_LIST, HEX = "native", "cast", "decimal", "json_list", "hex"


class DbSourceConfig(SourceConfig):
    """Fields every database source has (subclasses add ``type``)."""

    connection: str = Field(description="name of a connection in lockgate.yaml (connections:)")
    table: str | None = Field(default=None, description="the table, as schema.name (or set query:)")
    query: str | None = Field(default=None, description="a SELECT to read instead of a table")
    columns: list[str] | None = Field(
        default=None, description="columns to read (default: all, in catalog order)"
    )
    settle: str | None = Field(
        default=None,
        description="incremental: read only rows whose cursor is older than now() - settle "
        "(e.g. '2m'), so rows of transactions still in flight are read by the next run",
    )
    batch_rows: int = Field(
        default=65_536, ge=1024, description="rows per Arrow batch read from the database"
    )

    def relation_problem(self) -> str | None:
        if (self.table is None) == (self.query is None):
            return "set exactly one of 'table:' and 'query:'"
        return None


@dataclass(frozen=True)
class Column:
    """One column of the read: name, remote select expression, staging type, conversion."""

    name: str
    remote: exp.Expr
    type: str
    how: str = NATIVE
    source_type: str = ""
    #: ``native`` read whose driver mangles some values (ADBC overflows PostgreSQL's
    #: ``infinity`` timestamps): a second remote column, ``<name>__lg_guard``, holds the
    #: database's text for those rows only (NULL otherwise); they are cast from it instead
    guard: exp.Expr | None = None


def guard_name(c: Column) -> str:
    return c.name + "__lg_guard"


def check_config(request: SourceRequest, config: DbSourceConfig) -> None:
    problem = config.relation_problem()
    if problem is None and config.settle is not None and request.incremental is None:
        problem = "'settle:' needs 'incremental:' on the dataset"
    if problem:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{request.dataset}': {problem}",
                    file=request.defined_in,
                    line=request.defined_line,
                )
            ]
        )


def parse_query(sql: str, dialect: str) -> exp.Query:
    """The user's ``query:`` as a sqlglot expression (a SELECT), or a ConfigError."""
    try:
        parsed = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as e:
        raise ConfigError([Problem(f"query: cannot parse: {e}")]) from None
    if not isinstance(parsed, exp.Query):
        raise ConfigError([Problem("query: must be a SELECT")])
    return parsed


def select_columns(columns: list[Column], wanted: list[str] | None) -> list[Column]:
    if not wanted:
        return columns
    by_name = {c.name: c for c in columns}
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise ConfigError(
            [Problem(f"columns: {', '.join(missing)} not in the source ({', '.join(by_name)})")]
        )
    return [by_name[w] for w in wanted]


def read_query(
    relation: exp.Expr,
    columns: list[Column],
    *,
    cursor: Column | None,
    since: str | None,
    settle: str | None,
    now: exp.Expr,
    dialect: str,
    lookback: str | int | float | None = None,
) -> exp.Select:
    """``SELECT <remote exprs> FROM relation [WHERE cursor >= since [- lookback] AND
    cursor < now - settle]``.

    ``lookback`` (the dataset's ``incremental.lookback``) reads again that much before the
    last cursor value read — a duration for a time cursor, a number for a numeric one — so
    rows that arrived late with an older cursor are caught; the run loop takes the rows it
    had already published out of the batch (``already_published``)."""
    selected = [exp.alias_(c.remote, ident(c.name)) for c in columns]
    selected += [exp.alias_(c.guard, ident(guard_name(c))) for c in columns if c.guard is not None]
    q = exp.select(*selected).from_(relation)
    if cursor is None:
        return q
    col = exp.column(ident(cursor.name))
    lowest: exp.Expr = exp.Literal.string(since or "")
    if dialect == "postgres":  # MySQL compares a column with a string literal by its type
        typ = exp.DataType.build(cursor.source_type or "text", dialect=dialect, udt=True)
        lowest = exp.cast(lowest, typ)
    if since is not None and lookback is not None:
        lowest = _minus(lowest, cursor, lookback)
    # a NULL cursor has no place relative to any watermark: those rows are read by every
    # run (the run loop skips the ones already published, ``already_published``) — a
    # ``cursor >= since`` alone would never read one inserted after the first run
    null = exp.Is(this=col.copy(), expression=exp.Null())
    if since is not None:
        q = q.where(exp.paren(exp.or_(exp.GTE(this=col.copy(), expression=lowest), null.copy())))
    upper: exp.Expr | None = None
    if settle is not None:
        seconds = exp.Literal.number(int(duration(settle).total_seconds()))
        upper = exp.Sub(this=now, expression=exp.Interval(this=seconds, unit=exp.var("SECOND")))
        q = q.where(exp.paren(exp.or_(exp.LT(this=col.copy(), expression=upper), null.copy())))
    elif (upper := future_bound(cursor, now)) is not None:
        q = q.where(exp.paren(exp.or_(exp.LTE(this=col.copy(), expression=upper), null.copy())))
    return q


#: how far a cursor without a time zone (``timestamp``, ``date``) may be ahead of the
#: database's UTC clock and still be read: its wall-clock time may be of any zone
_NAIVE_AHEAD_HOURS = 14


def future_bound(cursor: Column, now: exp.Expr) -> exp.Expr | None:
    """The newest cursor value a read takes: rows stamped beyond the database's clock (a
    wrong clock, ``'infinity'``) are left for the run after the clock reaches them.
    Read now, they would move the watermark past every row written until then — those
    would be read as late rows, or, past ``'infinity'``, never. ``timestamptz`` is an
    instant (``<= now``); a ``timestamp``/``date`` may be local time of any zone
    (``<= now + 14 hours``). None for other cursors (numbers, text: no clock)."""
    if cursor.type == "TIMESTAMPTZ":
        return now.copy()
    if cursor.type in ("TIMESTAMP", "DATE"):
        ahead = exp.Interval(
            this=exp.Literal.number(_NAIVE_AHEAD_HOURS * 3600), unit=exp.var("SECOND")
        )
        return exp.Add(this=now.copy(), expression=ahead)
    return None


def _minus(value: exp.Expr, cursor: Column, lookback: str | int | float) -> exp.Expr:
    """``value - lookback`` in the cursor's terms: an interval for dates and timestamps,
    a number otherwise."""
    if "TIME" in cursor.type or cursor.type == "DATE":
        seconds = int(
            duration(lookback if isinstance(lookback, str) else f"{lookback}s").total_seconds()
        )
        if cursor.type == "DATE":  # whole days: a date minus a time interval is a timestamp
            days = exp.Interval(
                this=exp.Literal.number(max(seconds // 86400, 0)), unit=exp.var("DAY")
            )
            return exp.cast(exp.Sub(this=value, expression=days), "DATE")
        step = exp.Interval(this=exp.Literal.number(seconds), unit=exp.var("SECOND"))
        return exp.Sub(this=value, expression=step)
    if isinstance(lookback, str):
        raise ConfigError(
            [
                Problem(
                    f"incremental.lookback {lookback!r} is a duration but cursor "
                    f"'{cursor.name}' is {cursor.source_type}: use a number"
                )
            ]
        )
    return exp.Sub(this=value, expression=exp.Literal.number(lookback))


def cursor_read(
    request: SourceRequest,
    relation: exp.Expr,
    columns: list[Column],
    resume: object,
    *,
    now: exp.Expr,
    dialect: str,
) -> tuple[str, Column | None]:
    """The read's SQL text (from the resume token's cursor on, when incremental) and the
    cursor column, if any."""
    query, cursor = cursor_select(request, relation, columns, resume, now=now, dialect=dialect)
    return query.sql(dialect), cursor


def cursor_select(
    request: SourceRequest,
    relation: exp.Expr,
    columns: list[Column],
    resume: object,
    *,
    now: exp.Expr,
    dialect: str,
) -> tuple[exp.Select, Column | None]:
    """:func:`cursor_read` as an expression (a partitioned read adds its range to it)."""
    config = request.config
    assert isinstance(config, DbSourceConfig)
    inc = request.incremental
    cursor = next((c for c in columns if inc and c.name == inc.cursor), None)
    since = resume.get("cursor") if isinstance(resume, dict) else None
    if config.settle is not None and cursor is not None and "TIME" not in cursor.type:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{request.dataset}': 'settle:' needs a timestamp cursor; "
                    f"'{cursor.name}' is {cursor.source_type}",
                    file=request.defined_in,
                    line=request.defined_line,
                )
            ]
        )
    query = read_query(
        relation,
        columns,
        cursor=cursor,
        since=None if since is None else str(since),
        settle=config.settle,
        now=now,
        dialect=dialect,
        lookback=inc.lookback if inc is not None else None,
    )
    return query, cursor


def held_back_select(
    request: SourceRequest, relation: exp.Expr, columns: list[Column], *, now: exp.Expr
) -> exp.Select | None:
    """``SELECT count(*), max(cursor)`` of the rows an incremental read leaves for later
    because their cursor is beyond the clock (:func:`future_bound`), or None (no such
    bound: not a time cursor, or a ``settle:`` window decides)."""
    inc, config = request.incremental, request.config
    if inc is None or not isinstance(config, DbSourceConfig) or config.settle is not None:
        return None
    cursor = next((c for c in columns if c.name == inc.cursor), None)
    upper = future_bound(cursor, now) if cursor is not None else None
    if upper is None:
        return None
    col = exp.column(ident(inc.cursor))
    return (
        exp.select(exp.func("count", exp.Star()), exp.cast(exp.func("max", col.copy()), "text"))
        .from_(relation.copy())
        .where(exp.GT(this=col, expression=upper))
    )


def held_back_warning(cursor: str, count: object, newest: object) -> str | None:
    """The step's warning about rows left for later (:func:`held_back_select`)."""
    if not count:
        return None
    return (
        f"incremental: {count} row(s) with '{cursor}' beyond the database clock (newest "
        f"{newest}) left for a later run: they are read once the clock reaches them (a "
        f"wrong clock or 'infinity' in the source)"
    )


def fingerprint_select(
    request: SourceRequest,
    relation: exp.Expr,
    *,
    now: exp.Expr,
    text_type: str,
    clock: exp.Expr | None = None,
) -> exp.Select | None:
    """The cheap "has anything changed?" query of an incremental read, or None (a full
    read has none: every run reads it).

    ``SELECT max(cursor), count(rows from max - lookback on)`` over the settled rows: an
    index on the cursor answers both. It changes when a row arrives with a newer cursor, a
    row lands at (or within the lookback before) the newest one, or such a row is deleted —
    everything the incremental read could see. A late row older than the lookback is not
    seen by the read either."""
    inc = request.incremental
    config = request.config
    if inc is None or not isinstance(config, DbSourceConfig):
        return None
    col = exp.column(ident(inc.cursor))
    settled: exp.Expr | None = None
    if config.settle is not None:
        seconds = exp.Literal.number(int(duration(config.settle).total_seconds()))
        upper = exp.Sub(
            this=now.copy(), expression=exp.Interval(this=seconds, unit=exp.var("SECOND"))
        )
        settled = exp.LT(this=col.copy(), expression=upper)
    newest = exp.select(exp.func("max", col.copy())).from_(relation.copy())
    if settled is not None:
        newest = newest.where(settled.copy())
    lowest: exp.Expr = newest.subquery()
    if isinstance(inc.lookback, str):
        back = int(duration(inc.lookback).total_seconds())
        step = exp.Interval(this=exp.Literal.number(back), unit=exp.var("SECOND"))
        lowest = exp.Sub(this=lowest, expression=step)
    elif inc.lookback is not None:
        lowest = exp.Sub(this=lowest, expression=exp.Literal.number(inc.lookback))
    recent = exp.select(exp.func("count", exp.Star())).from_(relation.copy())
    # NULL-cursor rows count too: the read takes every one of them (see :func:`read_query`)
    null = exp.Is(this=col.copy(), expression=exp.Null())
    recent_where: exp.Expr = exp.GTE(this=col.copy(), expression=lowest)
    if settled is not None:
        recent_where = exp.and_(recent_where, settled.copy())
    recent = recent.where(exp.or_(exp.paren(recent_where), null))
    out = exp.select(exp.cast(newest.subquery(), text_type), recent.subquery())
    return out if clock is None else out.select(exp.cast(clock, text_type), copy=False)


def future_cursor(newest: object, clock: object) -> bool:
    """The newest cursor value (a fingerprint's text) lies beyond the database's clock
    (UTC text, ``clock``): a row stamped in the future or ``'infinity'``. Such a fingerprint
    says nothing about rows inserted later with a current cursor (they are below it), so
    the source must be read on every run until the clock passes it.

    >>> future_cursor("2999-01-01 00:00:00+00", "2024-01-01 10:00:00.5")
    True
    >>> future_cursor("infinity", "2024-01-01 10:00:00"), future_cursor("17", "2024-01-01")
    (True, False)
    >>> future_cursor("2024-01-02", "2024-01-01 23:00")
    True
    >>> future_cursor("2024-01-01", "2024-01-01 01:00")
    False
    """
    from datetime import datetime

    if not isinstance(newest, str) or not isinstance(clock, str):
        return False
    if newest.strip().lower() in ("infinity", "+infinity"):
        return True

    def parse(text: str) -> datetime | None:
        text = text.strip()
        year = re.match(r"^(\d+)-\d\d-\d\d", text)
        if year is not None and len(year.group(1)) > 4:  # 10000 AD on: beyond any clock
            return datetime.max
        # UTC text: drop the offset (+00) after a time of day, not a date's day
        text = re.sub(r"(\d\d:\d\d(:\d\d(\.\d+)?)?)\s*[+-]\d\d(:?\d\d)?$", r"\1", text)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None

    value, now = parse(newest), parse(clock)
    return value is not None and now is not None and value > now


def finish(
    session: Session,
    raw: str,
    table: str,
    columns: list[Column],
    *,
    cursor: Column | None,
    origin: str,
) -> tuple[int, str | None]:
    """Convert the raw stream (:func:`convert`); returns (rejected rows, largest cursor
    value staged, the next resume point)."""
    rejected = convert(session, raw, table, columns, origin)
    return rejected, max_cursor(session, table, cursor.name) if cursor is not None else None


def quote_userinfo(url: str) -> str:
    """A database URL whose password was typed raw, with ``@ / ? #`` in it, percent-encoded as
    libpq needs: the user information ends at the LAST ``@`` (libpq splits at the first
    and would take the rest of the password for the host — and show it in its error).
    A URL without such characters in its user information is returned as it is.

    >>> quote_userinfo("postgresql://me:p@ss/w?r#d@db:5432/shop")
    'postgresql://me:p%40ss%2Fw%3Fr%23d@db:5432/shop'
    >>> quote_userinfo("postgresql://me:p%40ss@db/shop?sslmode=require")
    'postgresql://me:p%40ss@db/shop?sslmode=require'
    """
    from urllib.parse import quote

    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at == -1:
        return url
    userinfo = rest[:at]
    user, colon, password = userinfo.partition(":")
    if not colon or not any(c in userinfo for c in "@/?#"):
        return url
    return f"{scheme}{sep}{quote(user, safe='%')}:{quote(password, safe='')}{rest[at:]}"


def optional_module(name: str) -> Any:
    """The module ``name``, or ``None`` when it is not installed (a faster optional driver)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def duration(text: str) -> timedelta:
    from lockgate._duration import parse_duration

    return parse_duration(text)


# ---- loading into the engine ---------------------------------------------------------------


def load_stream(session: Session, table: str, reader: pa.RecordBatchReader) -> str:
    """Stream ``reader`` into the table ``<table>__raw`` (batch by batch) and return its name.

    A driver error raised while the engine consumes the stream (a connection lost mid-read)
    is re-raised as itself, not as the engine's wrapper, so the adapter can tell a
    transient failure from a bad query."""
    import pyarrow as pa

    raw, view = table + "__raw", table + "__stream"
    failed: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (GeneratorExit, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # connectorx panics (pyo3's PanicException: no Exception)
            failed.append(e if isinstance(e, Exception) else RuntimeError(str(e)))
            raise

    session.register_arrow(view, pa.RecordBatchReader.from_batches(reader.schema, batches()))
    try:
        session.execute(
            exp.Create(
                this=table_ref(raw),
                kind="TABLE",
                replace=True,
                expression=exp.select("*").from_(table_ref(view)),
                properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
            )
        )
    except Exception:
        if failed:
            raise failed[0] from None
        raise
    finally:
        session.unregister(view)
    return raw


def text_rows_reader(
    names: list[str], fetch: Callable[[int], Sequence[Sequence[object]]], batch: int
) -> pa.RecordBatchReader:
    """A fallback driver's rows (every value text, via ``fetch(n)``) as an Arrow stream of
    string columns, ``batch`` rows at a time."""
    import pyarrow as pa

    schema = pa.schema([(n, pa.string()) for n in names])

    def batches() -> Iterator[pa.RecordBatch]:
        while rows := fetch(batch):
            cols = list(zip(*rows, strict=True))
            arrays = [
                pa.array([None if v is None else str(v) for v in c], pa.string()) for c in cols
            ]
            yield pa.record_batch(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _converted(c: Column) -> exp.Expr:
    raw = exp.column(ident(c.name))
    if c.guard is not None:
        typ = exp.DataType.build(c.type, dialect="duckdb")
        odd = exp.column(ident(guard_name(c)))
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=odd.copy(), expression=exp.Null()), true=raw)],
            default=exp.TryCast(this=odd, to=typ),
        )
    if c.how == NATIVE:
        return raw
    typ = exp.DataType.build(c.type, dialect="duckdb")
    if c.how == JSON_LIST:
        return exp.TryCast(this=exp.TryCast(this=raw, to=exp.DataType.build("JSON")), to=typ)
    if c.how == HEX:
        return exp.func("from_hex", raw)
    return exp.TryCast(this=_engine_text(raw, c.type), to=typ)


def _engine_text(raw: exp.Expr, typ: str) -> exp.Expr:
    """A database's text of a value in the form the engine parses: PostgreSQL's intervals
    write ``+`` before a time (``1 mon -1 days +25:00:00``), which the cast refused — an
    exact value quarantined as unrepresentable. (BC dates stay quarantined: a Delta table
    holding one could not be read back by deltalake's pyarrow reader.)"""
    if typ == "INTERVAL":
        return exp.func("replace", raw, exp.Literal.string("+"), exp.Literal.string(""))
    return raw


def _unrepresentable(c: Column) -> exp.Expr | None:
    """True for a row whose raw value of ``c`` does not survive the conversion exactly."""
    if c.guard is not None:
        odd = exp.column(ident(guard_name(c)))
        failed = exp.Is(this=_converted(c), expression=exp.Null())
        return exp.and_(exp.not_(exp.Is(this=odd, expression=exp.Null())), failed)
    if c.how in (NATIVE, HEX):
        return None
    raw = exp.column(ident(c.name))
    lost: exp.Expr = exp.Is(this=_converted(c), expression=exp.Null())
    if c.how == JSON_LIST:
        lost = exp.or_(lost, _list_loss(c, raw))
    if c.how == DECIMAL:  # every fractional digit must fit: a cast that rounds is a loss
        scale = exp.DataType.build(c.type, dialect="duckdb").expressions[1]
        fraction = exp.func("split_part", raw.copy(), exp.Literal.string("."), 2)
        digits = exp.func("length", exp.func("rtrim", fraction, exp.Literal.string("0")))
        lost = exp.or_(lost, exp.GT(this=digits, expression=exp.Literal.number(scale.name)))
    return exp.and_(exp.not_(exp.Is(this=raw.copy(), expression=exp.Null())), exp.paren(lost))


def _list_loss(c: Column, raw: exp.Column) -> exp.Expr:
    """True for an array (JSON text) whose elements do not all survive the cast to the
    list type: a cast turns an element it cannot convert into NULL (a nested array of a
    multi-dimensional PostgreSQL array, ``NaN``, a BC date) — the list must hold as many
    non-NULL elements as the JSON; and a decimal element must not lose fractional digits
    (an unconstrained ``numeric[]`` is cast to ``DECIMAL(38,10)[]``, which rounds)."""
    elements = exp.func("json_extract_string", raw.copy(), exp.Literal.string("$[*]"))
    count = exp.func("list_count", elements)
    lost: exp.Expr = exp.NEQ(this=exp.func("list_count", _converted(c)), expression=count)
    typ = exp.DataType.build(c.type, dialect="duckdb")
    inner = typ.expressions[0] if typ.expressions else None
    if isinstance(inner, exp.DataType) and inner.is_type(exp.DataType.Type.DECIMAL):
        scale = int(inner.expressions[1].name) if len(inner.expressions) > 1 else 0
        # a non-zero digit past the scale (PostgreSQL prints numbers in arrays plainly)
        pattern = exp.Literal.string(r"\." + r"\d" * scale + r"\d*[1-9]")
        lost = exp.or_(lost, exp.func("regexp_matches", raw.copy(), pattern))
    return exp.paren(lost)


def convert(
    session: Session,
    raw: str,
    table: str,
    columns: list[Column],
    origin: str,
    *,
    line: str | None = None,
    drop_raw: bool = True,
) -> int:
    """Create ``table`` (rows whose every value converts exactly) and ``table__rejects``
    (the others, with the column, the source type and the value in the reason) from the
    raw table; returns the number of rejected rows. The raw table is dropped (``drop_raw``:
    a raw view, e.g. over Arrow, is left to the caller and always read, never renamed)."""
    checks = [(c, p) for c in columns if (p := _unrepresentable(c)) is not None]
    bad: exp.Expr = exp.or_(*[p for _, p in checks]) if checks else exp.false()
    if drop_raw and all(c.how == NATIVE for c in columns):
        return _convert_in_place(session, raw, table, columns, checks, bad, origin)
    good = exp.select(*[exp.alias_(_converted(c), ident(c.name)) for c in columns])
    good = good.from_(table_ref(raw)).where(exp.not_(exp.paren(bad.copy())))
    session.execute(exp.Create(this=table_ref(table), kind="TABLE", replace=True, expression=good))
    rejects = table + REJECTS_SUFFIX
    if checks:
        rejected = _rejects_select(raw, checks, bad, origin, line)
        session.execute(exp.insert(rejected, table_ref(rejects)))
    if drop_raw:
        session.drop(raw)
    n = session.execute(exp.select(exp.func("count", exp.Star())).from_(table_ref(rejects)))
    row = n.fetchone()
    return int(row[0]) if row else 0


def _convert_in_place(
    session: Session,
    raw: str,
    table: str,
    columns: list[Column],
    checks: list[tuple[Column, exp.Expr]],
    bad: exp.Expr,
    origin: str,
) -> int:
    """:func:`convert` when every column streamed natively: the raw table becomes the
    stage table (a rename, not a copy of every row); only the rows a guard flags are
    rejected or rewritten from their text, then the guard columns are dropped."""
    rejects = table + REJECTS_SUFFIX
    n = 0
    if checks:
        session.execute(exp.insert(_rejects_select(raw, checks, bad, origin), table_ref(rejects)))
        row = session.execute(
            exp.select(exp.func("count", exp.Star())).from_(table_ref(rejects))
        ).fetchone()
        n = int(row[0]) if row else 0
        if n:
            session.execute(exp.delete(table_ref(raw), where=bad.copy()))
    for c in columns:
        if c.guard is None:
            continue
        odd = exp.column(ident(guard_name(c)))
        session.execute(
            exp.update(
                table_ref(raw),
                {ident(c.name).sql("duckdb"): _converted(c)},
                where=exp.not_(exp.Is(this=odd, expression=exp.Null())),
            )
        )
        session.execute(
            "ALTER TABLE "
            + table_ref(raw).sql("duckdb")
            + " DROP COLUMN "
            + ident(guard_name(c)).sql("duckdb")
        )
    session.drop(table)
    session.execute(
        "ALTER TABLE " + table_ref(raw).sql("duckdb") + " RENAME TO " + ident(table).sql("duckdb")
    )
    return n


def _rejects_select(
    raw: str,
    checks: list[tuple[Column, exp.Expr]],
    bad: exp.Expr,
    origin: str,
    line: str | None = None,
) -> exp.Select:
    reasons = [
        exp.If(
            this=p.copy(),
            true=exp.func(
                "concat",
                exp.Literal.string(f"column {c.name} ({c.source_type}): value '"),
                exp.cast(
                    exp.column(ident(guard_name(c) if c.guard is not None else c.name)), "VARCHAR"
                ),
                exp.Literal.string(f"' is not representable as {c.type}"),
            ),
        )
        for c, p in checks
    ]
    # an engine function, not sqlglot's CONCAT_WS (transpiled to NULL when any part is)
    reason = exp.Anonymous(this="concat_ws", expressions=[exp.Literal.string("; "), *reasons])
    record = exp.cast(exp.func("to_json", exp.column(ident(raw))), "VARCHAR")
    return (
        exp.select(
            exp.Literal.string(origin),
            exp.cast(exp.Null() if line is None else exp.column(ident(line)), "BIGINT"),
            record,
            reason,
        )
        .from_(table_ref(raw))
        .where(bad)
    )


def max_cursor(session: Session, table: str, cursor: str) -> str | None:
    """The largest cursor value staged, as text the source database parses back."""
    q = exp.select(exp.cast(exp.func("max", exp.column(ident(cursor))), "VARCHAR"))
    row = session.execute(q.from_(table_ref(table))).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def start_staging(
    session: Session, request: SourceRequest, config: DbSourceConfig, table: str
) -> None:
    """Before a database read into ``table``: the config agrees with the request, and the
    rejects table exists (a read that fails half-way still leaves it)."""
    check_config(request, config)
    create_rejects_table(session.con, table)
