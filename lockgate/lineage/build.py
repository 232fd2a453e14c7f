"""Build the project's column lineage graph.

Datasets are visited in DAG order so each SQL transform is analysed with the columns of
its inputs known: a source's declared columns (or its published Delta schema), the
columns an upstream SQL transform produces, a Python transform's declared or published
columns. Python transforms contribute the lineage they declare with
``@transform(lineage={...})``; one that declares none is *opaque* (its dataset edges are
known from the DAG, its column edges are not guessed). Sources are leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lockgate.lineage.model import (
    ColumnRef,
    DatasetLineage,
    Edge,
    Kind,
    LineageGraph,
    Subtype,
)
from lockgate.lineage.sql import OUTPUT, analyse_sql
from lockgate.project import Project
from lockgate.project.models import DatasetSpec
from lockgate.quality.checks import CheckSpec

log = logging.getLogger(__name__)


def build_lineage(
    project: Project, *, published: Mapping[str, Sequence[str]] | None = None
) -> LineageGraph:
    """The column lineage of every dataset of ``project``.

    ``published`` gives the columns of tables already in the warehouse (see
    :func:`lockgate.lineage.warehouse.published_columns`); it fills in schemas that
    neither a declaration nor the SQL gives.
    """
    published = published or {}
    graph = LineageGraph()
    canonical = {n.lower(): n for n in project.datasets}
    for name, spec in project.datasets.items():
        known = {n: d.columns for n, d in graph.datasets.items() if d.columns}
        fallback = _declared(spec) or tuple(published.get(name, ()))
        if spec.kind == "source":
            info = DatasetLineage(name, "source", "leaf", fallback, ())
            edges: list[Edge] = []
        elif spec.kind == "sql":
            info, edges = _sql_dataset(project, name, known, fallback, canonical)
        else:
            info, edges = _python_dataset(project, name, fallback, canonical)
        info = DatasetLineage(
            info.name,
            info.kind,
            info.status,
            info.columns,
            tuple(project.deps.get(name, ())),
            _check_columns(spec.checks),
            info.note,
        )
        graph.datasets[name] = info
        graph.add_all(_spelled(graph, e) for e in edges)
    return graph


def _declared(spec: DatasetSpec) -> tuple[str, ...]:
    if spec.columns:
        return tuple(spec.columns)
    src_cols = getattr(spec.source, "columns", None) if spec.source is not None else None
    return tuple(src_cols or ())


def _sql_dataset(
    project: Project,
    name: str,
    known: Mapping[str, Sequence[str]],
    fallback: tuple[str, ...],
    canonical: Mapping[str, str],
) -> tuple[DatasetLineage, list[Edge]]:
    result = analyse_sql(project.sql_text(name), known)
    if result.error is not None:
        log.debug("no column lineage for %s: %s", name, result.error)
        return DatasetLineage(name, "sql", "unknown", fallback, (), note=result.error), []
    if result.star_unresolved:
        note = "SELECT * over an input whose columns are not known yet (run it once)"
        return DatasetLineage(name, "sql", "unknown", fallback, (), note=note), []
    edges = [
        Edge(
            ColumnRef(canonical.get(e.source.dataset.lower(), e.source.dataset), e.source.column),
            ColumnRef(name, e.target.column),
            e.kind,
            e.subtype,
            e.transformation,
        )
        for e in result.edges
        if e.target.dataset == OUTPUT
    ]
    spelled = list(fallback)
    for e in edges:  # ``SELECT orderid`` names its output as the input spells it: OrderID
        if e.target.column in result.bare and e.subtype is Subtype.IDENTITY:
            real = known.get(e.source.dataset, ())
            spelled += [c for c in real if c.lower() == e.source.column.lower()]
    columns = _respell(result.columns, spelled)
    return DatasetLineage(name, "sql", "sql", columns, ()), edges


def _respell(columns: Iterable[str], spelled: Sequence[str]) -> tuple[str, ...]:
    real = {c.lower(): c for c in spelled}
    return tuple(real.get(c.lower(), c) for c in columns)


def _python_dataset(
    project: Project, name: str, fallback: tuple[str, ...], canonical: Mapping[str, str]
) -> tuple[DatasetLineage, list[Edge]]:
    tf = project.python_transform(name)
    if tf.lineage is None:
        note = f"Python transform '{tf.name}' declares no column lineage (@transform(lineage=...))"
        return DatasetLineage(name, "python", "opaque", fallback, (), note=note), []
    edges: list[Edge] = []
    for column, refs in tf.lineage.items():
        for ref in refs:
            dataset, _, col = ref.partition(".")
            source = ColumnRef(canonical.get(dataset.lower(), dataset), col)
            what = f"declared by @transform {tf.name}"
            edges.append(
                Edge(source, ColumnRef(name, column), Kind.DIRECT, Subtype.TRANSFORMATION, what)
            )
    columns = fallback or tuple(tf.lineage)
    return DatasetLineage(name, "python", "declared", columns, ()), edges


def _spelled(graph: LineageGraph, edge: Edge) -> Edge:
    """The edge with both columns spelled as their datasets spell them."""
    source = graph.column(edge.source.dataset, edge.source.column)
    target = graph.column(edge.target.dataset, edge.target.column)
    what = edge.transformation or str(source)
    return Edge(source, target, edge.kind, edge.subtype, what)


def _check_columns(checks: Sequence[CheckSpec]) -> dict[str, tuple[str, ...]]:
    """Check name → the columns it reads (its fields plus those its SQL conditions name)."""
    out: dict[str, tuple[str, ...]] = {}
    for check in checks:
        cols = list(check.referenced_columns())
        for attr in ("where", "expr"):
            text = getattr(check, attr, None)
            if isinstance(text, str):
                cols.extend(_condition_columns(text))
        out[check.check_name] = tuple(dict.fromkeys(cols))
    return out


def _condition_columns(text: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except SqlglotError:
        return []
    return [c.name for c in tree.find_all(exp.Column)]
