"""Done intervals of time-partitioned datasets, stored as merged ranges, and definitions by
hash (what ``lockgate replay`` rebuilds from).

Adding intervals reads the dataset's ranges, merges and rewrites them in ONE transaction, so
the table holds a handful of rows per dataset however many intervals are done."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lockgate.ops.intervals import Interval, merge
from lockgate.state.tables import definitions, interval_ranges

if TYPE_CHECKING:
    from lockgate.state.store import StateStore


def _where(project: str, dataset: str) -> sa.ColumnElement[bool]:
    t = interval_ranges
    return (t.c.project == project) & (t.c.dataset == dataset)


def done_ranges(state: StateStore, project: str, dataset: str) -> list[Interval]:
    """The dataset's done ranges ``[(lo, hi), ...]``, sorted."""
    t = interval_ranges
    with state._read() as conn:
        rows = conn.execute(
            sa.select(t.c.lo, t.c.hi).where(_where(project, dataset)).order_by(t.c.lo)
        )
        return [(int(lo), int(hi)) for lo, hi in rows]


def add_done(state: StateStore, project: str, dataset: str, new: Iterable[Interval]) -> int:
    """Merge ``new`` into the dataset's done ranges; returns the number of ranges stored."""
    new = list(new)
    if not new:
        return len(done_ranges(state, project, dataset))
    t = interval_ranges
    with state._tx() as conn:
        rows = conn.execute(sa.select(t.c.lo, t.c.hi).where(_where(project, dataset)))
        merged = merge([(int(lo), int(hi)) for lo, hi in rows], new)
        conn.execute(sa.delete(t).where(_where(project, dataset)))
        now = datetime.now(UTC)
        conn.execute(
            t.insert(),
            [
                {"project": project, "dataset": dataset, "lo": lo, "hi": hi, "updated_at": now}
                for lo, hi in merged
            ],
        )
    return len(merged)


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
