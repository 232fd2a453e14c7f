"""Scheduler numbers: cron tick computation over 5 years of hourly ticks (cronsim), the
cost of one scheduler pass with nothing due, and the overhead per step of a scheduled run of a
generated project of N no-op datasets (plan + execute, all up to date).

    .venv/bin/python benchmarks/ops_bench.py --datasets 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

import lockgate
from lockgate.ops.schedule import Scheduler, latest_tick, plan_and_execute
from lockgate.project.ops_models import ScheduleSpec
from lockgate.state import StateStore


def ticks_5y() -> tuple[int, float]:
    spec = ScheduleSpec(name="h", cron="0 * * * *", timezone="Europe/Berlin")
    start = datetime(2021, 1, 1, tzinfo=UTC)
    n = 5 * 8766
    t0 = time.perf_counter()
    for i in range(n):
        latest_tick(spec, start + timedelta(hours=i, minutes=30))
    return n, time.perf_counter() - t0


def iterate_5y(n: int) -> float:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    it = CronSim("0 * * * *", datetime(2021, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")))
    t0 = time.perf_counter()
    for _ in range(n):
        next(it)
    return time.perf_counter() - t0


def project(root: Path, n: int) -> Path:
    (root / "datasets").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n1\n2\n")
    ds = [{"name": "src", "source": {"type": "file", "path": "data/a.csv"}}]
    ds += [{"name": f"d{i}", "transform": {"sql": "select x from src"}} for i in range(n)]
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": ds}))
    cfg = {"name": "bench", "schedules": [{"name": "h", "cron": "* * * * *"}]}
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--profile", type=Path, help="cProfile the scheduled run into this file")
    ap.add_argument("--runs", type=int, default=1, help="scheduled runs to time (best, median)")
    args = ap.parse_args()
    n, s = ticks_5y()
    print(f"latest_tick x {n} (5 years hourly, Europe/Berlin): {s:.3f} s")
    print(f"iterating the same {n} ticks forward: {iterate_5y(n):.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp) / "p", args.datasets)
        p = lockgate.load_project(root)
        lockgate.run(p)  # publish everything once: the scheduled run is all no-op
        state = StateStore.open(p.state_url)
        now = [datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)]
        sched = Scheduler(p, state, clock=lambda: now[0], runner=plan_and_execute)
        sched.tick()  # baseline
        t0 = time.perf_counter()
        for _ in range(20):
            sched.tick()
        idle = (time.perf_counter() - t0) / 20
        print(f"scheduler pass, nothing due: {idle * 1000:.2f} ms")
        steps = args.datasets + 1
        walls, cpus = [], []
        for i in range(args.runs):
            now[0] += timedelta(minutes=1)
            prof = None
            if args.profile is not None and i == args.runs - 1:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            c0, t0 = time.process_time(), time.perf_counter()
            [fired] = sched.tick()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            if prof is not None:
                prof.disable()
                prof.dump_stats(str(args.profile))
            print(
                f"scheduled run of {steps} no-op steps ({fired.status}): {walls[-1]:.2f} s wall "
                f"({walls[-1] / steps * 1000:.1f} ms/step), {cpus[-1]:.2f} CPU s "
                f"({cpus[-1] / steps * 1000:.1f} ms/step)"
            )
        best_w, best_c = min(walls), min(cpus)
        print(
            f"best of {args.runs}: {best_w / steps * 1000:.1f} ms/step wall, "
            f"{best_c / steps * 1000:.1f} ms/step CPU"
        )


if __name__ == "__main__":
    main()
