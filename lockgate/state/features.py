"""Recorded training sets (``lockgate_training_sets``, migration 0008).

A record pins what a training set was made from — each feature view's dataset and Delta
version and the strategy used, the entity rows (SHA-256, row count, where a copy is kept) —
and the SHA-256 of the result. :func:`pinned_versions` is what retention must keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from lockgate.state.tables import training_sets

if TYPE_CHECKING:
    from lockgate.state.store import StateStore


@dataclass(frozen=True)
class TrainingSetRecord:
    id: str
    project: str
    created_at: datetime
    features: list[str]
    options: dict[str, Any]
    views: dict[str, dict[str, Any]]
    entities: dict[str, Any]
    rows: int
    result_sha256: str


def record_training_set(state: StateStore, rec: TrainingSetRecord) -> None:
    with state._tx() as conn:
        conn.execute(
            sa.insert(training_sets).values(
                id=rec.id,
                project=rec.project,
                created_at=rec.created_at,
                features=rec.features,
                options=rec.options,
                views=rec.views,
                entities=rec.entities,
                rows=rec.rows,
                result_sha256=rec.result_sha256,
            )
        )


def _record(row: RowMapping) -> TrainingSetRecord:
    return TrainingSetRecord(
        id=row["id"],
        project=row["project"],
        created_at=row["created_at"],
        features=list(row["features"]),
        options=dict(row["options"]),
        views=dict(row["views"]),
        entities=dict(row["entities"]),
        rows=int(row["rows"]),
        result_sha256=row["result_sha256"],
    )


def get_training_set(state: StateStore, project: str, id_: str) -> TrainingSetRecord | None:
    """The record ``id_`` (a unique prefix of it is enough) of ``project``."""
    t = training_sets
    q = sa.select(t).where(t.c.project == project, t.c.id.startswith(id_, autoescape=True))
    with state._read() as conn:
        rows = conn.execute(q.limit(2)).mappings().all()
    return _record(rows[0]) if len(rows) == 1 else None


def list_training_sets(state: StateStore, project: str, limit: int = 50) -> list[TrainingSetRecord]:
    """Newest first."""
    t = training_sets
    q = sa.select(t).where(t.c.project == project).order_by(t.c.created_at.desc()).limit(limit)
    with state._read() as conn:
        return [_record(r) for r in conn.execute(q).mappings()]


def pinned_versions(state: StateStore, project: str) -> dict[str, set[int]]:
    """``{dataset: {version, ...}}`` that recorded training sets read: retention (vacuum,
    log clean-up) must keep them for ``--replay`` to re-create those sets."""
    out: dict[str, set[int]] = {}
    with state._read() as conn:
        q = sa.select(training_sets.c.views, training_sets.c.entities).where(
            training_sets.c.project == project
        )
        for views, entities in conn.execute(q):
            for info in dict(views).values():
                out.setdefault(str(info["dataset"]), set()).add(int(info["version"]))
            if entities.get("kind") == "dataset":
                out.setdefault(str(entities["dataset"]), set()).add(int(entities["version"]))
    return out


def now() -> datetime:
    return datetime.now(UTC)
