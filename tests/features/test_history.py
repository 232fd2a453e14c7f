"""Materialisation history (migration 0011): every ``materialize`` recorded per view with the
versions read, rows written, online store, times and status; a failure recorded as failed
without secrets; ``kill -9`` at every crash point leaves a truthful record (never a stale
``running``; ``success`` exactly when the store holds the run's mark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lockgate.api import materializations
from lockgate.errors import LockgateError
from lockgate.features.materialize import materialize
from lockgate.features.online import OnlineStore, SQLiteOnlineStore
from lockgate.features.online_redis import RedisOnlineStore
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state import materializations as mh
from tests.features.conftest import events_project, write_events
from tests.features.test_materialize_crash import _change, _cli, _points, _setup

D = datetime(2024, 1, 1)


def test_each_run_is_recorded_with_versions_rows_store_and_times(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [(k, D, D, float(k)) for k in range(4)])
    project = load_project(root)
    assert materializations(project) == []
    materialize(project)
    write_events(root, [(1, D + timedelta(days=1), D + timedelta(days=1), 9.0)])
    materialize(project)
    materialize(project)
    rows = materializations(project)
    assert [(r["view"], r["status"], r["mode"]) for r in rows] == [
        ("ev", "success", "unchanged"),
        ("ev", "success", "incremental"),
        ("ev", "success", "full"),
    ]
    unchanged, incremental, full = rows
    assert (full["from_version"], full["to_version"], full["rows_written"]) == (None, 0, 4)
    assert (incremental["from_version"], incremental["to_version"]) == (0, 1)
    assert (incremental["rows_written"], incremental["rows_deleted"]) == (1, 0)
    assert (unchanged["from_version"], unchanged["to_version"]) == (1, 1)
    assert full["dataset"] == "events" and full["online_store"].startswith("sqlite:")
    for r in rows:
        assert r["started_at"] <= r["finished_at"] and r["error"] is None
        assert r["pid"] == os.getpid()
    assert len({r["run_id"] for r in rows}) == 3
    assert materializations(project, view="ev", limit=1) == [unchanged]
    assert materializations(project, view="nope") == []
    # the CLI shows the same rows
    cli = [sys.executable, "-m", "lockgate", "features", "status", "--json", "-p", str(root)]
    shown = json.loads(subprocess.run(cli, capture_output=True, check=True, text=True).stdout)
    assert shown == rows
    text = subprocess.run(cli[:-3] + cli[-2:], capture_output=True, check=True, text=True).stdout
    assert text.count("success") == 3 and "ev  incremental (v0 -> v1)  1 written, 0 deleted" in text


def test_a_failure_is_recorded_as_failed_without_the_secret(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    secret = "s3cr3t-pw-Zq"
    # nothing listens on port 1: the store fails on its first write
    cfg = f"online_store: {{type: redis, url: 'redis://:{secret}@127.0.0.1:1/0'}}\n"
    root = events_project(tmp_path / "p", online_store=cfg)
    write_events(root, [(1, D, D, 1.0)])
    project = load_project(root)
    with pytest.raises(LockgateError) as err:
        materialize(project)
    assert secret not in str(err.value)
    with StateStore.open(project.state_url) as state:
        (rec,) = mh.history(state, project.name)
    assert rec.status == "failed" and rec.finished_at is not None
    assert rec.error and "OnlineStoreError" in rec.error
    assert rec.online_store.startswith("redis:") and "127.0.0.1:1" in rec.online_store
    assert secret not in json.dumps(rec.as_dict())


def test_an_unpublished_dataset_is_a_failed_row(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    project = load_project(root)
    with pytest.raises(LockgateError, match="has not been published"):
        materialize(project)
    (rec,) = materializations(project)
    assert rec["status"] == "failed" and "has not been published" in rec["error"]
    assert rec["to_version"] is None and rec["rows_written"] is None


def _store(root: Path, kind: str, prefix: str) -> OnlineStore:
    if kind == "redis":
        return RedisOnlineStore("redis://127.0.0.1:6379/0", prefix)
    return SQLiteOnlineStore(root / ".lockgate" / "online.db")


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_kill_9_at_every_point_leaves_a_truthful_record(
    tmp_path: Path, kind: str, phase: str, request: pytest.FixtureRequest
) -> None:
    prefix = str(request.getfixturevalue("redis_prefix")) if kind == "redis" else ""
    points = _points(tmp_path, kind, prefix, phase)
    assert "materialize: batch done, history not" in points
    committed = points.index(f"online {kind}: committed")
    for n, point in enumerate(points, start=1):
        tag = f"{prefix}k{n}{phase}:"
        root = _setup(tmp_path / f"p{n}", kind, tag)
        project = load_project(root)
        if phase == "incremental":
            materialize(project)
            _change(root)
        assert _cli(root, LOCKGATE_CRASH_AT=str(n)).returncode == -9, point
        killed = [r for r in materializations(project) if r["pid"] != os.getpid()]
        (rec,) = killed  # one view: written before any crash point
        assert rec["status"] != "running", point  # its process is gone
        assert rec["finished_at"] is None, point  # when it ended is not known
        store = _store(root, kind, tag)
        held = store.mark("ev")
        complete = rec["mark"] is not None and held is not None and held.dumps() == rec["mark"]
        assert rec["status"] == ("success" if complete else "interrupted"), point
        # the store's own commit is the line: at or after it the batch is complete
        assert complete == (n - 1 >= committed), point
        if rec["mark"] is not None:
            assert rec["to_version"] == (1 if phase == "incremental" else 0), point
        assert f"pid {rec['pid']} " in rec["error"] and "ended without finishing" in rec["error"]
        materialize(project)  # the re-run settles the row for good, then runs
        with StateStore.open(project.state_url) as state:
            stored = mh.history(state, project.name)
        assert stored[0].status == "success" and stored[0].pid == os.getpid()
        assert [r.status for r in stored if r.id == rec["id"]] == [rec["status"]], point
        assert not [r for r in stored if r.status == "running"]
        store.close()


def test_a_running_row_is_stale_only_when_its_process_is_gone_or_its_pid_reused(
    tmp_path: Path,
) -> None:
    root = events_project(tmp_path / "p")
    project = load_project(root)
    with StateStore.open(project.state_url) as state:
        live = mh.start(
            state, run_id="r", project=project.name, view="ev", dataset="events", online_store="x"
        )
        reused = mh.start(
            state, run_id="r", project=project.name, view="ev", dataset="events", online_store="x"
        )
        mh.update(state, reused, pid_started=-1)  # same pid, another process's start time
        gone = mh.start(
            state, run_id="r", project=project.name, view="ev", dataset="events", online_store="x"
        )
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        mh.update(state, gone, pid=int(child.stdout))  # a process that has ended
        stale = {r.id for r in mh.stale(state, project.name)}
    assert stale == {reused, gone}
    shown = {r["id"]: r["status"] for r in materializations(project)}
    assert shown == {live: "running", reused: "interrupted", gone: "interrupted"}
