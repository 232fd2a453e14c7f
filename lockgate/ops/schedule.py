"""Cron schedules: which tick is due, and the scheduler that fires it exactly once.

The scheduler keeps one mark per schedule in the state store (:mod:`lockgate.state.ops`):
the newest tick it fired and whether that run finished. Firing is claim → run → done:

- the first time a schedule is seen its newest past tick becomes the *baseline*: only
  later ticks fire (starting ``serve`` does not replay history);
- a due tick is claimed with a compare-and-set on the stored tick (two schedulers on one
  state store cannot both claim it), then planned and executed under the project lease
  (:func:`lockgate.runloop.runner.execute` holds it), then marked ``done``;
- a mark still ``running`` at start-up is a run the scheduler was killed in: it is resumed
  once (publishing is idempotent per batch, so steps that already published plan as
  up to date), never started again after it is ``done``;
- ticks missed while the scheduler was down are coalesced into one run of the newest.

Times are computed by cronsim in the schedule's time zone (DST-correct: a wall-clock time
that happens twice on the fall-back day fires once).

>>> from datetime import datetime, UTC
>>> spec = ScheduleSpec(name="h", cron="0 * * * *")
>>> latest_tick(spec, datetime(2026, 1, 1, 5, 30, tzinfo=UTC)).isoformat()
'2026-01-01T05:00:00+00:00'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cronsim import CronSim

from lockgate.errors import LockgateError
from lockgate.ops.clock import Clock, system_clock
from lockgate.project.ops_models import ScheduleSpec
from lockgate.state.errors import LockHeld
from lockgate.state.ops import ScheduleMark, schedule_marks, set_schedule_mark
from lockgate.storage.crashpoints import crashpoint

if TYPE_CHECKING:
    from lockgate.project import Project
    from lockgate.runloop.events import Listener
    from lockgate.runloop.results import RunResult
    from lockgate.state import StateStore

log = logging.getLogger(__name__)

#: runs a selection of a project: (project, select, now, listeners) → result
Runner = Callable[["Project", Sequence[str], datetime, Sequence["Listener"]], "RunResult"]


def latest_tick(spec: ScheduleSpec, now: datetime) -> datetime:
    """The newest tick at or before ``now`` (UTC)."""
    local = now.astimezone(ZoneInfo(spec.timezone)).replace(microsecond=0)
    # cronsim's reverse iteration starts strictly before its argument
    tick = next(CronSim(spec.cron, local + timedelta(seconds=1), reverse=True))
    return tick.astimezone(UTC)


def next_tick(spec: ScheduleSpec, after: datetime) -> datetime:
    """The first tick strictly after ``after`` (UTC)."""
    local = after.astimezone(ZoneInfo(spec.timezone))
    return next(CronSim(spec.cron, local)).astimezone(UTC)


def plan_and_execute(
    project: Project, select: Sequence[str], now: datetime, listeners: Sequence[Listener]
) -> RunResult:
    """The default runner: :func:`~lockgate.runloop.plan.plan` then ``execute``."""
    from lockgate.runloop.plan import plan
    from lockgate.runloop.runner import execute

    return execute(plan(project, select=select, now=now), listeners=listeners)


@dataclass(frozen=True)
class Fired:
    """One run the scheduler started."""

    schedule: str
    tick: datetime
    run_id: str | None
    status: str  # the run's status, or 'error' / 'lock_held'
    resumed: bool = False  # the tick's run was interrupted (scheduler killed) and ran again
    missed: int = 0  # older ticks coalesced into this one


@dataclass
class Scheduler:
    """Fires the due ticks of a project's schedules; call :meth:`tick` from a loop."""

    project: Project
    state: StateStore
    clock: Clock = system_clock
    listeners: Sequence[Listener] = ()
    runner: Runner = plan_and_execute
    fired: list[Fired] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.project.config.name

    def tick(self) -> list[Fired]:
        """Fire every schedule that is due now; the runs it made."""
        now = self.clock()
        marks = schedule_marks(self.state, self.name)
        out: list[Fired] = []
        for spec in self.project.config.schedules:
            f = self._one(spec, marks.get(spec.name), now)
            if f is not None:
                out.append(f)
        self.fired.extend(out)
        return out

    def next_due(self) -> datetime | None:
        """The earliest next tick over all schedules (None without schedules)."""
        now = self.clock()
        ticks = [next_tick(s, now) for s in self.project.config.schedules]
        return min(ticks, default=None)

    def _one(self, spec: ScheduleSpec, mark: ScheduleMark | None, now: datetime) -> Fired | None:
        latest = latest_tick(spec, now)
        if mark is None:
            base = ScheduleMark(spec.name, latest, "baseline", None, None)
            set_schedule_mark(self.state, self.name, base)
            log.info("schedule %s: first seen; next tick %s", spec.name, next_tick(spec, now))
            return None
        if mark.status == "running":  # the scheduler died during this tick's run
            return self._run(spec, mark.last_tick, resumed=True)
        if latest <= mark.last_tick:
            return None
        claim = ScheduleMark(spec.name, latest, "running", None, None)
        if not set_schedule_mark(self.state, self.name, claim, expect=mark.last_tick):
            log.info("schedule %s: tick %s claimed by another scheduler", spec.name, latest)
            return None
        crashpoint("serve.claimed")
        missed = _count_between(spec, mark.last_tick, latest)
        return self._run(spec, latest, missed=missed)

    def _run(
        self, spec: ScheduleSpec, tick: datetime, *, resumed: bool = False, missed: int = 0
    ) -> Fired:
        log.info("schedule %s: running tick %s%s", spec.name, tick, " (resumed)" * resumed)
        try:
            result = self.runner(self.project, spec.select, self.clock(), self.listeners)
        except LockHeld as e:  # another run holds the project: the tick stays due
            log.warning("schedule %s: tick %s waits: %s", spec.name, tick, e.message)
            return Fired(spec.name, tick, None, "lock_held", resumed, missed)
        except LockgateError as e:
            log.error("schedule %s: tick %s failed: %s", spec.name, tick, e.message)
            self._done(spec, tick, None, "error")
            return Fired(spec.name, tick, None, "error", resumed, missed)
        crashpoint("serve.ran")
        self._done(spec, tick, result.run_id, str(result.status))
        return Fired(spec.name, tick, result.run_id, str(result.status), resumed, missed)

    def _done(self, spec: ScheduleSpec, tick: datetime, run_id: str | None, status: str) -> None:
        done = ScheduleMark(spec.name, tick, "done", run_id, status)
        set_schedule_mark(self.state, self.name, done, expect=tick)


def _count_between(spec: ScheduleSpec, after: datetime, until: datetime, cap: int = 10_000) -> int:
    """Ticks strictly between ``after`` and ``until`` (the ones coalesced), up to ``cap``."""
    it = CronSim(spec.cron, after.astimezone(ZoneInfo(spec.timezone)))
    n = 0
    for t in it:
        if t.astimezone(UTC) >= until or n >= cap:
            break
        n += 1
    return n
