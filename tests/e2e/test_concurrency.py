"""A second run of the same project is refused while one runs; other projects are not; a run
that loses its lock stops without publishing and ends interrupted.

No timing: a run is held inside a Python transform until the test creates a release file
(the transform announces that it is waiting by writing a marker file)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from lockgate.state import StateStore
from lockgate.state import tables as t
from tests.e2e.conftest import REPO, lockgate_cmd, run_cli
from tests.run.helpers import csv_source, make_project

pytestmark = pytest.mark.slow

BARRIER_TIMEOUT = 600  # only a safety net against a hung test; nothing waits on it normally


def _held_project(root: Path, started: Path, release: Path) -> Path:
    """Project: source ``a`` and transform ``b`` that blocks until ``release`` exists."""
    return make_project(
        root,
        [csv_source("a", "data/a.csv"), {"name": "b", "transform": {"python": "b"}}],
        files={
            "data/a.csv": "x\n1\n",
            "datasets/b.py": f"""
                import time
                from pathlib import Path
                from lockgate import transform

                @transform
                def b(a):
                    Path({str(started)!r}).write_text("started")
                    deadline = time.monotonic() + {BARRIER_TIMEOUT}
                    while not Path({str(release)!r}).exists():
                        if time.monotonic() > deadline:
                            raise RuntimeError("the test never released the barrier")
                        time.sleep(0.02)
                    return a
            """,
        },
    )


def _start(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.Popen(
        lockgate_cmd("run"),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``proc`` reaches the barrier (or dies: then fail with its output at once)."""
    end = time.monotonic() + BARRIER_TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before reaching the barrier:\n{out}\n{err}")
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_second_run_same_project_is_refused(tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    root = _held_project(tmp_path / "p", started, release)
    first = _start(root)
    try:
        _wait_for(started, first)  # the first run holds the lock and waits for us
        second = run_cli(root, "run")
        assert second.returncode == 3, second.stdout + second.stderr
        assert "lock" in second.stderr.lower()
        assert str(first.pid) in second.stderr  # names the holder
    finally:
        release.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err


def test_different_projects_run_concurrently(tmp_path: Path) -> None:
    release = tmp_path / "release"
    procs = []
    for name in ("p1", "p2"):
        started = tmp_path / f"{name}.started"
        root = _held_project(tmp_path / name, started, release)
        procs.append((_start(root), started))
    try:
        for proc, started in procs:  # both are inside their transform at the same time
            _wait_for(started, proc)
    finally:
        release.touch()
        outs = [p.communicate(timeout=300) for p, _ in procs]
    for (p, _), (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err


def test_lock_taken_over_after_holder_killed(tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    root = _held_project(tmp_path / "p", started, release)
    first = _start(root)
    try:
        _wait_for(started, first)
    finally:
        first.kill()
        first.communicate()
    release.touch()
    r = run_cli(root, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = run_cli(root, "runs", "--json")
    assert '"interrupted"' in runs.stdout


def test_run_that_lost_its_lock_stops_and_ends_interrupted(tmp_path: Path) -> None:
    """The holder is held (as if paused) while its lease expires and another run takes the
    lock over: when it resumes it must not publish, and it must not report success."""
    started, release = tmp_path / "started", tmp_path / "release"
    root = _held_project(tmp_path / "p", started, release)
    first = _start(root)
    try:
        _wait_for(started, first)
        store = StateStore.open(f"sqlite:///{root / '.lockgate' / 'state.db'}")
        try:
            with store.engine.begin() as conn:
                # its lease ran out while it was paused, and a run that has since died took
                # the lock (another holder: the paused run's heartbeat cannot win it back
                # before the next run takes it over, whatever the timing)
                past = datetime.now(UTC) - timedelta(seconds=5)
                conn.execute(
                    sa.update(t.locks).values(
                        holder="d" * 32, pid=2**22 + 1, host="gone", expires_at=past
                    )
                )
        finally:
            store.close()
        other = run_cli(root, "run", "--select", "a", "--full-refresh")  # takes the lock over
        assert other.returncode == 0, other.stdout + other.stderr
        assert "took over the lock" in other.stderr
    finally:
        release.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode != 0, out + err
    assert "taken over by another run" in err
    assert not (root / "warehouse" / "b").exists()  # nothing published after the loss
    runs = json.loads(run_cli(root, "runs", "--json").stdout)
    by_status = sorted(r["status"] for r in runs)
    assert by_status == ["interrupted", "success"], runs
