"""``kill -9`` at every crash point of ``lockgate features materialize`` (a full refresh and
an incremental run, SQLite and Redis): the re-run leaves the online store exactly as a full
refresh would. Deterministic: ``LOCKGATE_CRASH_AT=N`` kills the process at its N-th point."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lockgate.features.materialize import materialize
from lockgate.features.online import OnlineStore, SQLiteOnlineStore
from lockgate.features.online_redis import RedisOnlineStore
from lockgate.project import load_project
from tests.features.conftest import events_project, write_events

D = datetime(2024, 1, 1)
KEYS = list(range(5))


def _cli(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lockgate", "features", "materialize", "-p", str(root)]
    return subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def _setup(root: Path, kind: str, prefix: str) -> Path:
    if kind == "redis":
        cfg = f"online_store: {{type: redis, key_prefix: '{prefix}', batch_size: 2}}\n"
    else:
        cfg = "online_store: {type: sqlite, batch_size: 2}\n"
    events_project(root, online_store=cfg)
    write_events(root, [(k, D, D, float(k)) for k in KEYS])
    return root


def _change(root: Path) -> None:
    later = D + timedelta(days=1)
    write_events(root, [(k, later, later, 100.0 + k) for k in KEYS[::2]])


def _content(store: OnlineStore) -> list[object]:
    return [
        None if v is None else (v.event_ts, dict(v.values))
        for v in store.read("ev", [(k,) for k in [*KEYS, 99]])
    ]


def _reference(root: Path, kind: str, prefix: str, tmp: Path) -> list[object]:
    store: OnlineStore
    if kind == "redis":
        store = RedisOnlineStore("redis://127.0.0.1:6379/0", prefix + "ref:")
    else:
        store = SQLiteOnlineStore(tmp / "ref.db")
    materialize(load_project(root), store=store, full_refresh=True)
    return _content(store)


def _points(tmp: Path, kind: str, prefix: str, phase: str) -> list[str]:
    root = _setup(tmp / "probe", kind, prefix + "probe:")
    if phase == "incremental":
        materialize(load_project(root))
        _change(root)
    log = tmp / "points.log"
    assert _cli(root, LOCKGATE_CRASH_AT="1000000", LOCKGATE_CRASH_LOG=str(log)).returncode == 0
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["full", "incremental"])
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_kill_9_at_every_point_then_rerun(
    tmp_path: Path, kind: str, phase: str, request: pytest.FixtureRequest
) -> None:
    prefix = str(request.getfixturevalue("redis_prefix")) if kind == "redis" else ""
    points = _points(tmp_path, kind, prefix, phase)
    assert len(points) >= 2, points
    for n, point in enumerate(points, start=1):
        tag = uuid.uuid4().hex[:6]
        root = _setup(tmp_path / f"p{n}", kind, f"{prefix}{tag}:")
        if phase == "incremental":
            materialize(load_project(root))
            _change(root)
        crashed = _cli(root, LOCKGATE_CRASH_AT=str(n))
        assert crashed.returncode == -9, (point, crashed.stderr[-2000:])
        materialize(load_project(root))  # the re-run (in process: one subprocess per point)
        store = (
            RedisOnlineStore("redis://127.0.0.1:6379/0", f"{prefix}{tag}:")
            if kind == "redis"
            else SQLiteOnlineStore(root / ".lockgate" / "online.db")
        )
        want = _reference(root, kind, f"{prefix}{tag}:", tmp_path / f"p{n}")
        assert _content(store) == want, point
