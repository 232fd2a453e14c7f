"""``kill -9`` of a real ``lockgate serve`` in the middle of a scheduled run of a partitioned
dataset — after its commit replaced the due days, before the run recorded them — then a
restart: the tick is resumed once, the days are processed again and *replace* their rows
(never appended twice), and they become done exactly once. Fake clock, crash points: no
sleeps racing the subprocess."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import yaml

import lockgate
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state.ops import schedule_marks
from tests.ops.partition_helpers import day_epoch, partitioned_project, ranges
from tests.ops.test_serve_process import DEADLINE_S, serve, wait_for

pytestmark = pytest.mark.slow


def project(root: Path) -> Path:
    root = partitioned_project(root, {d: [d, 10 * d] for d in range(1, 4)})
    cfg = yaml.safe_load((root / "lockgate.yaml").read_text())
    cfg["schedules"] = [{"name": "hourly", "cron": "0 * * * *"}]
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    return root


def ids(root: Path) -> list[int]:
    t = lockgate.read(load_project(root), "daily", as_="arrow")
    return sorted(r["id"] for r in t.to_pylist())


def fire(root: Path, clock: Path, **env: str) -> tuple[int | None, StateStore, str]:
    """Start serve at 00:30 (baseline), move the clock past 01:00: the tick runs."""
    p = load_project(root)
    state = StateStore.open(p.state_url)
    name = p.config.name
    clock.write_text("2024-01-04T00:30:00+00:00")
    with serve(root, clock, **env) as s:
        wait_for("baseline", lambda: "hourly" in schedule_marks(state, name))
        clock.write_text("2024-01-04T01:00:05+00:00")
        if env.get("LOCKGATE_CRASH_AT", "").isdigit() and int(env["LOCKGATE_CRASH_AT"]) < 10**6:
            return s.proc.wait(timeout=DEADLINE_S), state, name
        wait_for("tick done", lambda: schedule_marks(state, name)["hourly"].status == "done")
        return None, state, name


def test_kill9_of_serve_between_a_partition_commit_and_its_record(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    probe = tmp_path / "probe"
    shutil.copytree(root, probe)
    log = tmp_path / "points.log"
    _, st, _ = fire(
        probe, tmp_path / "now0", LOCKGATE_CRASH_AT="1000000", LOCKGATE_CRASH_LOG=str(log)
    )
    st.close()
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    at = next(i for i, p in enumerate(points) if p.startswith("daily: committed")) + 1

    code, state, name = fire(root, tmp_path / "now", LOCKGATE_CRASH_AT=str(at))
    assert code == -signal.SIGKILL
    assert ids(root) == [1, 2, 3, 4, 5, 6]  # the commit landed: days 1..3 ...
    assert ranges(root) == []  # ... but were never recorded as done
    assert schedule_marks(state, name)["hourly"].status == "running"

    clock = tmp_path / "now"
    with serve(root, clock) as s:  # the same hour: the tick is resumed, once
        wait_for("resumed", lambda: schedule_marks(state, name)["hourly"].status == "done")
        wait_for("another pass", lambda: int(s.health()["ticks"]) >= 2)  # type: ignore[call-overload]
    runs = state.list_runs(name, limit=10)
    assert runs[0].status == "success" and len(runs) == 2  # killed + resumed
    assert ids(root) == [1, 2, 3, 4, 5, 6]  # replaced, not appended a second time
    assert ranges(root) == [(day_epoch(1), day_epoch(4))]
    with serve(root, clock) as s:  # and again after a plain restart: nothing runs
        wait_for("two passes", lambda: int(s.health()["ticks"]) >= 2)  # type: ignore[call-overload]
    assert len(state.list_runs(name, limit=10)) == 2
    state.close()
