# ruff: noqa: E501  (one printed line per measurement)
"""Partitioned datasets and backfills: planning 5 years of hourly intervals (pure interval
arithmetic, then ``plan_backfill`` against the state store with fragmented done ranges), and
backfill throughput of a small daily project (chunks as runs, 1 vs 2 in flight).

    .venv/bin/python benchmarks/partition_bench.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockgate.ops import intervals as iv
from lockgate.ops.backfill import plan_backfill, run_backfill
from lockgate.project import load_project
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from lockgate.state.intervals import add_done, done_ranges

START, END = datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)


def best(f: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def pure() -> None:
    lo, hi = iv.epoch(START), iv.epoch(END)
    todo = iv.missing(lo, hi, "hour", [])
    n = len(todo)
    print(
        f"missing(): {n:,} hourly intervals, nothing done: {best(lambda: iv.missing(lo, hi, 'hour', [])) * 1000:.1f} ms"
    )
    holes = [t for i, t in enumerate(todo) if i % 10]  # every 10th hour missing
    done = iv.merge(holes)
    print(f"  done ranges after 90% of hours: {len(done):,} rows (not {len(holes):,})")
    print(
        f"missing() with {len(done):,} done ranges: {best(lambda: iv.missing(lo, hi, 'hour', done)) * 1000:.1f} ms"
    )
    print(f"merge() of {n:,} intervals into ranges: {best(lambda: iv.merge(todo)) * 1000:.1f} ms")
    print(f"chunks(24): {best(lambda: iv.chunks(todo, 24)) * 1000:.1f} ms")


def project(root: Path, grain: str, start: str, days: int) -> Path:
    (root / "datasets").mkdir(parents=True)
    (root / "data").mkdir()
    rows = "".join(f"{d},2024-01-{d:02d} 10:00:00,{d}\n" for d in range(1, days + 1))
    (root / "data" / "e.csv").write_text("id,ts,amount\n" + rows)
    ds = [
        {
            "name": "events",
            "source": {"type": "file", "path": "data/e.csv"},
            "columns": {"id": "BIGINT", "ts": "TIMESTAMP", "amount": "BIGINT"},
            "write": {"mode": "overwrite"},
        },
        {
            "name": "agg",
            "transform": {"sql": "SELECT id, ts, amount FROM events"},
            "partition": {"column": "ts", "grain": grain, "start": start},
            "checks": [{"type": "not_null", "column": "amount"}],
        },
    ]
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": ds}))
    (root / "lockgate.yaml").write_text(yaml.safe_dump({"name": "bench"}))
    return root


def planning(tmp: Path) -> None:
    root = project(tmp / "hourly", "hour", START.date().isoformat(), 3)
    p = load_project(root)
    run(p, select=["events"], max_workers=1)
    state = StateStore.open(p.state_url)
    todo = iv.missing(iv.epoch(START), iv.epoch(END), "hour", [])
    t0 = time.perf_counter()
    add_done(state, "bench", "agg", [t for i, t in enumerate(todo) if i % 10])
    print(
        f"add_done() of {len(todo) * 9 // 10:,} intervals (one transaction): {(time.perf_counter() - t0) * 1000:.0f} ms -> {len(done_ranges(state, 'bench', 'agg')):,} rows"
    )
    state.close()
    for _ in range(2):
        bp = plan_backfill(p, "agg", end=END.isoformat(), chunk=24, now=END)
        print(
            f"plan_backfill(): 5 years hourly, {len(done_ranges_of(p)):,} done ranges -> {bp.intervals:,} missing in {len(bp.chunks):,} chunks: {bp.planning_s * 1000:.0f} ms"
        )
    state = StateStore.open(p.state_url)
    from lockgate.state.intervals import clear_done

    clear_done(state, "bench", "agg")
    state.close()
    bp = plan_backfill(p, "agg", end=END.isoformat(), chunk=24, now=END)
    print(
        f"plan_backfill(): 5 years hourly, nothing done -> {bp.intervals:,} missing in {len(bp.chunks):,} chunks: {bp.planning_s * 1000:.0f} ms"
    )


def dry_run_planning(tmp: Path) -> None:
    """``plan()`` (what ``lockgate run --dry-run`` and every scheduled run do) of a published
    hourly dataset with 5 years of fragmented done ranges: all under the current definition,
    then half of them under an older one (on_change: restate makes those due again)."""
    from lockgate.runloop.plan import plan
    from lockgate.runloop.stages.resolve import content_hash
    from lockgate.state.intervals import clear_done

    root = project(tmp / "hourly_plan", "hour", START.date().isoformat(), 3)
    p = load_project(root)
    run(p, select=["events"], max_workers=1)
    first = plan_backfill(p, "agg", end=(START.replace(hour=1)).isoformat(), now=END)
    assert run_backfill(p, first, now=END).ok  # the table exists: plan() looks at intervals
    current = content_hash(p, p.datasets["agg"])
    todo = iv.missing(iv.epoch(START), iv.epoch(END), "hour", [])
    holes = [t for i, t in enumerate(todo) if i % 10]
    state = StateStore.open(p.state_url)
    clear_done(state, "bench", "agg")
    add_done(state, "bench", "agg", holes, current)
    state.close()
    for label in ("all under the current definition", "older definition for the first half"):
        if label.startswith("older"):
            state = StateStore.open(p.state_url)
            clear_done(state, "bench", "agg")
            half = len(holes) // 2
            add_done(state, "bench", "agg", holes[:half], "0ld0ld0ld0ld0ld0")
            add_done(state, "bench", "agg", holes[half:], current)
            state.close()
        c0, t0 = time.process_time(), time.perf_counter()
        step = plan(p, select=["agg"], now=END).step("agg")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"plan() 5 years hourly, {len(iv.merge(holes)):,} done ranges ({label}): "
            f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU -> {step.reason[:110]}"
        )
    bp = plan_backfill(
        p, "agg", start=START.isoformat(), end=END.isoformat(), chunk=24, now=END, restate=True
    )
    print(
        f"plan_backfill(restate=True) 5 years hourly: {bp.restated['agg']:,} done intervals "
        f"restated, {bp.intervals:,} to run in {len(bp.chunks):,} chunks: {bp.planning_s * 1000:.0f} ms"
    )


def done_ranges_of(p: object) -> list[tuple[int, int]]:
    state = StateStore.open(p.state_url)  # type: ignore[attr-defined]
    try:
        return done_ranges(state, "bench", "agg")
    finally:
        state.close()


def throughput(tmp: Path, days: int, chunk: int, active: int) -> None:
    root = project(tmp / f"daily_{chunk}_{active}", "day", "2024-01-01", days)
    p = load_project(root)
    now = datetime(2024, 1, days + 1, tzinfo=UTC)
    run(p, select=["events"], now=now, max_workers=1)
    bp = plan_backfill(p, "agg", chunk=chunk, now=now)
    t0 = time.perf_counter()
    res = run_backfill(p, bp, max_active=active, now=now)
    s = time.perf_counter() - t0
    bad = [(s.dataset, s.status, s.reason) for r in res.runs for s in r.steps if not s.ok]
    assert res.ok, bad
    print(
        f"backfill {bp.intervals} days, chunk {chunk}, max-active {active}: {s:.2f} s ({len(bp.chunks)} runs, {s / len(bp.chunks) * 1000:.0f} ms/run, {s / bp.intervals * 1000:.0f} ms/interval)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=28)
    args = ap.parse_args()
    pure()
    with tempfile.TemporaryDirectory() as t:
        planning(Path(t))
        dry_run_planning(Path(t))
        if args.days <= 0:
            return
        for chunk, active in ((1, 1), (4, 1), (4, 2)):
            throughput(Path(t), args.days, chunk, active)


if __name__ == "__main__":
    main()
