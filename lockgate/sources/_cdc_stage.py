"""Staging one micro-batch of change events (a :class:`~lockgate.sources._cdc_batch.ChangeBatch`)
for any change source (``postgres_cdc``, ``mysql_cdc``): text columns converted to their
catalog types (values that do not convert exactly are rejected with the column and the
value), unchanged TOASTed values filled, the events reduced to the last one per key (the
others counted as ``superseded_in_batch``), deletes split into ``<table>__deletes``.

Every staged row carries the change columns: ``_lg_lsn`` (its transaction's end position in
the source's log, an integer), ``_lg_op`` (``r`` snapshot, ``c`` insert, ``u`` update, ``d``
delete) and ``_lg_commit_ts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate.sources._cdc_batch import ChangeBatch
from lockgate.sources._db import NATIVE, Column, convert
from lockgate.sources.base import Position, StagedSource, count_rows, staged_table
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.session import Session

LSN, OP, COMMIT_TS, DELETED = "_lg_lsn", "_lg_op", "_lg_commit_ts", "_lg_deleted"
SEQ = "_lg_seq"
_SEQ = SEQ
#: the change columns every staged row carries (name, staging type)
CHANGE_COLUMNS = ((LSN, "BIGINT"), (OP, "VARCHAR"), (COMMIT_TS, "TIMESTAMPTZ"))


def stage_changes(
    session: Session,
    table: str,
    batch: ChangeBatch,
    columns: list[Column],
    keys: tuple[str, ...],
    *,
    origin: str,
    soft: bool,
    target: Callable[[], str] | None,
    select: list[exp.Expr] | None = None,
) -> StagedSource:
    """Stage ``batch`` (its values in the text form of ``columns``) into ``table`` and
    ``table__deletes``; ``select`` rewrites the raw text columns first (e.g. PostgreSQL's
    ``\\x`` bytea prefix), ``target`` gives the published table (unchanged TOAST values,
    truncates)."""
    if (
        select is None
        and not batch.fills
        and batch.truncate_seq is None
        and all(c.how == NATIVE for c in columns)
        and not any(c.name in keys and c.type in ("DOUBLE", "FLOAT", "REAL") for c in columns)
    ):  # (NaN and -0.0 keys: Python's equality is not DuckDB's)
        return _stage_native(session, table, batch, columns, keys, soft=soft)
    events = table  # the typed events; rejects go to table__rejects
    raw = table + "__raw"
    view = table + "__arrow"
    if select is None:
        select = [exp.column(ident(c.name)) for c in columns]
    session.register_arrow(view, _arrow(batch, columns))
    meta = [*meta_columns(), Column(_SEQ, exp.column(ident(_SEQ)), "BIGINT", NATIVE)]
    try:
        # a view, not a copy: the conversion reads the Arrow columns once, straight
        session.execute(
            exp.Create(
                this=table_ref(raw),
                kind="VIEW",
                replace=True,
                expression=exp.select(
                    *select,
                    *[exp.column(ident(c)) for c in (_SEQ, LSN, OP, COMMIT_TS)],
                ).from_(table_ref(view)),
            )
        )
        rejected = convert(
            session, raw, events, [*columns, *meta], origin, line=LSN, drop_raw=False
        )
    finally:
        session.execute(exp.Drop(tables=[table_ref(raw)], kind="VIEW", exists=True))
        session.unregister(view)
    rejected += _fill_toast(
        session, events, batch, columns, keys, target, table + "__rejects", origin
    )
    skipped = dict(batch.skipped)
    if batch.truncate_seq is not None:
        session.execute(f"DELETE FROM {q(events)} WHERE {q(_SEQ)} < {batch.truncate_seq}")
    before = count_rows(session.con, events)
    part = ", ".join(q(k) for k in keys)
    session.execute(
        f"CREATE OR REPLACE TABLE {q(events + '_r')} AS SELECT * FROM {q(events)} "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {q(_SEQ)} DESC) = 1"
    )
    superseded = before - count_rows(session.con, events + "_r")
    if superseded:
        skipped["superseded_in_batch"] = skipped.get("superseded_in_batch", 0) + superseded
    out_cols = ", ".join(q(c) for c in [*(c.name for c in columns), LSN, OP, COMMIT_TS])
    flag = f", {q(OP)} = 'd' AS {q(DELETED)}" if soft else ""
    src = q(events + "_r")
    session.drop(events)
    session.execute(
        f"CREATE OR REPLACE TABLE {q(table)} AS SELECT {out_cols}{flag} FROM {src} "
        f"WHERE {q(OP)} <> 'd' ORDER BY {q(_SEQ)}"
    )
    deletes = table + "__deletes"
    session.execute(
        f"CREATE OR REPLACE TABLE {q(deletes)} AS SELECT {out_cols}{flag} FROM {src} "
        f"WHERE {q(OP)} = 'd'"
    )
    if batch.truncate_seq is not None and target is not None:
        _truncate_deletes(session, table, deletes, batch, columns, keys, target(), soft)
    session.drop(events + "_r")
    return staged_table(
        session.con,
        table,
        rejected,
        skipped=skipped,
        deletes=deletes,
        deleted_rows=count_rows(session.con, deletes),
    )


def _stage_native(
    session: Session,
    table: str,
    batch: ChangeBatch,
    columns: list[Column],
    keys: tuple[str, ...],
    *,
    soft: bool,
) -> StagedSource:
    """:func:`stage_changes` when every column arrives in its staging type (nothing to
    convert, so nothing can be rejected) and there is no TOAST value to fill nor TRUNCATE:
    the last event of every key is picked in Arrow (as the window over the typed events
    would: same keys, same order), and the two tables are written straight from it — two
    statements instead of a typed copy, a window copy and the split."""
    arrow = _arrow(batch, columns)
    last = _last_per_key(arrow, keys)
    skipped = dict(batch.skipped)
    superseded = arrow.num_rows - len(last)
    if superseded:
        arrow = arrow.take(last)
        skipped["superseded_in_batch"] = skipped.get("superseded_in_batch", 0) + superseded
    view = table + "__arrow"
    out_cols = ", ".join(q(c) for c in [*(c.name for c in columns), LSN, OP, COMMIT_TS])
    flag = f", {q(OP)} = 'd' AS {q(DELETED)}" if soft else ""
    deletes = table + "__deletes"
    session.register_arrow(view, arrow)
    try:
        session.execute(
            f"CREATE OR REPLACE TABLE {q(table)} AS SELECT {out_cols}{flag} FROM {q(view)} "
            f"WHERE {q(OP)} <> 'd' ORDER BY {q(_SEQ)}"
        )
        session.execute(
            f"CREATE OR REPLACE TABLE {q(deletes)} AS SELECT {out_cols}{flag} FROM {q(view)} "
            f"WHERE {q(OP)} = 'd'"
        )
    finally:
        session.unregister(view)
    return staged_table(
        session.con,
        table,
        0,
        skipped=skipped,
        deletes=deletes,
        deleted_rows=arrow.column(OP).to_pylist().count("d"),
    )


def _last_per_key(arrow: pa.Table, keys: tuple[str, ...]) -> list[int]:
    """The rows (ascending) holding the last event of each key (NULLs form one key, as
    in DuckDB's PARTITION BY)."""
    cols = [arrow.column(k).to_pylist() for k in keys]
    rows = cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))
    last = dict(zip(rows, range(arrow.num_rows), strict=True))
    if len(last) == arrow.num_rows:
        return list(range(arrow.num_rows))
    return sorted(last.values())


