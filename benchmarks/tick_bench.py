"""Tick-to-start of a real ``lockgate serve``: a schedule ``* * * * *`` on the system clock;
for each fired tick, the time from the minute boundary to the run's start (its record's
``started_at``, written after the plan, under the project lock).

    .venv/bin/python benchmarks/tick_bench.py --ticks 2 [--poll 1.0]

Waits for real minute boundaries (about a minute per tick)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import yaml

from lockgate.project import load_project
from lockgate.state import StateStore

REPO = Path(__file__).resolve().parents[1]


def project(root: Path) -> Path:
    (root / "datasets").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x\n1\n2\n")
    ds = [
        {"name": "src", "source": {"type": "file", "path": "data/a.csv"}},
        {"name": "d", "transform": {"sql": "select x from src"}},
    ]
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": ds}))
    cfg = {"name": "tick", "schedules": [{"name": "m", "cron": "* * * * *"}]}
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=2)
    ap.add_argument("--poll", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp) / "p")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "lockgate", "serve", "--port", "0", "--poll", str(args.poll)]
        proc = subprocess.Popen(
            [*cmd, "--project", str(root)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            print(proc.stdout.readline().strip())
            p = load_project(root)
            state = StateStore.open(p.state_url)
            seen: set[str] = set()
            lags: list[float] = []
            deadline = time.time() + 70 * (args.ticks + 1)
            while len(lags) < args.ticks and time.time() < deadline:
                time.sleep(0.5)
                for r in state.list_runs(p.config.name, limit=10):
                    if r.run_id in seen:
                        continue
                    seen.add(r.run_id)
                    started = r.started_at.replace(tzinfo=r.started_at.tzinfo or UTC)
                    tick = started.replace(second=0, microsecond=0)
                    lags.append((started - tick).total_seconds())
                    print(f"tick {tick:%H:%M}: run started {lags[-1] * 1000:.0f} ms after it")
            state.close()
        finally:
            proc.terminate()
            proc.wait(30)
        if lags:
            print(f"tick-to-start over {len(lags)} tick(s): max {max(lags) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
