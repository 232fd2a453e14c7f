#!/usr/bin/env python3
"""Measure the example pipeline: first run, no-op re-run, and peak RSS, at a given size.

    .venv/bin/python benchmarks/example_run.py --orders 20000000

Copies examples/shop into a scratch folder (benchmarks/data/shop_<N>), generates the data,
then runs `lockgate run` twice under /usr/bin/time -v (whole-process wall time and peak RSS,
children included) and prints one JSON line. Nothing is asserted: numbers go in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> dict[str, float | int]:
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
        raise SystemExit(f"command failed: {cmd}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) // 1024 if m else -1
    return {"wall_s": round(wall, 2), "peak_rss_mb": rss, "exit": p.returncode}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the scratch project")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 1GB")
    args = ap.parse_args()
    dst = REPO / "benchmarks" / "data" / f"shop_{args.orders}"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(
        REPO / "examples" / "shop",
        dst,
        ignore=shutil.ignore_patterns("data", "warehouse", ".lockgate"),
    )
    if args.memory_limit:
        cfg = dst / "lockgate.yaml"
        cfg.write_text(cfg.read_text() + f"memory_limit: {args.memory_limit}\n")
    gen = timed([sys.executable, "generate.py", "--orders", str(args.orders)], dst)
    lg = [sys.executable, "-m", "lockgate", "run"]
    first = timed(lg, dst)
    second = timed(lg, dst)
    out = {
        "orders": args.orders,
        "memory_limit": args.memory_limit,
        "generate": gen,
        "first_run": first,
        "noop_rerun": second,
    }
    print(json.dumps(out))
    if not args.keep:
        shutil.rmtree(dst, ignore_errors=True)


if __name__ == "__main__":
    main()
