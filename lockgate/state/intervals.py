"""Done intervals of time-partitioned datasets, stored as merged ranges, and definitions by
hash (what ``lockgate replay`` rebuilds from).

Adding intervals reads the dataset's ranges, merges and rewrites them in ONE transaction, so
the table holds a handful of rows per dataset however many intervals are done."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lockgate.ops.intervals import Interval, merge, subtract
from lockgate.state.tables import definitions, interval_ranges

if TYPE_CHECKING:
    from lockgate.state.store import StateStore

_ByDef = dict[str | None, list[Interval]]


def _where(project: str, dataset: str) -> sa.ColumnElement[bool]:
    t = interval_ranges
    return (t.c.project == project) & (t.c.dataset == dataset)


def done_ranges(
    state: StateStore, project: str, dataset: str, definition: str | None = None
) -> list[Interval]:
    """The dataset's done ranges ``[(lo, hi), ...]``, sorted and merged. With
    ``definition``: only those published under it (or recorded before definitions were
    kept, which count as the current one)."""
    by_def = done_by_definition(state, project, dataset)
    if definition is None:
        return merge(r for rs in by_def.values() for r in rs)
    return merge([*by_def.get(definition, []), *by_def.get(None, [])])


def done_by_definition(
    state: StateStore, project: str, dataset: str
) -> dict[str | None, list[Interval]]:
    """The done ranges by the definition (content hash) they were published under; ``None``:
    recorded before the state store kept it. An interval is under one definition only."""
    with state._read() as conn:
        return {d: sorted(rs) for d, rs in _read_all(conn, project, dataset).items()}


def _rewrite(conn: sa.Connection, project: str, dataset: str, by_def: _ByDef) -> int:
    t = interval_ranges
    conn.execute(sa.delete(t).where(_where(project, dataset)))
    now = datetime.now(UTC)
    rows = [
        {
            "project": project,
            "dataset": dataset,
            "lo": lo,
            "hi": hi,
            "definition": d,
            "updated_at": now,
        }
        for d, ranges in by_def.items()
        for lo, hi in merge(ranges)
    ]
    if rows:
        conn.execute(t.insert(), rows)
    return len(rows)


def _read_all(conn: sa.Connection, project: str, dataset: str) -> _ByDef:
    t = interval_ranges
    out: _ByDef = {}
    rows = conn.execute(sa.select(t.c.definition, t.c.lo, t.c.hi).where(_where(project, dataset)))
    for d, lo, hi in rows:
        out.setdefault(None if d is None else str(d), []).append((int(lo), int(hi)))
    return out


def add_done(
    state: StateStore,
    project: str,
    dataset: str,
    new: Iterable[Interval],
    definition: str | None = None,
) -> int:
    """Merge ``new`` into the dataset's done ranges, published under ``definition`` (they
    leave the ranges of any other definition); returns the number of ranges stored."""
    new = list(new)
    if not new:
        return len(done_ranges(state, project, dataset))
    with state._tx() as conn:
        by_def = {d: subtract(rs, new) for d, rs in _read_all(conn, project, dataset).items()}
        by_def[definition] = merge(by_def.get(definition, []), new)
        return _rewrite(conn, project, dataset, by_def)


def remove_done(state: StateStore, project: str, dataset: str, window: Iterable[Interval]) -> int:
    """Make the intervals in ``window`` due again (a restatement); returns the ranges kept."""
    window = list(window)
    with state._tx() as conn:
        by_def = {d: subtract(rs, window) for d, rs in _read_all(conn, project, dataset).items()}
        return _rewrite(conn, project, dataset, by_def)


def clear_done(state: StateStore, project: str, dataset: str) -> None:
    """Forget every done interval of the dataset (a full refresh rebuilds them all)."""
    with state._tx() as conn:
        conn.execute(sa.delete(interval_ranges).where(_where(project, dataset)))


def save_definition(
    state: StateStore, project: str, dataset: str, hash_: str, body: Mapping[str, Any]
) -> None:
    """Keep the definition ``hash_`` (once: a hash names one body)."""
    ins = state._insert(definitions).values(
        project=project, hash=hash_, dataset=dataset, body=dict(body), created_at=datetime.now(UTC)
    )
    with state._tx() as conn:
        conn.execute(ins.on_conflict_do_nothing())


def load_definition(state: StateStore, project: str, hash_: str) -> dict[str, Any] | None:
    """The definition stored under ``hash_`` (None: never recorded)."""
    t = definitions
    with state._read() as conn:
        row = conn.execute(
            sa.select(t.c.body).where(t.c.project == project, t.c.hash == hash_)
        ).first()
    return None if row is None else dict(row[0])
