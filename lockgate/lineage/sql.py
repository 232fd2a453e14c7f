"""Column lineage of one SQL transform, with sqlglot.

The query is qualified against the known schemas of its inputs (so ``SELECT *`` expands
and every column names its table), then :func:`sqlglot.lineage.lineage` walks each output
column back to the tables it reads; a leaf's table is the aliased ``exp.Table`` in
``node.source``, which resolves aliases and CTE names to the dataset. Each hop is classified
by where the column sits in that hop's expression (bare: IDENTITY; under an aggregate:
AGGREGATION; in a window's PARTITION/ORDER BY or a CASE condition: INDIRECT; else
TRANSFORMATION). Join keys, filters, GROUP BY and ORDER BY of every scope are INDIRECT
lineage of every output column (they decide which rows, not the values).

>>> r = analyse_sql("SELECT id, amount * 2 AS twice FROM raw WHERE ok",
...                 {"raw": ("id", "amount", "ok")})
>>> [(e.source.column, e.target.column, e.subtype.value) for e in r.edges]
... # doctest: +NORMALIZE_WHITESPACE
[('id', 'id', 'IDENTITY'), ('amount', 'twice', 'TRANSFORMATION'),
 ('ok', 'id', 'FILTER'), ('ok', 'twice', 'FILTER')]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage, to_node
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope, find_all_in_scope
from sqlglot.schema import MappingSchema

from lockgate.lineage.model import DIRECT_RANK, ColumnRef, Edge, Kind, Subtype

#: the target dataset of the edges :func:`analyse_sql` returns (renamed by the caller)
OUTPUT = "__output__"

# clause of a SELECT → the INDIRECT subtype of the columns it reads
_CLAUSES: tuple[tuple[str, Subtype], ...] = (
    ("where", Subtype.FILTER),
    ("having", Subtype.FILTER),
    ("qualify", Subtype.FILTER),
    ("group", Subtype.GROUP_BY),
    ("order", Subtype.SORT),
)


@dataclass(frozen=True)
class SqlLineage:
    """Output columns of the query (their spelling in the SQL) and the edges into them
    (target dataset :data:`OUTPUT`; source datasets as the SQL spells them, normalised)."""

    columns: tuple[str, ...]
    edges: list[Edge] = field(default_factory=list)
    error: str | None = None
    star_unresolved: bool = False  # a ``*`` over an input of unknown schema
    #: outputs that are a bare column reference: DuckDB names them as their input spells it
    bare: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Path:
    indirect: Subtype | None = None
    rank: int = 0
    what: str = ""  # the innermost non-identity expression

    def then(self, hop: tuple[Kind, Subtype], expr: exp.Expr) -> _Path:
        kind, sub = hop
        if self.indirect is not None:
            return self
        if kind is Kind.INDIRECT:
            return _Path(sub, self.rank, _sql(expr))
        rank = max(self.rank, DIRECT_RANK[sub])
        return _Path(None, rank, _sql(expr) if sub is not Subtype.IDENTITY else self.what)

    def classify(self) -> tuple[Kind, Subtype]:
        if self.indirect is not None:
            return Kind.INDIRECT, self.indirect
        by_rank = {v: k for k, v in DIRECT_RANK.items()}
        return Kind.DIRECT, by_rank[self.rank]


def analyse_sql(
    sql: str, schemas: Mapping[str, Sequence[str]], *, dialect: str = "duckdb"
) -> SqlLineage:
    """Column lineage of ``sql`` given the columns of the datasets it may read."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        read = {t.name.lower() for t in tree.find_all(exp.Table)}
        mapping: dict[str, object] = {
            t: {c: "UNKNOWN" for c in cols}
            for t, cols in schemas.items()
            if cols and t.lower() in read  # only what it reads: the schema is normalised
        }
        schema = MappingSchema(mapping, dialect=dialect)
        qualified = qualify(
            tree.copy(),
            dialect=dialect,
            schema=schema,
            validate_qualify_columns=False,
            identify=False,
        )
        scope = build_scope(qualified)
        if scope is None or not isinstance(qualified, exp.Query):
            return SqlLineage((), error="not a query (lineage needs a SELECT)")
        nodes = lineage(
            None, qualified, schema, dialect=dialect, scope=scope, trim_selects=False, copy=False
        )
    except (SqlglotError, ValueError, KeyError) as e:
        return SqlLineage((), error=f"sqlglot could not analyse the SQL: {e}")
    names = _output_names(tree, list(nodes))
    edges: list[Edge] = []
    for (name, node), real in zip(nodes.items(), names, strict=True):
        target = ColumnRef(OUTPUT, real)
        del name
        for (table, column), path in _leaves(node, dialect):
            kind, sub = path.classify()
            edges.append(Edge(ColumnRef(table, column), target, kind, sub, path.what))
    targets = [ColumnRef(OUTPUT, n) for n in names]
    for (table, column), sub, text in _indirect(scope, schema, dialect):
        edges.extend(Edge(ColumnRef(table, column), t, Kind.INDIRECT, sub, text) for t in targets)
    star = isinstance(qualified, exp.Select) and qualified.is_star
    bare = frozenset(_bare_outputs(tree, names))
    return SqlLineage(tuple(names), _dedup(edges), star_unresolved=star, bare=bare)


