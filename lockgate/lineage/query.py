"""Questions asked of a lineage graph: the upstream/downstream tree of a column or dataset
(what ``lockgate lineage`` prints) and impact analysis (everything that depends on it).

A tree is plain data, the JSON the CLI prints with ``--json``::

    {"node": "orders.amount",
     "upstream": [{"node": "raw_orders.amount", "kind": "DIRECT", "subtype": "IDENTITY",
                   "transformation": "raw_orders.amount", "upstream": [...]}],
     "downstream": [...]}

A node reached a second time in the same tree is not expanded again (``"repeated": true``);
the DAG has no cycles, so every walk ends.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lockgate._suggest import did_you_mean
from lockgate.errors import ConfigError, Problem
from lockgate.lineage.model import ColumnRef, Edge, LineageGraph

Direction = Literal["upstream", "downstream"]
Tree = dict[str, object]


def resolve(graph: LineageGraph, target: str) -> str | ColumnRef:
    """``dataset`` or ``dataset.column`` → the dataset name or the column ref
    (ConfigError with a did-you-mean when either is unknown)."""
    dataset, dot, column = target.partition(".")
    canonical = {n.lower(): n for n in graph.datasets}
    name = canonical.get(dataset.lower())
    if name is None:
        raise ConfigError(
            [Problem(f"unknown dataset '{dataset}'", hint=did_you_mean(dataset, graph.datasets))]
        )
    if not dot:
        return name
    ref = graph.column(name, column)
    info = graph.datasets[name]
    if info.columns and ref.column not in info.columns:
        raise ConfigError(
            [
                Problem(
                    f"dataset '{name}' has no column '{column}'",
                    hint=did_you_mean(column, info.columns),
                )
            ]
        )
    return ref


def column_tree(
    graph: LineageGraph, ref: ColumnRef, directions: tuple[Direction, ...], depth: int | None
) -> Tree:
    tree: Tree = {"node": str(ref)}
    note = _note(graph, ref.dataset)
    if note:
        tree["note"] = note
    for direction in directions:
        edges: Callable[[ColumnRef], list[Edge]] = (
            graph.upstream_edges if direction == "upstream" else graph.downstream_edges
        )
        tree[direction] = _walk(graph, ref, edges, direction, depth, {ref})
    return tree


def _note(graph: LineageGraph, dataset: str) -> str:
    info = graph.datasets.get(dataset)
    return info.note if info is not None and info.status in ("opaque", "unknown") else ""


def _walk(
    graph: LineageGraph,
    ref: ColumnRef,
    edges: Callable[[ColumnRef], list[Edge]],
    direction: Direction,
    depth: int | None,
    seen: set[ColumnRef],
) -> list[Tree]:
    if depth is not None and depth <= 0:
        return []
    out: list[Tree] = []
    for e in sorted(edges(ref), key=lambda e: (e.kind, str(e.source), str(e.target))):
        other = e.source if direction == "upstream" else e.target
        child: Tree = {
            "node": str(other),
            "kind": e.kind.value,
            "subtype": e.subtype.value,
            "transformation": e.transformation,
        }
        note = _note(graph, other.dataset)
        if note:
            child["note"] = note
        if other in seen:
            child["repeated"] = True
            child[direction] = []
        else:
            seen.add(other)
            nxt = None if depth is None else depth - 1
            child[direction] = _walk(graph, other, edges, direction, nxt, seen)
        out.append(child)
    return out


def dataset_tree(
    graph: LineageGraph, name: str, directions: tuple[Direction, ...], depth: int | None
) -> Tree:
    """The dataset DAG around ``name`` (kind ``DATASET``), with each dataset's status."""
    tree: Tree = {"node": name, "status": graph.datasets[name].status}

    def walk(n: str, direction: Direction, d: int | None, seen: set[str]) -> list[Tree]:
        if d is not None and d <= 0:
            return []
        nexts = (
            graph.datasets[n].upstream if direction == "upstream" else graph.dataset_downstream(n)
        )
        out: list[Tree] = []
        for m in nexts:
            child: Tree = {"node": m, "kind": "DATASET", "status": graph.datasets[m].status}
            if m in seen:
                child["repeated"] = True
                child[direction] = []
            else:
                seen.add(m)
                child[direction] = walk(m, direction, None if d is None else d - 1, seen)
            out.append(child)
        return out

    for direction in directions:
        tree[direction] = walk(name, direction, depth, {name})
    return tree


@dataclass
class Impact:
    """Everything downstream of a column or dataset."""

    target: str
    datasets: list[str] = field(default_factory=list)
    columns: list[dict[str, str]] = field(default_factory=list)  # node, kind, subtype, via
    checks: list[dict[str, str]] = field(default_factory=list)  # dataset, check, column
    #: datasets that read an impacted dataset through a transform without column lineage:
    #: they may depend on it (never guessed either way)
    opaque: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def impact(graph: LineageGraph, target: str | ColumnRef, depth: int | None = None) -> Impact:
    """Datasets, columns and checks that depend on ``target`` (transitively, or ``depth``
    hops), in breadth-first order. Checks on the target itself are included."""
    if isinstance(target, str):
        info = graph.datasets[target]
        starts = [ColumnRef(target, c) for c in info.columns]
        result = Impact(target)
        down = _dataset_closure(graph, target, depth)
        result.datasets = down
        for ds in down:
            for check, cols in graph.datasets[ds].checks.items():
                result.checks.append({"dataset": ds, "check": check, "column": ",".join(cols)})
        _column_impact(graph, starts, depth, result, dataset_mode=True)
        return result
    result = Impact(str(target))
    _add_checks(graph, target, result)
    _column_impact(graph, [target], depth, result, dataset_mode=False)
    reached = {target.dataset, *result.datasets}
    for name in reached:
        for m in graph.dataset_downstream(name):
            if graph.datasets[m].status in ("opaque", "unknown") and m not in result.opaque:
                result.opaque.append(m)
    return result


def _dataset_closure(graph: LineageGraph, name: str, depth: int | None) -> list[str]:
    out: list[str] = []
    queue: deque[tuple[str, int]] = deque([(name, 0)])
    seen = {name}
    while queue:
        n, d = queue.popleft()
        if depth is not None and d >= depth:
            continue
        for m in graph.dataset_downstream(n):
            if m not in seen:
                seen.add(m)
                out.append(m)
                queue.append((m, d + 1))
    return out


def _column_impact(
    graph: LineageGraph, starts: list[ColumnRef], depth: int | None, out: Impact, dataset_mode: bool
) -> None:
    """Columns downstream of ``starts``; in dataset mode the datasets and their checks are
    already listed (from the DAG)."""
    seen = set(starts)
    queue: deque[tuple[ColumnRef, int]] = deque((s, 0) for s in starts)
    while queue:
        ref, d = queue.popleft()
        if depth is not None and d >= depth:
            continue
        for e in graph.downstream_edges(ref):
            if e.target in seen:
                continue
            seen.add(e.target)
            out.columns.append(
                {
                    "node": str(e.target),
                    "kind": e.kind.value,
                    "subtype": e.subtype.value,
                    "via": str(e.source),
                }
            )
            if not dataset_mode:
                if e.target.dataset not in out.datasets:
                    out.datasets.append(e.target.dataset)
                _add_checks(graph, e.target, out)
            queue.append((e.target, d + 1))


def _add_checks(graph: LineageGraph, ref: ColumnRef, out: Impact) -> None:
    for check in graph.checks_on(ref):
        entry = {"dataset": ref.dataset, "check": check, "column": ref.column}
        if entry not in out.checks:
            out.checks.append(entry)
