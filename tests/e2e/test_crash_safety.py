"""SIGKILL a real `lockgate run` at many crash points: every table stays readable at a committed
version, and the runs that follow converge to exactly what uninterrupted runs publish —
across an initial load and incremental batches (append history, merge upserts,
partition overwrites)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
    """Kill points are the crash points lockgate names (LOCKGATE_CRASH_AT=N: SIGKILL itself
    at the N-th), not moments in time: every run of the sweep dies at a known place (right
    before/after a Delta commit, between a commit and its record in the state store), the
    same ones on a busy machine as on an idle one."""
    ref = copy_example(tmp_path / "ref", orders=4000)
    r = run_cli(ref, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    for k in INCREMENTS:
        _increment(ref, k)
        r = run_cli(ref, "run")
        assert r.returncode == 0, r.stdout + r.stderr
    expected = snapshot(ref / "warehouse")

    victim = copy_example(tmp_path / "victim", orders=4000)
    crash_log = tmp_path / "crash.log"
    kinds: set[str] = set()
    kills = 0
    for phase in range(len(INCREMENTS) + 1):
        if phase:
            _increment(victim, INCREMENTS[phase - 1])
        at = 1 + phase  # phases start at different points; stride 3 sweeps through the run
        while True:
            crash_log.unlink(missing_ok=True)
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO),
                "LOCKGATE_CRASH_AT": str(at),
                "LOCKGATE_CRASH_LOG": str(crash_log),
            }
            p = subprocess.run(
                lockgate_cmd("run"),
                cwd=victim,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=600,
            )
            _assert_tables_consistent(victim / "warehouse")
            if p.returncode == 0:  # the run had fewer crash points: it completed
                break
            assert p.returncode == -signal.SIGKILL, p.stderr
            reached = crash_log.read_text().splitlines()
            assert reached[-1].startswith(f"{at} "), reached
            kinds.add(reached[-1].split(": ", 1)[-1].split(" (")[0])
            kills += 1
            at += 3
    assert kills >= MIN_KILLS
    # the sweep hit every kind of crash point
    assert {"files written, not committed", "committed", "success, not recorded"} <= kinds, kinds

    r = run_cli(victim, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert snapshot(victim / "warehouse") == expected