def _bare_outputs(tree: exp.Expr, names: list[str]) -> list[str]:
    if not isinstance(tree, exp.Select) or tree.is_star or len(tree.selects) != len(names):
        return []
    return [n for s, n in zip(tree.selects, names, strict=True) if isinstance(s, exp.Column)]


def _dedup(edges: list[Edge]) -> list[Edge]:
    return list(dict.fromkeys(edges))


def _sql(e: exp.Expr) -> str:
    e = e.unalias() if isinstance(e, exp.Alias) else e
    text = e.sql(dialect="duckdb", comments=False)
    return text if len(text) <= 200 else text[:197] + "..."


def _output_names(tree: exp.Expr, qualified: list[str]) -> list[str]:
    """Output names as the SQL spells them (qualify lower-cases them for DuckDB)."""
    if isinstance(tree, exp.Select) and not tree.is_star:
        raw = [s.alias_or_name for s in tree.selects]
        if len(raw) == len(qualified) and all(
            r.lower() == q.lower() for r, q in zip(raw, qualified, strict=True)
        ):
            return raw
    return qualified


@lru_cache(maxsize=4096)
def _column_of(name: str, dialect: str) -> exp.Column | None:
    """A lineage node's name (``t.col``) as a column; cached, never mutate the result."""
    try:
        col = exp.to_column(name, dialect=dialect)
    except SqlglotError:
        return None
    return col if isinstance(col, exp.Column) and col.name else None


def _leaves(root: Node, dialect: str) -> Iterator[tuple[tuple[str, str], _Path]]:
    """Every (table, column) the output column ``root`` reads, with the path's class."""
    seen: set[tuple[int, _Path]] = set()
    stack: list[tuple[Node, _Path]] = [(root, _Path())]
    while stack:
        node, path = stack.pop()
        if (id(node), path) in seen:
            continue
        seen.add((id(node), path))
        if isinstance(node.expression, exp.Table):
            col = _column_of(node.name, dialect)
            if col is not None and col.name != "*":
                yield (node.expression.name, col.name), path
            continue
        for child in node.downstream:
            hop = _hop(node, child, dialect)
            stack.append((child, path.then(hop, node.expression)))


