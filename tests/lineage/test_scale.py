"""A 500-dataset DAG: every dataset's column lineage is found (timing lives in
benchmarks/lineage_bench.py, not here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.lineage_bench import write_dag
from lockgate.lineage import build_lineage, impact, lineage_report
from lockgate.lineage.model import ColumnRef
from lockgate.project import load_project


@pytest.mark.slow
def test_500_dataset_dag(tmp_path: Path) -> None:
    write_dag(tmp_path, 500)
    project = load_project(tmp_path)
    graph = build_lineage(project)
    assert len(graph.datasets) == 500
    assert all(d.status in ("leaf", "sql") for d in graph.datasets.values())
    # every transform's every column traces back to at least one source column
    sources = {n for n, d in graph.datasets.items() if d.status == "leaf"}
    last = list(project.datasets)[-1]
    for column in graph.datasets[last].columns:
        seen, stack = set(), [ColumnRef(last, column)]
        while stack:
            ref = stack.pop()
            for e in graph.upstream_edges(ref):
                if e.source not in seen:
                    seen.add(e.source)
                    stack.append(e.source)
        if column != "d":  # count(*) in an aggregate step has no column source
            assert {r.dataset for r in seen} & sources, column
    # the walks end and agree with each other
    report = lineage_report(project, "s0.a", direction="downstream", graph=graph)
    imp = impact(graph, ColumnRef("s0", "a"))
    assert report["impact"] == imp.to_dict()
    assert set(imp.datasets) <= set(project.downstream("s0", transitive=True))
