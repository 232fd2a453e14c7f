"""State of the operational layer: the scheduler's last fired tick per schedule and the
open alert incidents. Both live in the state store so ``lockgate serve`` survives its own
``kill -9``: a restart reads where it was instead of firing a tick again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from lockgate.state.tables import alert_incidents, schedule_state

if TYPE_CHECKING:
    from lockgate.state.store import StateStore


@dataclass(frozen=True)
class ScheduleMark:
    """The newest tick a schedule fired (``running`` until its run finished) or, for
    ``baseline``, the tick the scheduler first saw: it fires only ticks after it."""

    schedule: str
    last_tick: datetime
    status: str  # baseline / running / done
    run_id: str | None
    run_status: str | None


def schedule_marks(state: StateStore, project: str) -> dict[str, ScheduleMark]:
    t = schedule_state
    with state._read() as conn:
        rows = conn.execute(sa.select(t).where(t.c.project == project)).mappings().all()
    return {
        r["schedule"]: ScheduleMark(
            r["schedule"], r["last_tick"], r["status"], r["run_id"], r["run_status"]
        )
        for r in rows
    }


def set_schedule_mark(
    state: StateStore,
    project: str,
    mark: ScheduleMark,
    *,
    expect: datetime | None = None,
) -> bool:
    """Write ``mark`` (compare-and-set: only if the stored tick is still ``expect``, or no row
    exists when ``expect`` is None). False when another scheduler moved it first."""
    t = schedule_state
    values = {
        "last_tick": mark.last_tick,
        "status": mark.status,
        "run_id": mark.run_id,
        "run_status": mark.run_status,
        "updated_at": datetime.now(UTC),
    }
    with state._tx() as conn:
        if expect is None:
            ins = state._insert(t).values(project=project, schedule=mark.schedule, **values)
            res = conn.execute(ins.on_conflict_do_nothing())
        else:
            where = (t.c.project == project) & (t.c.schedule == mark.schedule)
            res = conn.execute(sa.update(t).where(where, t.c.last_tick == expect).values(**values))
        return bool(res.rowcount)


def open_incidents(state: StateStore, project: str) -> set[tuple[str, str]]:
    """``{(dataset, problem)}`` of the incidents alerted and not yet resolved."""
    t = alert_incidents
    with state._read() as conn:
        rows = conn.execute(sa.select(t.c.dataset, t.c.problem).where(t.c.project == project))
        return {(str(d), str(p)) for d, p in rows}


def open_incident(
    state: StateStore, project: str, dataset: str, problem: str, event: str, run_id: str | None
) -> bool:
    """Record a new incident; False when it is already open (no second alert)."""
    ins = state._insert(alert_incidents).values(
        project=project,
        dataset=dataset,
        problem=problem,
        event=event,
        opened_at=datetime.now(UTC),
        run_id=run_id,
    )
    with state._tx() as conn:
        return bool(conn.execute(ins.on_conflict_do_nothing()).rowcount)


def close_incident(state: StateStore, project: str, dataset: str, problem: str) -> bool:
    """Resolve an incident; False when none was open."""
    t = alert_incidents
    where = (t.c.project == project) & (t.c.dataset == dataset) & (t.c.problem == problem)
    with state._tx() as conn:
        return bool(conn.execute(sa.delete(t).where(where)).rowcount)