def _hop(parent: Node, child: Node, dialect: str) -> tuple[Kind, Subtype]:
    """How ``parent``'s expression uses the column ``child`` stands for."""
    if isinstance(parent.source, exp.SetOperation):
        return Kind.DIRECT, Subtype.IDENTITY  # a UNION branch passes its column through
    col = _column_of(child.name, dialect)
    expr = parent.expression
    bare = expr.unalias() if isinstance(expr, exp.Alias) else expr
    if col is None:
        return Kind.DIRECT, Subtype.TRANSFORMATION
    hits = [
        c
        for c in bare.find_all(exp.Column)
        if c.name == col.name and (c.table == col.table or not col.table)
    ]
    roles = [_role(c, bare) for c in hits] or [(Kind.DIRECT, Subtype.TRANSFORMATION)]
    direct = [r for r in roles if r[0] is Kind.DIRECT]
    if direct:
        return max(direct, key=lambda r: DIRECT_RANK[r[1]])
    return roles[0]


def _role(col: exp.Column, root: exp.Expr) -> tuple[Kind, Subtype]:
    if col is root:
        return Kind.DIRECT, Subtype.IDENTITY
    aggregated = False
    node: exp.Expr = col
    while node is not root and node.parent is not None:
        parent, key = node.parent, node.arg_key
        if isinstance(parent, exp.Window) and key in ("partition_by", "order"):
            return Kind.INDIRECT, Subtype.WINDOW
        if isinstance(parent, exp.If) and key == "this":
            return Kind.INDIRECT, Subtype.CONDITIONAL
        if isinstance(parent, exp.Case) and key == "this":
            return Kind.INDIRECT, Subtype.CONDITIONAL
        if isinstance(parent, exp.Filter) and key == "expression":
            return Kind.INDIRECT, Subtype.FILTER
        aggregated = aggregated or isinstance(parent, exp.AggFunc)
        node = parent
    return Kind.DIRECT, Subtype.AGGREGATION if aggregated else Subtype.TRANSFORMATION


def _indirect(
    root: Scope, schema: MappingSchema, dialect: str
) -> Iterator[tuple[tuple[str, str], Subtype, str]]:
    """Columns every scope joins on, filters, groups or sorts by, traced to their tables."""
    for scope in root.traverse():
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        clauses = [(j.args.get("on"), Subtype.JOIN) for j in select.args.get("joins") or []]
        clauses += [(select.args.get(k), sub) for k, sub in _CLAUSES]
        for clause, sub in clauses:
            if not isinstance(clause, exp.Expr):
                continue
            text = _sql(clause) if sub is Subtype.JOIN else f"{clause.key.upper()}: {_sql(clause)}"
            for leaf in _clause_leaves(scope, clause, schema, dialect):
                yield leaf, sub, text


def _clause_leaves(
    scope: Scope, clause: exp.Expr, schema: MappingSchema, dialect: str
) -> Iterator[tuple[str, str]]:
    select = scope.expression
    aliases = {s.alias_or_name for s in select.selects} if isinstance(select, exp.Select) else set()
    for col in find_all_in_scope(clause, exp.Column):
        src = scope.sources.get(col.table)
        if isinstance(src, exp.Table):
            yield src.name, col.name
        elif isinstance(src, Scope):
            yield from _scope_leaves(col.name, src, schema, dialect)
        elif not col.table and col.name in aliases:
            yield from _scope_leaves(col.name, scope, schema, dialect)
    for sub in scope.subquery_scopes:
        query = sub.expression
        if isinstance(query, exp.Query) and _within(query, clause):
            for name in query.named_selects:
                yield from _scope_leaves(name, sub, schema, dialect)


def _within(node: exp.Expr, ancestor: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def _scope_leaves(
    column: str, scope: Scope, schema: MappingSchema, dialect: str
) -> Iterator[tuple[str, str]]:
    try:
        node = to_node(column, scope, dialect, schema, trim_selects=False)
    except (SqlglotError, ValueError):
        return
    for n in node.walk():
        if isinstance(n.expression, exp.Table):
            col = _column_of(n.name, dialect)
            if col is not None and col.name != "*":
                yield n.expression.name, col.name
