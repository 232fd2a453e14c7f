"""The dataset lineage graph, laid out on the server (layers by longest path from the
sources, order in a layer by the barycentre of the parents), cached per DAG hash, and cut to
±``hops`` around a focus so large projects stay readable. Column-level lineage is a TODO
(it needs the column lineage the "lineage" work records)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

NODE_W, NODE_H, GAP_X, GAP_Y = 180, 34, 70, 18

Edges = tuple[tuple[str, str], ...]  # (upstream, downstream)


@dataclass(frozen=True)
class Layout:
    nodes: dict[str, tuple[int, int]]  # name -> (x, y) of the box's top-left
    edges: Edges
    width: int
    height: int
    dag_hash: str


def edges_of(deps: Mapping[str, tuple[str, ...]], names: set[str] | None = None) -> Edges:
    return tuple(
        sorted(
            (up, ds)
            for ds, ups in deps.items()
            for up in ups
            if names is None or (ds in names and up in names)
        )
    )


def neighbourhood(deps: Mapping[str, tuple[str, ...]], focus: str, hops: int) -> set[str]:
    """``focus`` and everything within ``hops`` edges up or down."""
    down: dict[str, set[str]] = {}
    for ds, ups in deps.items():
        for up in ups:
            down.setdefault(up, set()).add(ds)
    seen = {focus}
    frontier = {focus}
    for _ in range(hops):
        nxt: set[str] = set()
        for n in frontier:
            nxt |= set(deps.get(n, ())) | down.get(n, set())
        frontier = nxt - seen
        seen |= frontier
    return seen


def layout(nodes: tuple[str, ...], edges: Edges) -> Layout:
    key = hashlib.sha256(repr((nodes, edges)).encode()).hexdigest()[:16]
    return _layout(key, nodes, edges)


@lru_cache(maxsize=64)
def _layout(key: str, nodes: tuple[str, ...], edges: Edges) -> Layout:
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for up, ds in edges:
        parents[ds].append(up)
    layer: dict[str, int] = {}

    def depth(n: str, stack: frozenset[str] = frozenset()) -> int:
        if n not in layer:
            ups = [p for p in parents[n] if p not in stack]
            layer[n] = 1 + max((depth(p, stack | {n}) for p in ups), default=-1)
        return layer[n]

    for n in nodes:
        depth(n)
    layers: dict[int, list[str]] = {}
    for n in sorted(nodes):
        layers.setdefault(layer[n], []).append(n)
    pos: dict[str, tuple[int, int]] = {}
    for i in sorted(layers):
        members = layers[i]
        if i > 0:  # barycentre of the parents' rows, then name
            members.sort(key=lambda n: (_bary(parents[n], pos), n))
        for j, n in enumerate(members):
            pos[n] = (i * (NODE_W + GAP_X) + 10, j * (NODE_H + GAP_Y) + 10)
    width = (max(layers, default=0) + 1) * (NODE_W + GAP_X)
    height = max((len(m) for m in layers.values()), default=1) * (NODE_H + GAP_Y) + 20
    return Layout(pos, edges, width, height, key)


def _bary(ups: list[str], pos: dict[str, tuple[int, int]]) -> float:
    ys = [pos[p][1] for p in ups if p in pos]
    return sum(ys) / len(ys) if ys else 0.0
