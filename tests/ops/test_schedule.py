"""The scheduler: cron ticks (DST-correct), config errors with file:line, fire-once marks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lockgate.errors import ConfigError
from lockgate.ops.schedule import Scheduler, latest_tick
from lockgate.project import load_project
from lockgate.project.ops_models import ScheduleSpec
from lockgate.runloop.results import RunResult, RunStatus
from lockgate.state import StateStore
from lockgate.state.ops import ScheduleMark, schedule_marks, set_schedule_mark
from tests.ops.helpers import scheduled_project


class FakeClock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(
        self, project: object, select: Sequence[str], now: datetime, listeners: Sequence[object]
    ) -> RunResult:
        self.calls.append(tuple(select))
        return RunResult(f"run{len(self.calls)}", len(self.calls), "p", RunStatus.SUCCESS, [], 0.0)


def test_fall_back_day_fires_a_wall_clock_time_once() -> None:
    """Europe/Berlin 2026-10-25: 02:30 happens twice; the schedule fires once that day."""
    spec = ScheduleSpec(name="n", cron="30 2 * * *", timezone="Europe/Berlin")
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    ticks = {latest_tick(spec, start + timedelta(minutes=m)) for m in range(0, 48 * 60, 15)}
    day = [t for t in ticks if t.astimezone(spec_zone(spec)).date().isoformat() == "2026-10-25"]
    assert len(day) == 1


def spec_zone(spec: ScheduleSpec):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(spec.timezone)


def test_bad_cron_and_zone_are_reported_with_lines(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    (root / "lockgate.yaml").write_text(
        "name: p\nschedules:\n  - name: a\n    cron: '61 * * * *'\n"
        "  - name: b\n    cron: '0 * * * *'\n    timezone: Mars/Base\n"
    )
    with pytest.raises(ConfigError) as e:
        load_project(root)
    where = {(p.file, p.line) for p in e.value.problems}
    assert ("lockgate.yaml", 4) in where and ("lockgate.yaml", 7) in where
    assert "Bad minute" in str(e.value) and "Mars/Base" in str(e.value)


def _scheduler(tmp_path: Path, clock: FakeClock, runner: FakeRunner) -> Scheduler:
    project = load_project(scheduled_project(tmp_path / "p"))
    state = StateStore.open(project.state_url)
    return Scheduler(project, state, clock=clock, runner=runner)


def test_baseline_then_each_tick_once_and_missed_ticks_coalesce(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    runner = FakeRunner()
    s = _scheduler(tmp_path, clock, runner)
    assert s.tick() == []  # first sight: 10:00 is the baseline, not replayed
    clock.t = datetime(2026, 3, 1, 10, 59, tzinfo=UTC)
    assert s.tick() == []
    clock.t = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    [f] = s.tick()
    assert (f.tick.hour, f.status, f.missed) == (11, "success", 0)
    assert s.tick() == [] and runner.calls == [("orders",)]
    clock.t = datetime(2026, 3, 1, 15, 10, tzinfo=UTC)  # down from 11:00 to 15:10
    [f] = s.tick()
    assert (f.tick.hour, f.missed) == (15, 3)  # 12, 13, 14 coalesced into 15:00
    assert len(runner.calls) == 2
    mark = schedule_marks(s.state, s.name)["hourly"]
    assert (mark.status, mark.run_id, mark.run_status) == ("done", "run2", "success")


def test_a_tick_left_running_is_resumed_once(tmp_path: Path) -> None:
    """A scheduler killed during a run left the mark ``running``: the next one resumes
    that tick, and only once."""
    clock = FakeClock(datetime(2026, 3, 1, 11, 5, tzinfo=UTC))
    runner = FakeRunner()
    s = _scheduler(tmp_path, clock, runner)
    tick = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    set_schedule_mark(s.state, s.name, ScheduleMark("hourly", tick, "running", None, None))
    [f] = s.tick()
    assert f.resumed and f.tick == tick
    assert s.tick() == [] and len(runner.calls) == 1


def test_two_schedulers_claim_a_tick_once(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    r1, r2 = FakeRunner(), FakeRunner()
    a = _scheduler(tmp_path, clock, r1)
    b = Scheduler(a.project, StateStore.open(a.project.state_url), clock=clock, runner=r2)
    a.tick()
    clock.t = datetime(2026, 3, 1, 11, 1, tzinfo=UTC)
    stale = schedule_marks(b.state, b.name)["hourly"]
    assert len(a.tick()) == 1
    # b read the mark before a claimed: its compare-and-set loses
    assert b._one(a.project.config.schedules[0], stale, clock.t) is None
    assert len(r1.calls) + len(r2.calls) == 1


def test_schedule_with_unknown_dataset_is_refused(tmp_path: Path) -> None:
    from lockgate.ops.serve import check_schedules

    root = scheduled_project(
        tmp_path / "p", schedules=[{"name": "x", "cron": "0 * * * *", "select": ["nope"]}]
    )
    with pytest.raises(ConfigError, match="schedule 'x'"):
        check_schedules(load_project(root))
