"""The column lineage graph: column references, classified edges, and walks over them.

An edge says that ``target`` (a column of a dataset) depends on ``source`` (a column of an
upstream dataset), classified as OpenLineage classifies column lineage:

- DIRECT: the value is copied (IDENTITY), computed from it (TRANSFORMATION) or aggregated
  from it (AGGREGATION);
- INDIRECT: the column decides *which* rows or in which order/group, not the value: JOIN
  keys, FILTER (where/having/qualify), GROUP_BY, SORT, WINDOW (partition/order), CONDITIONAL
  (a CASE/IF condition).

>>> g = LineageGraph()
>>> a, b = ColumnRef("raw", "x"), ColumnRef("clean", "x")
>>> g.add(Edge(a, b, Kind.DIRECT, Subtype.IDENTITY, "raw.x"))
>>> [str(e.source) for e in g.upstream_edges(b)]
['raw.x']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Kind(StrEnum):
    DIRECT = "DIRECT"
    INDIRECT = "INDIRECT"


class Subtype(StrEnum):
    IDENTITY = "IDENTITY"
    TRANSFORMATION = "TRANSFORMATION"
    AGGREGATION = "AGGREGATION"
    JOIN = "JOIN"
    FILTER = "FILTER"
    GROUP_BY = "GROUP_BY"
    SORT = "SORT"
    WINDOW = "WINDOW"
    CONDITIONAL = "CONDITIONAL"


#: strength of the DIRECT subtypes when several hops combine (the strongest wins)
DIRECT_RANK = {Subtype.IDENTITY: 0, Subtype.TRANSFORMATION: 1, Subtype.AGGREGATION: 2}


@dataclass(frozen=True, order=True)
class ColumnRef:
    """A column of a dataset (``dataset.column``)."""

    dataset: str
    column: str

    def __str__(self) -> str:
        return f"{self.dataset}.{self.column}"


@dataclass(frozen=True)
class Edge:
    """``target`` depends on ``source``; ``transformation`` is the SQL (or a note) that
    relates them."""

    source: ColumnRef
    target: ColumnRef
    kind: Kind
    subtype: Subtype
    transformation: str


DatasetKind = Literal["source", "sql", "python"]
#: how the column lineage of a dataset is known: read from its SQL, declared by its Python
#: transform, opaque (a Python transform that declares none), a leaf (a source), or
#: unknown (its SQL could not be analysed; ``note`` says why)
LineageStatus = Literal["sql", "declared", "opaque", "leaf", "unknown"]


@dataclass(frozen=True)
class DatasetLineage:
    name: str
    kind: DatasetKind
    status: LineageStatus
    columns: tuple[str, ...]  # known output columns, in order (empty: schema unknown)
    upstream: tuple[str, ...]  # upstream datasets (the DAG)
    checks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # check → columns
    note: str = ""


@dataclass
class LineageGraph:
    """Datasets with their column edges, indexed both ways."""

    datasets: dict[str, DatasetLineage] = field(default_factory=dict)
    _in: dict[ColumnRef, list[Edge]] = field(default_factory=dict)
    _out: dict[ColumnRef, list[Edge]] = field(default_factory=dict)

    def add(self, edge: Edge) -> None:
        ins = self._in.setdefault(edge.target, [])
        if edge not in ins:
            ins.append(edge)
            self._out.setdefault(edge.source, []).append(edge)

    def add_all(self, edges: Iterable[Edge]) -> None:
        for e in edges:
            self.add(e)

    def upstream_edges(self, ref: ColumnRef) -> list[Edge]:
        return list(self._in.get(ref, ()))

    def downstream_edges(self, ref: ColumnRef) -> list[Edge]:
        return list(self._out.get(ref, ()))

    @property
    def edges(self) -> Iterator[Edge]:
        for edges in self._in.values():
            yield from edges

    def dataset_downstream(self, name: str) -> tuple[str, ...]:
        return tuple(n for n, d in self.datasets.items() if name in d.upstream)

    def column(self, dataset: str, column: str) -> ColumnRef:
        """The ref of ``dataset.column`` with the column's real spelling (names match
        ignoring case, as in DuckDB); the given spelling when the column is not known."""
        info = self.datasets.get(dataset)
        if info is not None:
            for c in info.columns:
                if c.lower() == column.lower():
                    return ColumnRef(dataset, c)
        return ColumnRef(dataset, column)

    def checks_on(self, ref: ColumnRef) -> list[str]:
        """Checks of ``ref.dataset`` that read ``ref.column``."""
        info = self.datasets.get(ref.dataset)
        if info is None:
            return []
        low = ref.column.lower()
        return [c for c, cols in info.checks.items() if low in (x.lower() for x in cols)]
