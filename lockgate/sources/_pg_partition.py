"""Parallel range reads of ``type: postgres`` that share ONE snapshot.

``partition: {column: id, partitions: 4}`` splits the read into ``partitions`` ranges of an
integer column and reads them on as many connections at once. Every worker sees the same
database state: a coordinator transaction (``REPEATABLE READ``) calls
``pg_export_snapshot()`` and each worker starts its transaction with
``SET TRANSACTION SNAPSHOT`` on it before reading — rows updated, moved between ranges or
committed while the partitions are read do not make them disagree (no row read twice, none
missed, sums that add up). The range bounds and ``now()`` (for ``settle:``) come from the
coordinator's snapshot too. Rows whose partition column is NULL belong to the first range.

Memory stays bounded whatever the table size: each worker streams its rows as Arrow batches
into a bounded queue (a few batches), which the engine consumes as one stream into
``<table>__raw`` — the same typed load and quarantine as a single-connection read
(:mod:`lockgate.sources._db`).
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from lockgate.errors import ConfigError, InputError, Problem
from lockgate.sql import ident

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.session import Session


class PartitionSpec(BaseModel):
    """``partition: {column, partitions}`` of a database source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(description="an integer column to split the read on (ranges)")
    partitions: int = Field(default=4, ge=1, le=64, description="ranges read at once")


class Hooks:
    """Test seam where a test commits concurrent writes: ``after_export()`` runs once the
    snapshot is exported and the bounds read, before any worker starts; ``before_read(i)``
    runs in worker ``i`` after it imported the snapshot, before it reads."""

    after_export: ClassVar[Callable[[], None] | None] = None
    before_read: ClassVar[Callable[[int], None] | None] = None


_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")
_END = object()
#: batches waiting for the engine, per worker: memory is O(partitions x this x batch size)
QUEUE_BATCHES = 2


def ranges(lo: int, hi: int, n: int) -> list[tuple[int, int | None]]:
    """``n`` half-open ranges ``[start, end)`` covering ``lo..hi`` (the last one open-ended).

    >>> ranges(1, 10, 3)
    [(1, 5), (5, 9), (9, None)]
    >>> ranges(5, 5, 4)
    [(5, None)]
    """
    span = hi - lo + 1
    n = max(1, min(n, span))
    step = -(-span // n)
    out: list[tuple[int, int | None]] = []
    start = lo
    for i in range(n):
        end = start + step
        out.append((start, None if i == n - 1 or end > hi else end))
        if end > hi:
            break
        start = end
    return out


def range_filter(column: str, bounds: tuple[int, int | None], first: bool) -> exp.Expr:
    col = exp.column(ident(column))
    cond: exp.Expr = exp.GTE(this=col.copy(), expression=exp.Literal.number(bounds[0]))
    if bounds[1] is not None:
        cond = exp.and_(cond, exp.LT(this=col.copy(), expression=exp.Literal.number(bounds[1])))
    if first:
        cond = exp.or_(exp.paren(cond), exp.Is(this=col.copy(), expression=exp.Null()))
    return exp.paren(cond)


class SharedSnapshot:
    """The coordinator: a ``REPEATABLE READ`` transaction whose snapshot workers import;
    open from :meth:`__enter__` until every worker is done."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.snapshot = ""
        self._pg: Any = None

    def __enter__(self) -> SharedSnapshot:
        import psycopg

        self._pg = psycopg.connect(self.conninfo)
        self._pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self._pg.read_only = True
        row = self._pg.execute("SELECT pg_export_snapshot()").fetchone()
        self.snapshot = str(row[0])
        if not _SNAPSHOT_ID.match(self.snapshot):  # it goes into SQL text below
            raise InputError(f"unexpected snapshot id from pg_export_snapshot(): {row[0]!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._pg.rollback()
        finally:
            self._pg.close()

    def one(self, query: exp.Select) -> tuple[Any, ...]:
        row = self._pg.execute(query.sql("postgres")).fetchone()
        return tuple(row) if row is not None else ()

    def begin_sql(self) -> list[str]:
        """What a worker runs first: the same isolation level and snapshot."""
        return [
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{self.snapshot}'",
        ]


def bounds(snap: SharedSnapshot, query: exp.Select, column: str) -> tuple[int, int] | None:
    """min and max of the partition column over the read's rows (None: no non-NULL value)."""
    col = exp.column(ident(column))
    # the read's own FROM and WHERE, its select list replaced by the two aggregates
    probe = query.copy()
    probe.set("expressions", [exp.func("min", col.copy()), exp.func("max", col.copy())])
    lo, hi = snap.one(probe)
    if lo is None:
        return None
    if isinstance(lo, bool) or not isinstance(lo, int) or not isinstance(hi, int):
        raise ConfigError(
            [
                Problem(
                    f"partition.column '{column}' must be an integer column "
                    f"(found {type(lo).__name__} values)",
                    hint="partition on an integer key (id); dates and text are not split",
                )
            ]
        )
    return lo, hi


def read_partitioned(
    session: Session,
    table: str,
    query: exp.Select,
    spec: PartitionSpec,
    snap: SharedSnapshot,
    open_reader: Callable[[int, list[str], str], tuple[pa.RecordBatchReader, Callable[[], None]]],
) -> str:
    """Stream every partition of ``query`` into ``<table>__raw`` (see the module docstring).

    ``open_reader(i, setup_sql, query_sql)`` opens worker ``i``'s connection, runs
    ``setup_sql`` then streams ``query_sql``; it returns the reader and a close function."""
    import pyarrow as pa

    from lockgate.sources._db import load_stream

    limits = bounds(snap, query, spec.column)
    parts = ranges(*limits, spec.partitions) if limits else [(0, None)]
    sqls = []
    for i, b in enumerate(parts):
        cond = range_filter(spec.column, b, first=i == 0) if limits else None
        q = query.copy() if cond is None else query.copy().where(cond)
        sqls.append(q.sql("postgres"))
    if Hooks.after_export is not None:
        Hooks.after_export()
    box: queue.Queue[object] = queue.Queue(maxsize=QUEUE_BATCHES * len(parts))
    stop = threading.Event()
    schema: list[pa.Schema] = []
    ready = threading.Event()
    errors: list[BaseException] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(i: int, sql: str) -> None:
        close: Callable[[], None] | None = None
        try:
            reader, close = open_reader(i, snap.begin_sql(), sql)
            if not schema:
                schema.append(reader.schema)
                ready.set()
            for batch in reader:
                if not put(batch):
                    return
        except BaseException as e:  # handed to the engine's thread, which raises it
            errors.append(e)
            ready.set()
        finally:
            if close is not None:
                with contextlib.suppress(Exception):  # the read already failed or finished
                    close()
            put(_END)

    threads = [
        threading.Thread(target=work, args=(i, s), name=f"lg-pg-part-{i}", daemon=True)
        for i, s in enumerate(sqls)
    ]
    for t in threads:
        t.start()

    def batches() -> Iterator[pa.RecordBatch]:
        done = 0
        while done < len(threads):
            if errors:
                raise errors[0]
            item = box.get()
            if item is _END:
                done += 1
            elif isinstance(item, pa.RecordBatch):
                yield item.cast(schema[0]) if item.schema != schema[0] else item
        if errors:
            raise errors[0]

    try:
        ready.wait()
        if errors:
            raise errors[0]
        reader = pa.RecordBatchReader.from_batches(schema[0], batches())
        return load_stream(session, table, reader)
    finally:
        stop.set()
        for t in threads:
            t.join()
