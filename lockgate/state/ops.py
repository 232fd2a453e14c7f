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
    state: StateStore,
    project: str,
    dataset: str,
    problem: str,
    event: str,
    run_id: str | None,
    now: datetime | None = None,
    level: str | None = None,
) -> bool:
    """Record a new incident (opened ``now``, at ``level``); False when it is already open
    (no second alert)."""
    ins = state._insert(alert_incidents).values(
        project=project,
        dataset=dataset,
        problem=problem,
        event=event,
        opened_at=now or datetime.now(UTC),
        run_id=run_id,
        level=level,
    )
    with state._tx() as conn:
        return bool(conn.execute(ins.on_conflict_do_nothing()).rowcount)


#: how bad a level is: an open incident seen at a worse level escalates
LEVEL_RANK = {"warn": 1, "error": 2, "never": 2}


def escalate_incident(
    state: StateStore, project: str, dataset: str, problem: str, level: str
) -> str | None:
    """Raise an open incident to ``level`` when that is worse than its own (a freshness
    warning that became an error): the level it had ("" if none), or None (not worse, not
    open, or another process escalated it first: compare-and-set)."""
    t = alert_incidents
    where = (t.c.project == project) & (t.c.dataset == dataset) & (t.c.problem == problem)
    with state._tx() as conn:
        got = conn.execute(sa.select(t.c.level).where(where)).first()
        if got is None:
            return None
        before = got[0]
        if LEVEL_RANK.get(level, 0) <= LEVEL_RANK.get(before or "", 0):
            return None
        same = t.c.level.is_(None) if before is None else t.c.level == before
        res = conn.execute(sa.update(t).where(where, same).values(level=level))
        return (before or "") if res.rowcount else None


def remind_incident(
    state: StateStore, project: str, dataset: str, problem: str, after_s: float, now: datetime
) -> int | None:
    """Claim a reminder of an open incident whose last alert (or opening) is at least
    ``after_s`` old: the reminder's number (1, 2, ...), or None (not due, not open, or
    another process claimed it first: a compare-and-set on ``notified_at``)."""
    t = alert_incidents
    where = (t.c.project == project) & (t.c.dataset == dataset) & (t.c.problem == problem)
    with state._tx() as conn:
        row = conn.execute(sa.select(t.c.opened_at, t.c.notified_at, t.c.reminders).where(where))
        got = row.first()
        if got is None:
            return None
        last = got[1] or got[0]
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        if (now - last).total_seconds() < after_s:
            return None
        n = int(got[2] or 0) + 1
        same = t.c.notified_at.is_(None) if got[1] is None else t.c.notified_at == got[1]
        res = conn.execute(sa.update(t).where(where, same).values(notified_at=now, reminders=n))
        return n if res.rowcount else None


def close_incident(state: StateStore, project: str, dataset: str, problem: str) -> bool:
    """Resolve an incident; False when none was open."""
    t = alert_incidents
    where = (t.c.project == project) & (t.c.dataset == dataset) & (t.c.problem == problem)
    with state._tx() as conn:
        return bool(conn.execute(sa.delete(t).where(where)).rowcount)
