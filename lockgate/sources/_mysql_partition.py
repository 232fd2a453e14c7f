"""Parallel range reads of ``type: mysql`` (MySQL/MariaDB) that share ONE consistent view.

MySQL has no ``pg_export_snapshot()``: a snapshot cannot be handed to another connection.
What mydumper does instead, narrowed to the table read: a coordinator connection takes
``LOCK TABLES <table> READ`` (for a ``query:``, ``FLUSH TABLES WITH READ LOCK``), which
waits for transactions writing the table to commit and holds new writes back. Under the
lock it reads the partition bounds (and ``UTC_TIMESTAMP()`` for ``settle:``), then each of
the ``partitions`` reading connections (connectorx, one per range) runs
``START TRANSACTION WITH CONSISTENT SNAPSHOT`` — every snapshot sees the same committed
state, since no write to the table can commit meanwhile. connectorx runs these statements
on every connection before ``read_sql`` returns; the coordinator then unlocks the table
(writers go on: the lock was held only while N connections started) and the ranges are
read, each in its own snapshot, all of the same moment.

(A gate where the connections wait until the coordinator has seen them all cannot be used:
connectorx holds the GIL while it starts them, so no Python code runs meanwhile.)

When the lock cannot be taken (no ``LOCK TABLES``/``RELOAD`` privilege) or connectorx is
not installed, the read falls back to ONE connection — one snapshot, consistent, not
parallel — and the step's warnings say why.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from lockgate.errors import InputError, TransientError
from lockgate.sources._pg_partition import PartitionSpec, range_filter, ranges
from lockgate.sql import ident

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: seconds the coordinator waits for the table lock (writers in flight)
WAIT_S = 60


class Hooks:
    """Test seam: ``after_unlock()`` runs once every reading connection has started its
    snapshot and the table is unlocked, before the stream is consumed (writes committed
    there must not be seen)."""

    after_unlock: ClassVar[Callable[[], None] | None] = None


class NoSharedView(Exception):
    """The shared view cannot be set up here (a privilege is missing): read on one
    connection instead."""


def _bounds(cur: Any, query: exp.Select, column: str) -> tuple[int, int] | None:
    probe = query.copy()
    col = exp.column(ident(column))
    probe.set("expressions", [exp.func("min", col.copy()), exp.func("max", col.copy())])
    cur.execute(probe.sql("mysql"))
    lo, hi = cur.fetchone()
    if lo is None:
        return None
    if isinstance(lo, bool) or not isinstance(lo, int) or not isinstance(hi, int):
        raise InputError(
            f"partition.column '{column}' must be an integer column "
            f"(found {type(lo).__name__} values)",
            hint="partition on an integer key (id); dates and text are not split",
        )
    return lo, hi


def read_shared_view(
    connect: Callable[[], Any],
    url: str,
    build: Callable[[exp.Expr], exp.Select],
    table: str | None,
    spec: PartitionSpec,
    *,
    session_sql: str,
    batch_rows: int,
) -> pa.RecordBatchReader:
    """One Arrow stream of every range of the read (see the module docstring).

    ``build(now)`` is the read's SELECT with ``now`` as the settle bound; ``table`` is the
    table read (``schema.name`` as written in the config), or None for a ``query:``.
    Raises :class:`NoSharedView` when the lock is refused."""
    import connectorx as cx

    coordinator = connect()
    try:
        cur = coordinator.cursor()
        cur.execute(f"SET SESSION lock_wait_timeout = {WAIT_S}")
        _lock(cur, table)
        try:
            cur.execute("SELECT CAST(UTC_TIMESTAMP(6) AS CHAR)")
            now = exp.cast(exp.Literal.string(str(cur.fetchone()[0])), "DATETIME")
            query = build(now)
            limits = _bounds(cur, query, spec.column)
            parts = ranges(*limits, spec.partitions) if limits else [(0, None)]
            sqls = [
                (query.copy().where(range_filter(spec.column, b, i == 0)) if limits else query)
                for i, b in enumerate(parts)
            ]
            # connectorx runs these on every range's connection before it returns (the
            # ranges' SELECTs may run later, in its threads: they read these snapshots)
            pre = [
                session_sql,
                "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            ]
            reader: pa.RecordBatchReader = cx.read_sql(
                url,
                [q.sql("mysql") for q in sqls],
                return_type="arrow_stream",
                batch_size=batch_rows,
                pre_execution_query=pre,
            )
        finally:
            cur.execute("UNLOCK TABLES")
        if Hooks.after_unlock is not None:
            Hooks.after_unlock()
        return reader
    finally:
        with contextlib.suppress(Exception):
            coordinator.close()


def _lock(cur: Any, table: str | None) -> None:
    import pymysql

    if table is not None:
        db, _, name = table.rpartition(".")
        target = exp.table_(ident(name), db=ident(db) if db else None).sql("mysql")
        sql = f"LOCK TABLES {target} READ"
    else:
        sql = "FLUSH TABLES WITH READ LOCK"
    try:
        cur.execute(sql)
    except pymysql.err.OperationalError as e:
        code = e.args[0] if e.args else 0
        if code in (1044, 1045, 1142, 1227):  # access denied / needs LOCK TABLES or RELOAD
            raise NoSharedView(f"{sql.split(' ')[0]} refused ({e.args[1]})") from None
        if code == 1205:  # lock wait timeout: writers kept the table busy
            raise TransientError(
                f"partitioned read: the read lock waited more than {WAIT_S}s for writers"
            ) from None
        raise
