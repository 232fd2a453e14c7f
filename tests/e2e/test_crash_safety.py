"""SIGKILL a real `lockgate run` at many points: every table stays readable at a committed
version, and the runs that follow converge to exactly what uninterrupted runs publish —
across an initial load and incremental batches (append history, merge upserts,
partition overwrites)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.e2e.conftest import REPO, copy_example, lockgate_cmd, run_cli
from tests.e2e.snapshot import snapshot, table_rows

pytestmark = pytest.mark.slow

INCREMENTS = (4, 5)  # generate.py --batch K: new orders + updates of earlier ones
MIN_KILLS = 8


def _increment(project: Path, k: int) -> None:
    subprocess.run(
        [sys.executable, "generate.py", "--batch", str(k)],
        cwd=project,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _assert_tables_consistent(warehouse: Path) -> None:
    if not warehouse.exists():
        return
    for p in warehouse.iterdir():
        if not (p / "_delta_log").is_dir():
            continue
        DeltaTable(str(p)).to_pyarrow_table()  # loads: always at a committed version
        if p.name in ("orders", "customers"):  # merge tables: never a duplicate key
            key = "order_id" if p.name == "orders" else "customer_id"
            keys = [r[key] for r in table_rows(p)]
            assert len(keys) == len(set(keys)), f"duplicate keys in {p.name} after a kill"


def test_sigkill_at_many_points_converges(tmp_path: Path) -> None:
    ref = copy_example(tmp_path / "ref", orders=4000)
    t0 = time.perf_counter()
    r = run_cli(ref, "run")
    full = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    for k in INCREMENTS:
        _increment(ref, k)
        r = run_cli(ref, "run")
        assert r.returncode == 0, r.stdout + r.stderr
    expected = snapshot(ref / "warehouse")

    victim = copy_example(tmp_path / "victim", orders=4000)
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pending = list(INCREMENTS)
    kills = completed = 0
    step = 0  # kill points sweep through each phase: 0.25 s, 0.5 s, ... until a run survives
    for _ in range(80):
        p = subprocess.Popen(
            lockgate_cmd("run"),
            cwd=victim,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        step += 1
        time.sleep(min(0.25 * step + rng.uniform(-0.1, 0.1), full * 2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        _, err = p.communicate(timeout=120)
        assert p.returncode in (0, -signal.SIGKILL), err
        _assert_tables_consistent(victim / "warehouse")
        if p.returncode == 0:
            completed += 1
            step = 0
            if not pending:
                break
            _increment(victim, pending.pop(0))
    assert not pending, "did not get through every increment"
    assert kills >= MIN_KILLS, f"only {kills} runs were killed mid-flight"

    r = run_cli(victim, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(victim / "warehouse") == expected
