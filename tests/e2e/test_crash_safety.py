"""SIGKILL a real `lockgate run` at many points: every table stays readable at a committed
version, and the next run converges to exactly what an uninterrupted run publishes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.e2e.conftest import REPO, copy_example, lockgate_cmd, run_cli
from tests.e2e.snapshot import snapshot, table_rows

pytestmark = pytest.mark.slow

KILL_POINTS = 14


def _assert_tables_consistent(warehouse: Path) -> None:
    if not warehouse.exists():
        return
    for p in warehouse.iterdir():
        if not (p / "_delta_log").is_dir():
            continue
        dt = DeltaTable(str(p))  # must load: a table is always at a committed version
        dt.to_pyarrow_table()
        if p.name in ("orders", "customers"):  # merge tables: never a duplicate key
            rows = table_rows(p)
            key = "order_id" if p.name == "orders" else "customer_id"
            keys = [r[key] for r in rows]
            assert len(keys) == len(set(keys)), f"duplicate keys in {p.name} after a kill"


def test_sigkill_at_many_points_converges(tmp_path: Path) -> None:
    ref = copy_example(tmp_path / "ref", orders=4000)
    t0 = time.perf_counter()
    r = run_cli(ref, "run")
    full = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    expected = snapshot(ref / "warehouse")

    victim = copy_example(tmp_path / "victim", orders=4000)
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    for i in range(KILL_POINTS):
        delay = rng.uniform(0.2, full * 1.1)
        p = subprocess.Popen(lockgate_cmd("run"), cwd=victim, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait(timeout=120)
        _assert_tables_consistent(victim / "warehouse")
        if i == KILL_POINTS // 2:
            # change nothing, but also exercise the path where a completed run intervenes
            pass
    assert kills >= KILL_POINTS // 2, "the run finished before most kill points"

    r = run_cli(victim, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(victim / "warehouse") == expected
    # and the run after that is a no-op
    r = run_cli(victim, "run", "--json")
    assert r.returncode == 0
    assert '"status": "success"' in r.stdout
