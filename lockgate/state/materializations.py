"""Materialisation history (``lockgate_materializations``, migration 0011).

One row per feature view per ``lockgate features materialize``: written ``running`` before
anything reaches the online store (with the process id and host), completed with the
versions read, the mode and the rows written when the view's batch is done, or ``failed``
with the (redacted) error. A process killed in between leaves ``running``: :func:`stale`
finds such rows (same host, process gone) so the feature store can settle them
(:mod:`lockgate.features.history`).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from lockgate.state.tables import materializations as m

if TYPE_CHECKING:
    from lockgate.state.store import StateStore

RUNNING, SUCCESS, FAILED, INTERRUPTED = "running", "success", "failed", "interrupted"


@dataclass(frozen=True)
class MaterializationRecord:
    id: str
    run_id: str
    project: str
    view: str
    dataset: str
    online_store: str
    mode: str | None
    reason: str | None
    from_version: int | None
    to_version: int | None
    rows_written: int | None
    rows_deleted: int | None
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    pid: int
    pid_started: int | None
    host: str
    mark: str | None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("started_at", "finished_at"):
            d[k] = None if d[k] is None else d[k].isoformat()
        return d


def start(
    state: StateStore, *, run_id: str, project: str, view: str, dataset: str, online_store: str
) -> str:
    """A ``running`` row for ``view``; returns its id."""
    id_ = uuid.uuid4().hex
    with state._tx() as conn:
        conn.execute(
            sa.insert(m).values(
                id=id_,
                run_id=run_id,
                project=project,
                view=view,
                dataset=dataset,
                online_store=online_store,
                status=RUNNING,
                started_at=datetime.now(UTC),
                pid=os.getpid(),
                pid_started=process_start(os.getpid()),
                host=socket.gethostname(),
            )
        )
    return id_


def update(state: StateStore, id_: str, **values: Any) -> None:
    """Set columns of row ``id_`` (the plan: versions, mode, mark; or how it ended)."""
    with state._tx() as conn:
        conn.execute(sa.update(m).where(m.c.id == id_).values(**values))


def finish(state: StateStore, id_: str, status: str, **values: Any) -> None:
    update(state, id_, status=status, finished_at=datetime.now(UTC), **values)


def _record(row: RowMapping) -> MaterializationRecord:
    return MaterializationRecord(**{k: row[k] for k in MaterializationRecord.__dataclass_fields__})


def history(
    state: StateStore, project: str, *, view: str | None = None, limit: int = 20
) -> list[MaterializationRecord]:
    """Newest first (by start time), at most ``limit`` rows, of one view or all."""
    q = sa.select(m).where(m.c.project == project)
    if view is not None:
        q = q.where(m.c.view == view)
    q = q.order_by(m.c.started_at.desc(), m.c.id).limit(limit)
    with state._read() as conn:
        return [_record(r) for r in conn.execute(q).mappings()]


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; Linux), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(rec: MaterializationRecord) -> bool:
    """A ``running`` row whose process is gone (only decidable on the same host)."""
    if rec.status != RUNNING or rec.host != socket.gethostname():
        return False
    if not pid_alive(rec.pid):
        return True
    # alive, but another process may have been given the same pid since
    return rec.pid_started is not None and process_start(rec.pid) != rec.pid_started


def stale(state: StateStore, project: str) -> list[MaterializationRecord]:
    """``running`` rows of ``project`` whose process ended without finishing them."""
    q = sa.select(m).where(m.c.project == project, m.c.status == RUNNING)
    with state._read() as conn:
        rows = [_record(r) for r in conn.execute(q).mappings()]
    return [r for r in rows if is_stale(r)]
