"""Lineage: dataset and column lineage, impact analysis, OpenLineage events, root cause.

>>> from lockgate.lineage import ColumnRef
>>> str(ColumnRef("orders", "amount"))
'orders.amount'
"""

from __future__ import annotations

from typing import Literal

from lockgate.lineage.build import build_lineage
from lockgate.lineage.model import ColumnRef, DatasetLineage, Edge, Kind, LineageGraph, Subtype
from lockgate.lineage.query import Impact, Tree, column_tree, dataset_tree, impact, resolve
from lockgate.project import Project


def project_lineage(project: Project, *, warehouse: bool = True) -> LineageGraph:
    """The project's lineage graph; with ``warehouse``, published table schemas fill in
    columns the project does not declare."""
    published = None
    if warehouse:
        from lockgate.lineage.warehouse import published_columns

        published = published_columns(project)
    return build_lineage(project, published=published)


def lineage_report(
    project: Project,
    target: str,
    *,
    direction: Literal["upstream", "downstream", "both"] = "both",
    depth: int | None = None,
    graph: LineageGraph | None = None,
) -> Tree:
    """What ``lockgate lineage TARGET`` shows: the tree of ``dataset`` or ``dataset.column``
    (``{"node", "upstream", "downstream"}``), plus ``"impact"`` (datasets, columns and
    checks that depend on it) when looking downstream."""
    graph = graph or project_lineage(project)
    ref = resolve(graph, target)
    dirs: tuple[Literal["upstream", "downstream"], ...] = (
        ("upstream", "downstream") if direction == "both" else (direction,)
    )
    if isinstance(ref, str):
        tree = dataset_tree(graph, ref, dirs, depth)
    else:
        tree = column_tree(graph, ref, dirs, depth)
    if "downstream" in dirs:
        tree["impact"] = impact(graph, ref, depth).to_dict()
    return tree


__all__ = [
    "ColumnRef",
    "DatasetLineage",
    "Edge",
    "Impact",
    "Kind",
    "LineageGraph",
    "Subtype",
    "build_lineage",
    "impact",
    "lineage_report",
    "project_lineage",
]
