"""The initial snapshot of ``postgres_cdc``: the table copied in the slot's exported snapshot,
on one connection or — for a large table with an integer primary key — on several at once.

Every copy connection runs ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`` then
``SET TRANSACTION SNAPSHOT '<exported>'`` and COPYs one half-open range ``[start, end)`` of
the primary key (:func:`lockgate.sources._pg_partition.ranges`: the ranges cover
``min..max`` read in the same snapshot, the first starting at ``min``, the last open-ended,
so every row falls in exactly one). The replication connection that exported the snapshot
stays open (idle) until every copy has ended: the caller holds it
(:func:`lockgate.sources._cdc_slot.exported_snapshot`). Rows committed after the export are
in none of the copies; the slot hands them out as changes on the next run.

``snapshot_partitions`` on the source: ``N`` ranges (1: one connection); unset: one
connection unless ``pg_class.reltuples`` of the table is above :data:`SPLIT_ROWS`, then
:data:`AUTO_PARTITIONS`. A primary key that is not one integer column (composite, text,
uuid …) cannot be split: one connection, with a warning when a split was asked for or the
table is large.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lockgate.sources._pg_partition import ranges

if TYPE_CHECKING:
    from lockgate.sources.postgres_cdc import Described

log = logging.getLogger(__name__)

#: the table is split when PostgreSQL estimates more rows than this (``pg_class.reltuples``)
SPLIT_ROWS = 1_000_000
#: ranges of an automatic split
AUTO_PARTITIONS = 4
_INTEGER_TYPES = {20: "bigint", 21: "smallint", 23: "integer"}  # int8, int2, int4

_PK_SQL = (
    "SELECT a.attname, a.atttypid FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary"
)


class SnapshotHooks:
    """Test seam: ``after_export(plan)`` runs once the snapshot is exported and the ranges
    read, before any copy starts (a test commits concurrent writes there);
    ``before_copy(i)`` runs on copy connection ``i`` after it imported the snapshot."""

    after_export: ClassVar[Callable[[SnapshotPlan], None] | None] = None
    before_copy: ClassVar[Callable[[int], None] | None] = None


@dataclass(frozen=True)
class SnapshotPlan:
    """How the snapshot is read: ``column`` None → one connection, the whole table."""

    column: str | None
    ranges: tuple[tuple[int, int | None], ...]
    warning: str | None = None


def split_column(pg: Any, described: Described) -> tuple[str | None, str]:
    """The primary key's column when it is one integer column, else (None, why not)."""
    rows = pg.execute(_PK_SQL, (described.oid,)).fetchall()
    if not rows:
        return None, "it has no primary key"
    if len(rows) > 1:
        return None, f"its primary key is composite ({', '.join(r[0] for r in rows)})"
    name, typ = rows[0][0], int(rows[0][1])
    if typ not in _INTEGER_TYPES:
        return None, f"its primary key {name} is not an integer column"
    return str(name), ""


def wanted_partitions(pg: Any, described: Described, configured: int | None) -> int:
    """``configured``, or the automatic choice from the table's estimated size."""
    if configured is not None:
        return configured
    row = pg.execute("SELECT reltuples FROM pg_class WHERE oid = %s", (described.oid,)).fetchone()
    return AUTO_PARTITIONS if row and float(row[0]) > SPLIT_ROWS else 1


def plan(pg: Any, cp: Any, described: Described, configured: int | None) -> SnapshotPlan:
    """The ranges to copy. ``pg``: a catalog connection; ``cp``: a connection inside the
    exported snapshot (the key's min and max are read there)."""
    from psycopg import sql

    n = wanted_partitions(pg, described, configured)
    if n <= 1:
        return SnapshotPlan(None, ())
    column, why = split_column(pg, described)
    if column is None:
        msg = (
            f"{described.schema}.{described.name}: snapshot copied on one connection, not "
            f"{n}: {why} (only a single integer primary key can be split into ranges)"
        )
        return SnapshotPlan(None, (), warning=msg)
    lo, hi = cp.execute(
        sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(
            c=sql.Identifier(column), t=sql.Identifier(described.schema, described.name)
        )
    ).fetchone()
    if lo is None:  # an empty table: one (empty) copy
        return SnapshotPlan(None, ())
    return SnapshotPlan(column, tuple(ranges(int(lo), int(hi), n)))


