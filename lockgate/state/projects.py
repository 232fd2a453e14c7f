"""Which warehouse a project name belongs to, in the state store (``lockgate_projects``).

Several projects can share one (PostgreSQL) state store, keyed by their ``name:``. Two
projects that carry the same name would otherwise read each other's history; the run loop
gives every warehouse an identity (``project_id``, also written into the warehouse) and
registers it here, so a clash is detected (see :mod:`lockgate.runloop.identity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lockgate.state import tables as t
from lockgate.state.lock import now_utc


@dataclass(frozen=True)
class ProjectRecord:
    project: str
    project_id: str
    warehouse: str
    host: str
    registered_at: datetime
    updated_at: datetime


def get_project(conn: Connection, project: str) -> ProjectRecord | None:
    row = (
        conn.execute(sa.select(t.projects).where(t.projects.c.project == project))
        .mappings()
        .first()
    )
    return None if row is None else ProjectRecord(**dict(row))


def register_project(
    conn: Connection, project: str, project_id: str, warehouse: str, host: str
) -> ProjectRecord:
    """Insert or replace the project's row; runs of this name recorded before identities
    existed (``project_id`` NULL) are adopted by a project registered for the first time."""
    now = now_utc()
    old = get_project(conn, project)
    row = {"project_id": project_id, "warehouse": warehouse, "host": host, "updated_at": now}
    if old is None:
        conn.execute(sa.insert(t.projects).values(project=project, registered_at=now, **row))
        conn.execute(
            sa.update(t.runs)
            .where(t.runs.c.project == project, t.runs.c.project_id.is_(None))
            .values(project_id=project_id)
        )
    else:
        registered = old.registered_at if old.project_id == project_id else now
        conn.execute(
            sa.update(t.projects)
            .where(t.projects.c.project == project)
            .values(registered_at=registered, **row)
        )
    rec = get_project(conn, project)
    assert rec is not None
    return rec


def published_anything(conn: Connection, project: str, project_id: str) -> bool:
    """Whether a run under ``project_id`` recorded a dataset as published."""
    q = (
        sa.select(t.steps.c.id)
        .join(t.runs, t.runs.c.run_id == t.steps.c.run_id)
        .where(
            t.steps.c.project == project,
            t.runs.c.project_id == project_id,
            t.steps.c.status.in_(("success", "noop")),
            t.steps.c.output_version.is_not(None),
        )
        .limit(1)
    )
    return conn.execute(q).first() is not None
