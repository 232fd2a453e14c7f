"""Lineage benchmarks (issue #11): column lineage of a generated 500-dataset DAG, the cost of
one OpenLineage event, and ``why`` on the example project.

    .venv/bin/python benchmarks/lineage_bench.py dag [--datasets 500] [--dir /tmp/lg_dag]
    .venv/bin/python benchmarks/lineage_bench.py emit [--events 2000]
    .venv/bin/python benchmarks/lineage_bench.py why --project /path/to/ran/shop DATASET [CHECK]

Numbers go to ``benchmarks/RESULTS.md`` ("Lineage (#11)").
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

SOURCES = 20
COLUMNS = ("id", "k", "a", "b", "c", "d", "e", "ts")


def write_dag(root: Path, n: int, seed: int = 11) -> None:
    """``SOURCES`` CSV sources, then SQL transforms each reading 1-3 earlier datasets with a
    mix of CTEs, joins on a key, aggregates, windows, filters and SELECT *."""
    rnd = random.Random(seed)
    datasets: list[dict[str, Any]] = []
    cols = {c: "DOUBLE" for c in COLUMNS}
    for i in range(SOURCES):
        datasets.append(
            {"name": f"s{i}", "source": {"type": "file", "path": f"data/s{i}.csv", "columns": cols}}
        )
    for i in range(SOURCES, n):
        ups = rnd.sample([d["name"] for d in datasets], k=min(len(datasets), rnd.randint(1, 3)))
        datasets.append({"name": f"t{i}", "transform": {"sql": _sql(rnd, ups)}})
    (root / "datasets").mkdir(parents=True, exist_ok=True)
    (root / "lockgate.yaml").write_text(yaml.safe_dump({"name": "dag"}))
    (root / "datasets" / "main.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    (root / "data").mkdir(exist_ok=True)


def _sql(rnd: random.Random, ups: list[str]) -> str:
    first = ups[0]
    shape = rnd.choice(["project", "cte", "agg", "window", "join", "star"])
    cols = ", ".join(f"{c}" for c in COLUMNS)
    if shape == "project":
        return (
            "select id, k, a + b as a, b * 2 as b, c, d, coalesce(e, 0) as e, ts "
            f"from {first} where c > 0"
        )
    if shape == "cte":
        return (
            f"with x as (select * from {first} where d is not null), "
            f"y as (select id, k, a, b, c, d, e, ts from x) select {cols} from y order by ts"
        )
    if shape == "agg":
        return (
            f"select min(id) as id, k, sum(a) as a, avg(b) as b, max(c) as c, count(*) as d, "
            f"min(e) as e, max(ts) as ts from {first} group by k"
        )
    if shape == "window":
        return (
            f"select id, k, sum(a) over (partition by k order by ts) as a, b, c, d, e, ts "
            f"from {first}"
        )
    if shape == "join" and len(ups) > 1:
        return (
            f"select l.id, l.k, l.a, r.b, l.c, r.d, l.e, l.ts from {ups[0]} l "
            f"join {ups[1]} r using (id)"
        )
    return f"select * from {first}"


def bench_dag(n: int, directory: Path | None) -> None:
    from lockgate.lineage import build_lineage, lineage_report
    from lockgate.project import load_project

    root = directory or Path(tempfile.mkdtemp(prefix="lg_dag_"))
    write_dag(root, n)
    t0 = time.perf_counter()
    project = load_project(root)
    t1, c1 = time.perf_counter(), time.process_time()
    graph = build_lineage(project)
    t2, c2 = time.perf_counter(), time.process_time()
    last = list(project.datasets)[-1]
    lineage_report(project, f"{last}.a", direction="upstream", graph=graph)
    lineage_report(project, "s0.a", direction="downstream", graph=graph)
    t3 = time.perf_counter()
    edges = sum(1 for _ in graph.edges)
    unknown = sum(1 for d in graph.datasets.values() if d.status == "unknown")
    print(
        f"datasets={len(project.datasets)} edges={edges} unknown={unknown} "
        f"load_project={t1 - t0:.2f}s build_lineage={t2 - t1:.2f}s wall ({c2 - c1:.2f}s CPU) "
        f"two_reports={t3 - t2:.3f}s ({root})"
    )


def bench_emit(events: int) -> None:
    """Per-event cost of the listener to the file transport (the project is tiny; the cost
    is building the facets, serialising and appending one line)."""
    from lockgate.lineage.openlineage import OpenLineageListener, make_transport
    from lockgate.project import load_project
    from lockgate.project.models import OpenLineageConfig
    from lockgate.runloop.events import RunStarted, StepFinished, StepStarted
    from lockgate.runloop.results import StepResult, StepStatus

    root = Path(tempfile.mkdtemp(prefix="lg_emit_"))
    write_dag(root, SOURCES + 5)
    project = load_project(root)
    cfg = OpenLineageConfig.model_validate({"transport": {"type": "file", "path": "ol.ndjson"}})
    listener = OpenLineageListener(project, make_transport(cfg, root))
    run_id = "0" * 31 + "1"
    listener(RunStarted(run_id=run_id, project="dag", datasets=list(project.datasets)))
    name = list(project.datasets)[-1]
    result = StepResult(
        dataset=name,
        status=StepStatus.SUCCESS,
        rows_in=10,
        rows_out=10,
        output_version=None,
        columns={c: "DOUBLE" for c in COLUMNS},
        inputs={u: 3 for u in project.deps[name]},
        checks=[{"name": "a_not_null", "type": "not_null", "passed": True, "failing_rows": 0}],
    )
    times: list[float] = []
    cpu0 = time.process_time()
    for i in range(events):
        e = (
            StepStarted(run_id=run_id, dataset=name)
            if i % 2 == 0
            else StepFinished(run_id=run_id, dataset=name, status="success", result=result)
        )
        t = time.perf_counter()
        listener(e)
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / events
    times.sort()
    print(
        f"events={events} median={statistics.median(times) * 1e3:.3f}ms "
        f"cpu/event={cpu * 1e3:.3f}ms "
        f"p95={times[int(len(times) * 0.95)] * 1e3:.3f}ms errors={listener.errors}"
    )


def bench_why(project_dir: Path, dataset: str, check: str | None) -> None:
    from lockgate.lineage.why import why
    from lockgate.project import load_project

    project = load_project(project_dir)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        report = why(project, dataset, check)
        times.append(time.perf_counter() - t)
    print(
        f"why {dataset}.{report.check}: candidates={len(report.candidates)} "
        f"median={statistics.median(times):.3f}s min={min(times):.3f}s"
    )


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dag")
    d.add_argument("--datasets", type=int, default=500)
    d.add_argument("--dir", type=Path)
    e = sub.add_parser("emit")
    e.add_argument("--events", type=int, default=2000)
    w = sub.add_parser("why")
    w.add_argument("--project", type=Path, required=True)
    w.add_argument("dataset")
    w.add_argument("check", nargs="?")
    a = ap.parse_args(argv)
    if a.cmd == "dag":
        bench_dag(a.datasets, a.dir)
    elif a.cmd == "emit":
        bench_emit(a.events)
    else:
        bench_why(a.project, a.dataset, a.check)


if __name__ == "__main__":
    main(sys.argv[1:])
