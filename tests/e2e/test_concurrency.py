"""A second run of the same project is refused while one runs; other projects are not."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, lockgate_cmd, run_cli
from tests.run.helpers import csv_source, make_project

pytestmark = pytest.mark.slow


def _slow_project(root: Path, marker: Path) -> Path:
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
                    Path({str(marker)!r}).write_text("started")
                    time.sleep(4)
                    return a
            """,
        },
    )


def _wait_for(path: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_second_run_same_project_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    root = _slow_project(tmp_path / "p", marker)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        lockgate_cmd("run"),
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(marker)
        second = run_cli(root, "run")
        assert second.returncode == 3, second.stdout + second.stderr
        assert "lock" in second.stderr.lower()
        assert str(first.pid) in second.stderr  # names the holder
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err


def test_different_projects_run_concurrently(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    for name in ("p1", "p2"):
        root = _slow_project(tmp_path / name, tmp_path / f"{name}.started")
        procs.append(
            subprocess.Popen(
                lockgate_cmd("run"),
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err


def test_lock_taken_over_after_holder_killed(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    root = _slow_project(tmp_path / "p", marker)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        lockgate_cmd("run"), cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for(marker)
    first.kill()
    first.wait()
    r = run_cli(root, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = run_cli(root, "runs", "--json")
    assert '"interrupted"' in runs.stdout
