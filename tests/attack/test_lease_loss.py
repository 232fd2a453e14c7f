"""A run whose project lock was taken over by another run while it worked must not end as
a success (nor exit 0): it can no longer know that what it commits is not overwritten.
The run is held on a file barrier inside a Python transform, never raced with sleeps."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import lockgate
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state import tables as t
from tests.attack._util import build, cli, csv_source

HOLD = """
import time
from pathlib import Path
from lockgate import transform

@transform
def held(src):
    Path({started!r}).write_text("started")
    deadline = time.monotonic() + 60  # safety net only; the test releases the barrier
    while not Path({go!r}).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return src
"""


def _project(tmp_path: Path, last: bool) -> tuple[Path, Path, Path]:
    started, go = tmp_path / "started", tmp_path / "go"
    ds: list[dict[str, Any]] = [
        csv_source("src", "data/src.csv"),
        {"name": "held", "transform": {"python": "held"}, "write": {"mode": "overwrite"}},
    ]
    if not last:
        ds.append(
            {
                "name": "after",
                "transform": {"sql": "select * from held"},
                "write": {"mode": "overwrite"},
            }
        )
    root = build(
        tmp_path / "p",
        ds,
        {
            "data/src.csv": "id,v\n1,a\n2,b\n",
            "datasets/held.py": HOLD.format(started=str(started), go=str(go)),
        },
    )
    return root, started, go


def _wait_file(path: Path, worker: threading.Thread) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert worker.is_alive(), "the run ended before reaching the barrier"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def _take_over(root: Path) -> None:
    """What another run does after our lease expired: it owns the lock row now."""
    project = load_project(root)
    store = StateStore.open(project.state_url)
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        n = conn.execute(
            sa.update(t.locks)
            .where(t.locks.c.project == project.config.name)
            .values(
                holder="e" * 32,
                pid=4242,
                host="other-host",
                acquired_at=now,
                heartbeat_at=now,
                expires_at=now + timedelta(hours=1),
            )
        ).rowcount
    assert n == 1, "the running run holds no lock row to take over"


@pytest.mark.parametrize("last", [True, False], ids=["held_step_is_last", "steps_after_held"])
def test_run_that_lost_its_lock_is_not_a_success(tmp_path: Path, last: bool) -> None:
    root, started, go = _project(tmp_path, last)
    out: dict[str, Any] = {}

    def work() -> None:
        try:
            out["result"] = lockgate.run(root)
        except BaseException as e:
            out["error"] = e

    worker = threading.Thread(target=work)
    worker.start()
    try:
        _wait_file(started, worker)
        _take_over(root)
    finally:
        go.write_text("go")
        worker.join(timeout=120)
    assert not worker.is_alive()
    if "error" in out:  # raising is an acceptable way to not succeed, if it says why
        assert "lock" in str(out["error"]).lower(), repr(out["error"])
    else:
        res = out["result"]
        assert not res.ok and str(res.status) != "success", (
            "the run lost its lock to another run mid-way but reports "
            f"{res.status}: {[(s.dataset, str(s.status)) for s in res.steps]}"
        )
    history = lockgate.runs(root)
    assert history and str(history[0].status) != "success", (
        f"the run's recorded status is {history[0].status}: "
        "a run that lost its lock is not a success"
    )
    info = StateStore.open(load_project(root).state_url).lock_info(load_project(root).config.name)
    assert info is not None and info.holder == "e" * 32, "the run released the new holder's lock"


def test_cli_run_that_lost_its_lock_exits_nonzero(tmp_path: Path) -> None:
    root, started, go = _project(tmp_path, last=True)
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(r=cli("run", "-p", str(root), "--json")))
    worker.start()
    try:
        _wait_file(started, worker)
        _take_over(root)
    finally:
        go.write_text("go")
        worker.join(timeout=120)
    r = out["r"]
    assert r.exit_code != 0, f"a run that lost its lock exited 0: {r.stdout[-800:]}"
