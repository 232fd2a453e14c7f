"""The dataset lineage graph, laid out on the server (layers by longest path from the
sources, order in a layer by the barycentre of the parents), cached per DAG hash, and cut to
±``hops`` around a focus so large projects stay readable. At column level
(:func:`column_layout`) each dataset is a box of its columns and the edges join column rows
(column lineage from :mod:`lockgate.lineage`); ``lockgate docs`` draws the same layout."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from lockgate.lineage.model import LineageGraph

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


# ---- column level --------------------------------------------------------------------------

ROW_H, HEAD_H, MAX_ROWS = 16, 24, 60


@dataclass(frozen=True)
class ColumnEdge:
    x1: int
    y1: int
    x2: int
    y2: int
    kind: str  # DIRECT / INDIRECT
    title: str  # "raw.amount -> clean.amount_eur (DIRECT/TRANSFORMATION)"


@dataclass(frozen=True)
class ColumnLayout:
    """Dataset boxes listing their columns, and column-to-column edges between the rows."""

    boxes: dict[str, tuple[int, int, int]]  # dataset -> (x, y, height)
    rows: dict[str, list[tuple[str, int]]]  # dataset -> [(column, y of its row's middle)]
    edges: list[ColumnEdge]
    width: int
    height: int
    hidden: int  # columns left out of boxes longer than MAX_ROWS


def column_layout(base: Layout, graph: LineageGraph, *, indirect: bool = False) -> ColumnLayout:
    """The datasets of ``base`` (same layers and order) as boxes of their columns, with the
    column lineage edges between the datasets shown (DIRECT; INDIRECT too with ``indirect``:
    join keys and filters reach every output column, so they are off by default)."""
    by_x: dict[int, list[str]] = {}
    for n, (x, _y) in sorted(base.nodes.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        by_x.setdefault(x, []).append(n)
    boxes: dict[str, tuple[int, int, int]] = {}
    rows: dict[str, list[tuple[str, int]]] = {}
    hidden = 0
    height = 0
    for x, names in by_x.items():
        y = 10
        for n in names:
            info = graph.datasets.get(n)
            cols = list(info.columns) if info is not None else []
            hidden += max(0, len(cols) - MAX_ROWS)
            cols = cols[:MAX_ROWS]
            h = HEAD_H + ROW_H * len(cols) + 6
            boxes[n] = (x, y, h)
            rows[n] = [(c, y + HEAD_H + ROW_H * i + ROW_H // 2) for i, c in enumerate(cols)]
            y += h + GAP_Y
        height = max(height, y)
    where = {(n, c.lower()): yy for n, rs in rows.items() for c, yy in rs}
    edges: list[ColumnEdge] = []
    for e in graph.edges:
        if e.kind.value != "DIRECT" and not indirect:
            continue
        a = where.get((e.source.dataset, e.source.column.lower()))
        b = where.get((e.target.dataset, e.target.column.lower()))
        if a is None or b is None:
            continue
        xa, xb = boxes[e.source.dataset][0] + NODE_W, boxes[e.target.dataset][0]
        title = f"{e.source} -> {e.target} ({e.kind.value}/{e.subtype.value})"
        edges.append(ColumnEdge(xa, a, xb, b, e.kind.value, title))
    return ColumnLayout(boxes, rows, edges, base.width, height + 10, hidden)


def column_svg(
    cl: ColumnLayout,
    href: Callable[[str], str],
    *,
    focus: str | None = None,
    pii: Mapping[str, tuple[str, ...]] | None = None,
) -> Markup:
    """The column layout as inline SVG (no script, no external reference): a box per
    dataset (its name links to ``href(name)``), a row per column (PII columns marked),
    curves between column rows; an INDIRECT edge is dashed. Every text is escaped."""
    pii = pii or {}
    out = [
        f'<svg class="collineage" width="{cl.width}" height="{cl.height}" role="img" '
        f'aria-label="column lineage graph" xmlns="http://www.w3.org/2000/svg">'
    ]
    for e in cl.edges:
        dash = ' stroke-dasharray="4 3"' if e.kind != "DIRECT" else ""
        d = f"M{e.x1},{e.y1} C{e.x1 + 35},{e.y1} {e.x2 - 35},{e.y2} {e.x2},{e.y2}"
        out.append(
            f'<path class="coledge {escape(e.kind.lower())}" d="{d}" fill="none"{dash}>'
            f"<title>{escape(e.title)}</title></path>"
        )
    for n, (x, y, h) in cl.boxes.items():
        cls = "colbox focus" if n == focus else "colbox"
        out.append(
            f'<g class="dataset" data-dataset="{escape(n)}"><rect class="{cls}" x="{x}" y="{y}" '
            f'width="{NODE_W}" height="{h}" rx="5"/><a href="{escape(href(n))}">'
            f'<text class="colhead" x="{x + 8}" y="{y + 16}">{escape(n[:24])}</text></a>'
        )
        marked = {c.lower() for c in pii.get(n, ())}
        for c, yy in cl.rows.get(n, []):
            tag = " (pii)" if c.lower() in marked else ""
            out.append(
                f'<text class="colrow" x="{x + 12}" y="{yy + 4}" data-column="{escape(n)}.'
                f'{escape(c)}">{escape(c[:26])}{tag}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
