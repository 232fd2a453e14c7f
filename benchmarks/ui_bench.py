"""Dashboard page latency over a long history (issue #12: p95 < 150 ms per page with 10k runs
and 1M check results in the state store).

Copies the shop example to a temporary folder, runs it once for real (warehouse, quarantine,
schema versions), then bulk-writes a synthetic history into its state store through the
store's table definitions (``lockgate.state.tables``): ``--runs`` runs, one step per dataset
each, check results spread so there are ``--checks`` in all, and quality scores per run.
Then it requests every page ``--repeat`` times through the app's TestClient (in process: no
network) and prints p50/p95 per page.

    .venv/bin/python benchmarks/ui_bench.py                  # 10k runs, 1M check results
    .venv/bin/python benchmarks/ui_bench.py --runs 500 --checks 50000   # quick
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
SHOP = REPO / "examples" / "shop"
DIMENSIONS = ("completeness", "validity", "uniqueness")


def real_project(where: Path) -> Path:
    root = where / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns("data", "warehouse", ".lockgate"))
    subprocess.run(
        [sys.executable, "generate.py", "--orders", "3000"],
        cwd=root,
        check=True,
        capture_output=True,
    )
    import lockgate

    res = lockgate.run(root)
    print(f"real run {res.run_id[:12]}: {res.status}")
    return root


def _checks_of(state: object, project: str, dataset: str) -> list[dict[str, object]]:
    from lockgate.state import StateStore

    assert isinstance(state, StateStore)
    recs = state.check_history(project, dataset, limit=1)
    return [
        {
            "check_name": c.check_name,
            "check_type": c.check_type,
            "dimension": c.dimension,
            "severity": c.severity,
        }
        for c in recs
    ] or [
        {
            "check_name": "row_count",
            "check_type": "row_count",
            "dimension": "completeness",
            "severity": "error",
        }
    ]


def synthesize(root: Path, runs: int, checks: int, seed: int = 7) -> None:
    """Bulk-insert ``runs`` runs with ``checks`` check results in all."""
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state import tables as t

    rnd = random.Random(seed)
    project = load_project(root)
    name = project.config.name
    datasets = list(project.datasets)
    state = StateStore.open(project.state_url)
    templates = {d: _checks_of(state, name, d) for d in datasets}
    per_step = max(1, checks // (runs * len(datasets)))
    extra = checks - per_step * runs * len(datasets)
    now = datetime.now(UTC)
    with state.engine.begin() as conn:
        seq0 = int(conn.execute(sa.select(sa.func.max(t.runs.c.seq))).scalar_one() or 0)
        step0 = int(conn.execute(sa.select(sa.func.max(t.steps.c.id))).scalar_one() or 0)
    step_id = step0
    written = 0
    batch: dict[str, list[dict[str, object]]] = {
        "runs": [],
        "steps": [],
        "checks": [],
        "scores": [],
    }
    for i in range(runs):
        at = now - timedelta(minutes=15 * (runs - i))
        run_id = f"{seq0 + i + 1:032x}"
        status = "success" if rnd.random() > 0.05 else "partial"
        batch["runs"].append(
            {
                "run_id": run_id,
                "seq": seq0 + i + 1,
                "project": name,
                "status": status,
                "started_at": at,
                "finished_at": at + timedelta(seconds=40),
                "duration_s": 40.0,
                "selection": "*",
                "args": {"full_refresh": False},
                "summary": {
                    "steps": len(datasets),
                    "rows_out": 3000,
                    "rows_quarantined": 12,
                    "rows_skipped": 0,
                },
            }
        )
        for k, ds in enumerate(datasets):
            step_id += 1
            start = at + timedelta(seconds=4 * k)
            batch["steps"].append(
                {
                    "id": step_id,
                    "run_id": run_id,
                    "project": name,
                    "dataset": ds,
                    "status": "success",
                    "started_at": start,
                    "finished_at": start + timedelta(seconds=3),
                    "duration_s": 3.0,
                    "attempts": 1,
                    "rows_in": 1000,
                    "rows_out": 990,
                    "rows_quarantined": 10,
                    "rows_skipped": 0,
                }
            )
            n = per_step + (1 if extra > 0 else 0)
            extra -= 1 if extra > 0 else 0
            tpl = templates[ds]
            for j in range(n):
                c = tpl[j % len(tpl)]
                passed = rnd.random() > 0.1
                batch["checks"].append(
                    {
                        "step_id": step_id,
                        "run_id": run_id,
                        "project": name,
                        "dataset": ds,
                        **c,
                        "check_name": f"{c['check_name']}" + (f"_{j}" if j >= len(tpl) else ""),
                        "failing_rows": 0 if passed else 10,
                        "fraction": 0.0 if passed else 0.01,
                        "passed": passed,
                        "observed": rnd.random(),
                        "seconds": 0.01,
                        "message": None if passed else "10 rows failed",
                    }
                )
            written += n
            for dim in (*DIMENSIONS, "overall"):
                batch["scores"].append(
                    {
                        "run_id": run_id,
                        "project": name,
                        "dataset": ds,
                        "dimension": dim,
                        "score": 0.9 + 0.1 * rnd.random(),
                        "created_at": at,
                    }
                )
        if len(batch["checks"]) > 50_000 or i == runs - 1:
            _flush(state, batch)
    with state.engine.begin() as conn:
        conn.execute(sa.insert(t.run_seq).values(seq=seq0 + runs))
    print(f"synthetic history: {runs} runs, {step_id - step0} steps, {written} check results")
    state.close()


def _flush(state: object, batch: dict[str, list[dict[str, object]]]) -> None:
    from lockgate.state import StateStore
    from lockgate.state import tables as t

    assert isinstance(state, StateStore)
    with state.engine.begin() as conn:
        for key, table in (
            ("runs", t.runs),
            ("steps", t.steps),
            ("checks", t.check_results),
            ("scores", t.quality_scores),
        ):
            if batch[key]:
                conn.execute(sa.insert(table), batch[key])
            batch[key] = []


def measure(root: Path, repeat: int) -> list[tuple[str, float, float, float]]:
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from fastapi.testclient import TestClient

    from lockgate.project import load_project
    from lockgate.ui.app import create_app

    project = load_project(root)
    client = TestClient(create_app(project, auth_required=False))
    t0 = time.perf_counter()
    assert client.get("/").status_code == 200
    print(
        f"first overview (templates compiled, caches cold): "
        f"{1000 * (time.perf_counter() - t0):.0f} ms"
    )
    run_ids = [r["run_id"] for r in client.get("/api/runs", params={"limit": 500}).json()]
    pages = {
        "overview /": lambda i: "/",
        "runs /runs": lambda i: "/runs",
        "runs page 20 /runs?before=": lambda i: f"/runs?before={len(run_ids) - 20 * 50}",
        "run /runs/{id}": lambda i: f"/runs/{run_ids[i % len(run_ids)]}",
        "dataset /datasets/orders": lambda i: "/datasets/orders",
        "quarantine /datasets/orders/quarantine": lambda i: "/datasets/orders/quarantine",
        "lineage /lineage": lambda i: "/lineage",
        "column lineage /lineage?level=column": lambda i: "/lineage?level=column",
        "api /api/runs": lambda i: "/api/runs",
    }
    out = []
    for label, url in pages.items():
        wall, cpu = [], []
        for i in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(url(i))
            wall.append(1000 * (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0))
            assert r.status_code == 200, (url(i), r.status_code)
        out.append((label, statistics.median(wall), _p95(wall), _p95(cpu), max(wall)))
    return out


def _p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(0.95 * len(s)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--checks", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument(
        "--prune",
        type=int,
        metavar="DAYS",
        help="then prune the history to DAYS days (retention), time it, and measure again",
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="build the project here and keep it; if it is already there, only measure",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp)) / "shop"
        if not root.exists():
            real_project(root.parent)
            t0 = time.perf_counter()
            synthesize(root, args.runs, args.checks)
            print(f"written in {time.perf_counter() - t0:.1f} s")
        rows = measure(root, args.repeat)
        _table(rows, args.repeat)
        if args.prune:
            _prune(root, args.prune)
            _table(measure(root, args.repeat), args.repeat)


def _prune(root: Path, days: int) -> None:
    from lockgate.project import load_project
    from lockgate.state import StateStore
    from lockgate.state.retention import prune

    project = load_project(root)
    with StateStore.open(project.state_url) as state:
        t0, c0 = time.perf_counter(), time.process_time()
        res = prune(state, project.config.name, days=days)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"\nprune --days {days}: {res.runs} runs, {res.steps} steps, {res.check_results} check "
        f"results, {res.scores} scores deleted in {wall:.1f} s wall ({cpu:.1f} s CPU)"
    )


def _table(rows: list[tuple[str, float, float, float, float]], repeat: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{repeat} requests per page; load average {load} on {os.cpu_count()} cores")
    print("| page | wall p50 ms | wall p95 ms | CPU p95 ms (process time) | wall max ms |")
    print("|---|---|---|---|---|")
    for label, p50, p95, cpu95, mx in rows:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {cpu95:.1f} | {mx:.1f} |")


if __name__ == "__main__":
    main()