def q(name: str) -> str:
    return ident(name).sql("duckdb")


def lit(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


def meta_columns() -> list[Column]:
    return [
        Column(LSN, exp.column(ident(LSN)), "BIGINT", NATIVE),
        Column(OP, exp.column(ident(OP)), "VARCHAR", NATIVE),
        Column(COMMIT_TS, exp.column(ident(COMMIT_TS)), "TIMESTAMPTZ", NATIVE),
    ]


def meta_select(lsn: int, op: str, commit: exp.Expr | None) -> list[exp.Expr]:
    ts = commit if commit is not None else exp.cast(exp.func("now"), "TIMESTAMPTZ")
    return [
        exp.alias_(exp.cast(exp.Literal.number(lsn), "BIGINT"), LSN),
        exp.alias_(exp.Literal.string(op), OP),
        exp.alias_(ts, COMMIT_TS),
    ]


def add_flag(session: Session, table: str, value: bool) -> None:
    session.execute(
        f"ALTER TABLE {q(table)} ADD COLUMN {q(DELETED)} BOOLEAN DEFAULT {str(value).upper()}"
    )


def _arrow(batch: ChangeBatch, columns: list[Column]) -> pa.Table:
    """The batch's events as an Arrow table of text columns plus the change columns."""
    import pyarrow as pa

    arrays: list[pa.Array] = []
    names: list[str] = []
    for i, c in enumerate(columns):
        arrays.append(batch.column(i))
        names.append(c.name)
    arrays += [
        pa.array(batch.seq, pa.int64()),
        pa.array(batch.lsn, pa.int64()),
        pa.array(batch.op, pa.string()),
        pa.array(batch.commit_us, pa.timestamp("us", tz="UTC")),
    ]
    names += [_SEQ, LSN, OP, COMMIT_TS]
    return pa.table(arrays, names=names)


def _fill_toast(
    session: Session,
    events: str,
    batch: ChangeBatch,
    columns: list[Column],
    keys: tuple[str, ...],
    target_of: Callable[[], str] | None,
    rejects: str,
    origin: str,
) -> int:
    """Unchanged TOASTed values no earlier event knew, from the published row; an event
    whose published row is missing cannot be completed: it is rejected (never a guess)."""
    if not batch.fills:
        return 0
    import pyarrow as pa

    fills = events + "__fills"
    by_name = {c.name: c for c in columns}
    data = {
        _SEQ: pa.array([f.seq for f in batch.fills], pa.int64()),
        "_lg_col": pa.array([columns[f.column].name for f in batch.fills], pa.string()),
    }
    for j, k in enumerate(keys):
        data[k] = pa.array([f.key[j] for f in batch.fills], pa.string())
    session.register_arrow(fills + "_a", pa.table(data))
    typed = [
        exp.alias_(
            exp.TryCast(this=exp.column(ident(k)), to=exp.DataType.build(by_name[k].type)), k
        )
        if by_name[k].how != NATIVE
        else exp.column(ident(k))
        for k in keys
    ]
    session.execute(
        exp.Create(
            this=table_ref(fills),
            kind="TABLE",
            replace=True,
            expression=exp.select(
                exp.column(ident(_SEQ)), exp.column(ident("_lg_col")), *typed
            ).from_(table_ref(fills + "_a")),
        )
    )
    session.unregister(fills + "_a")
    join = " AND ".join(f"t.{q(k)} = f.{q(k)}" for k in keys)
    missing = f"SELECT f.{q(_SEQ)}, f._lg_col FROM {q(fills)} f"
    if target_of is not None:
        target = target_of()
        missing += f" WHERE NOT EXISTS (SELECT 1 FROM {q(target)} t WHERE {join})"
        for col in sorted({columns[f.column].name for f in batch.fills}):
            session.execute(
                f"UPDATE {q(events)} SET {q(col)} = x.v FROM (SELECT f.{q(_SEQ)} AS s, "
                f"t.{q(col)} AS v FROM {q(fills)} f JOIN {q(target)} t ON {join} "
                f"WHERE f._lg_col = {lit(col)}) x WHERE {q(events)}.{q(_SEQ)} = x.s"
            )
    lost = session.execute(f"SELECT count(DISTINCT {q(_SEQ)}) FROM ({missing})").fetchone()
    n = int(lost[0]) if lost else 0
    if n:
        session.execute(
            f"INSERT INTO {q(rejects)} SELECT {lit(origin)}, e.{q(LSN)}, "
            f"CAST(to_json(e) AS VARCHAR), 'column ' || m._lg_col || ': unchanged TOASTed "
            f"value, and the row is not in the published table (quarantined earlier?)' "
            f"FROM {q(events)} e JOIN ({missing}) m ON e.{q(_SEQ)} = m.{q(_SEQ)}"
        )
        session.execute(
            f"DELETE FROM {q(events)} WHERE {q(_SEQ)} IN (SELECT {q(_SEQ)} FROM ({missing}))"
        )
    session.drop(fills)
    return n


def _truncate_deletes(
    session: Session,
    table: str,
    deletes: str,
    batch: ChangeBatch,
    columns: list[Column],
    keys: tuple[str, ...],
    target: str,
    soft: bool,
) -> None:
    """A TRUNCATE: every published row not written again after it is deleted."""
    lsn = batch.end_lsn or 0
    keyset = ", ".join(q(k) for k in keys)
    vals = ", ".join(
        f"t.{q(c.name)}" if c.name in keys else f"CAST(NULL AS {c.type})" for c in columns
    )
    flag = ", true" if soft else ""
    live = f" AND t.{q(DELETED)} IS NOT TRUE" if soft else ""
    session.execute(
        f"INSERT INTO {q(deletes)} SELECT {vals}, CAST({lsn} AS BIGINT), 'd', now(){flag} "
        f"FROM {q(target)} t WHERE ({keyset}) NOT IN (SELECT ({keyset}) FROM {q(table)}) "
        f"AND ({keyset}) NOT IN (SELECT ({keyset}) FROM {q(deletes)}){live}"
    )


def crashpoint(name: str) -> None:
    """:func:`lockgate.storage.crashpoints.crashpoint` (imported when reached: the storage
    package is not needed to list or validate sources)."""
    from lockgate.storage.crashpoints import crashpoint as point

    point(name)


def with_changes(staged: StagedSource, **changes: Any) -> StagedSource:
    import dataclasses

    return dataclasses.replace(staged, **changes)


def change_position(app_id: str, value: int, deletes: str) -> Position:
    """A change source's position in the Delta commit: ``app_id`` at ``value``, rows ordered
    by ``_lg_lsn``, deletes applied (or soft: flagged ``_lg_deleted``)."""
    return Position(
        app_id=app_id,
        value=value,
        column=LSN,
        deletes=deletes,
        deleted_flag=DELETED if deletes == "soft" else None,
        op_column=OP,
    )
