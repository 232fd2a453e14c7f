"""A real ``lockgate serve`` subprocess on a fake clock (a file it reads each tick):
it fires a due tick once, serves /healthz and /metrics, and after ``kill -9`` — also one
in the middle of a tick — resumes without running an interval twice. No sleeps: every wait
is for a condition (a state-store mark, a health counter), with a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lockgate.ops.clock import FAKE_NOW_ENV
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state.ops import schedule_marks
from tests.ops.helpers import scheduled_project

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0

pytestmark = pytest.mark.slow


def wait_for(what: str, cond: Callable[[], bool]) -> None:
    """Wait until ``cond()`` holds (checking every 20 ms); fail after a generous deadline."""
    end = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Serve:
    def __init__(self, root: Path, clock: Path, extra_env: dict[str, str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), FAKE_NOW_ENV: str(clock), **extra_env}
        cmd = [sys.executable, "-m", "lockgate", "serve", "--port", "0", "--poll", "0.05"]
        self.proc = subprocess.Popen(
            [*cmd, "--project", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until listening (or EOF if it died)
        self.port = int(line.rsplit(":", 1)[1]) if "listening" in line else None

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return bytes(r.read())

    def health(self) -> dict[str, object]:
        return dict(json.loads(self.get("/healthz")))

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@contextmanager
def serve(root: Path, clock: Path, **extra_env: str) -> Iterator[Serve]:
    s = Serve(root, clock, extra_env)
    try:
        yield s
    finally:
        if s.proc.poll() is None:
            s.kill9()
        for stream in (s.proc.stdout, s.proc.stderr):
            if stream is not None:
                stream.close()


def _runs(state: StateStore, name: str) -> int:
    return len(state.list_runs(name, limit=100))


def test_serve_fires_once_survives_kill9_and_serves_metrics(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    project = load_project(root)
    name = project.config.name
    clock = tmp_path / "now"
    clock.write_text("2026-03-01T10:30:00+00:00")
    with serve(root, clock) as s:
        assert s.port is not None
        wait_for("baseline tick", lambda: int(s.health()["ticks"]) >= 1)  # type: ignore[call-overload]
        state = StateStore.open(project.state_url)
        assert schedule_marks(state, name)["hourly"].status == "baseline"
        assert _runs(state, name) == 0
        clock.write_text("2026-03-01T11:00:05+00:00")
        wait_for("tick 11:00 done", lambda: schedule_marks(state, name)["hourly"].status == "done")
        assert _runs(state, name) == 1
        seen = int(s.health()["ticks"])  # type: ignore[call-overload]
        # the pass that ran the tick evaluates freshness after it: wait for the next pass
        wait_for("next pass", lambda: int(s.health()["ticks"]) > seen)  # type: ignore[call-overload]
        metrics = s.get("/metrics").decode()
        assert 'lockgate_schedule_fired_total{schedule="hourly",status="success"} 1.0' in metrics
        assert 'lockgate_steps_total{dataset="orders",status="success"} 1.0' in metrics
        assert 'lockgate_freshness_lag_seconds{dataset="orders"}' in metrics
        s.kill9()
    with serve(root, clock) as s:  # same interval after a kill -9: nothing runs again
        wait_for("two passes", lambda: int(s.health()["ticks"]) >= 2)  # type: ignore[call-overload]
        assert _runs(state, name) == 1
    state.close()


def test_kill9_between_claim_and_run_resumes_the_tick_once(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    project = load_project(root)
    name = project.config.name
    clock = tmp_path / "now"
    clock.write_text("2026-03-01T10:30:00+00:00")
    state = StateStore.open(project.state_url)
    # crash point 1 is the scheduler's claim of the first due tick (serve.claimed)
    with serve(root, clock, LOCKGATE_CRASH_AT="1") as s:
        wait_for("baseline", lambda: "hourly" in schedule_marks(state, name))
        clock.write_text("2026-03-01T11:00:05+00:00")
        assert s.proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    mark = schedule_marks(state, name)["hourly"]
    assert (mark.status, mark.last_tick.hour) == ("running", 11)
    assert _runs(state, name) == 0
    with serve(root, clock) as s:
        wait_for(
            "resumed tick done", lambda: schedule_marks(state, name)["hourly"].status == "done"
        )
        wait_for("another pass", lambda: int(s.health()["ticks"]) >= 2)  # type: ignore[call-overload]
        assert _runs(state, name) == 1
        assert schedule_marks(state, name)["hourly"].run_status == "success"
    state.close()