def begin_in_snapshot(cp: Any, snapshot: str) -> None:
    from psycopg import sql

    cp.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cp.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot))


def copy_query(described: Described, column: str | None, bounds: tuple[int, int | None]) -> Any:
    """``COPY (SELECT <columns as text> FROM t [WHERE key in range]) TO STDOUT (FORMAT csv)``."""
    from psycopg import sql

    cols = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in described.columns
    )
    where: sql.Composable = sql.SQL("")
    if column is not None:
        key = sql.Identifier(column)
        where = sql.SQL(" WHERE {} >= {}").format(key, sql.Literal(bounds[0]))
        if bounds[1] is not None:
            where = sql.SQL("{} AND {} < {}").format(where, key, sql.Literal(bounds[1]))
    return sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT (FORMAT csv)").format(
        cols, sql.Identifier(described.schema, described.name), where
    )


class _FirstChunk:
    """Calls ``on_first`` once, for the first chunk any copy receives (the crash point
    ``mid-snapshot`` is reached once per snapshot, however many connections copy)."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        self._on_first, self._done, self._lock = on_first, False, threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._on_first()


def copy_to(cp: Any, query: Any, path: Path, first_chunk: Callable[[], None]) -> int:
    """Stream one COPY into ``path``; the bytes written."""
    size = 0
    with cp.cursor() as cur, open(path, "wb") as f, cur.copy(query) as copy:
        for chunk in copy:
            first_chunk()
            f.write(chunk)
            size += len(chunk)
    return size


def copy_snapshot(
    conninfo: str,
    snapshot: str,
    described: Described,
    configured: int | None,
    pg: Any,
    out: Path,
    *,
    setup: Callable[[Any], None],
    mid_snapshot: Callable[[], None],
) -> SnapshotPlan:
    """Copy the table in ``snapshot`` to ``out/part-<i>.csv`` (see the module docstring);
    the plan used. The caller keeps the exporting replication connection open meanwhile."""
    import psycopg

    first = _FirstChunk(mid_snapshot)
    with psycopg.connect(conninfo, autocommit=True) as cp:
        setup(cp)
        begin_in_snapshot(cp, snapshot)
        p = plan(pg, cp, described, configured)
        if p.warning:
            log.warning("%s", p.warning)
        if p.column is None:
            if SnapshotHooks.after_export is not None:
                SnapshotHooks.after_export(p)
            if SnapshotHooks.before_copy is not None:
                SnapshotHooks.before_copy(0)
            copy_to(cp, copy_query(described, None, (0, None)), out / "part-0.csv", first)
            cp.execute("COMMIT")
            return p
        cp.execute("COMMIT")
    if SnapshotHooks.after_export is not None:
        SnapshotHooks.after_export(p)
    _copy_ranges(conninfo, snapshot, described, p, out, setup, first)
    log.info(
        "snapshot of %s.%s copied in %d ranges of %s",
        described.schema,
        described.name,
        len(p.ranges),
        p.column,
    )
    return p


def _copy_ranges(
    conninfo: str,
    snapshot: str,
    described: Described,
    p: SnapshotPlan,
    out: Path,
    setup: Callable[[Any], None],
    first: Callable[[], None],
) -> None:
    """One thread and connection per range; the first error raised once all have ended."""
    import psycopg

    errors: list[BaseException] = []
    conns: list[Any] = []
    lock = threading.Lock()

    def work(i: int, bounds: tuple[int, int | None]) -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True) as cp:
                with lock:
                    conns.append(cp)
                setup(cp)
                begin_in_snapshot(cp, snapshot)
                if SnapshotHooks.before_copy is not None:
                    SnapshotHooks.before_copy(i)
                copy_to(cp, copy_query(described, p.column, bounds), out / f"part-{i}.csv", first)
                cp.execute("COMMIT")
        except BaseException as e:  # raised in the caller's thread below
            with lock:
                errors.append(e)
                others = list(conns)
            for c in others:  # stop the other copies: the snapshot failed
                with contextlib.suppress(Exception):
                    c.cancel()

    threads = [
        threading.Thread(target=work, args=(i, b), name=f"lg-cdc-snap-{i}", daemon=True)
        for i, b in enumerate(p.ranges)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
