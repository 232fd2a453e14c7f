#!/usr/bin/env python3
"""Cold run of the example with steps one at a time vs at once, and the unchanged re-run.

    .venv/bin/python benchmarks/parallel_run.py [--repeat 3]

Uses examples/shop with the `make demo` data (generated first if missing). Each cold run
starts from nothing (warehouse/ and .lockgate/ deleted); the two settings alternate so a
change in machine load hits both. Times are whole-process wall times of `lockgate run`
(interpreter start-up included) and the run's own duration from `--json`. Prints one JSON
line with every sample and the medians. Nothing is asserted: numbers go in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOP = REPO / "examples" / "shop"


#: as a user's machine runs it: bytecode cached (a sandbox may set PYTHONDONTWRITEBYTECODE,
#: which makes every start compile lockgate's ~170 modules again: +0.2-0.4 s)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def lockgate_run(*extra: str) -> tuple[float, float]:
    """(process wall seconds, the run's own duration_s)."""
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "lockgate", "run", "--json", *extra],
        cwd=SHOP,
        capture_output=True,
        text=True,
        env=ENV,
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"lockgate run {' '.join(extra)} failed")
    return wall, float(json.loads(p.stdout)["duration_s"])


def cold(workers: str) -> tuple[float, float]:
    for d in ("warehouse", ".lockgate"):
        shutil.rmtree(SHOP / d, ignore_errors=True)
    return lockgate_run("--max-workers", workers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not (SHOP / "data" / "_manifest.json").exists():
        subprocess.run([sys.executable, "generate.py", "--orders", "20000"], cwd=SHOP, check=True)
    load = os.getloadavg()[0]
    default = str(os.cpu_count() or 1)
    samples: dict[str, list[tuple[float, float]]] = {"1": [], default: []}
    for _ in range(args.repeat):
        for w in samples:
            samples[w].append(cold(w))
    lockgate_run()  # bytecode written, dialect cache filled (what any second run finds)
    rerun = [lockgate_run() for _ in range(args.repeat)]  # unchanged: every step a no-op

    def med(xs: list[tuple[float, float]]) -> dict[str, float]:
        return {
            "wall_s": round(statistics.median(x[0] for x in xs), 2),
            "run_s": round(statistics.median(x[1] for x in xs), 2),
        }

    out = {
        "cpus": os.cpu_count(),
        "load_before": load,
        "cold": {f"max_workers={w}": med(xs) for w, xs in samples.items()},
        "rerun": med(rerun),
        "samples": {
            **{f"cold_{w}": xs for w, xs in samples.items()},
            "rerun": rerun,
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
