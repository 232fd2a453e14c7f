"""The dataset graph: table references in SQL, cycles and topological order."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: \d+, col: \d+.*?>")


@dataclass(frozen=True)
class SqlError:
    """A syntax error inside a SQL text; ``line``/``column`` are 1-based within the text."""

    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True)
class TableRef:
    """A table named in a query (not a CTE, not a file or table function)."""

    name: str
    qualifier: str  # "db" or "catalog.db"; "" when unqualified
    line: int | None
    column: int | None

    @property
    def full_name(self) -> str:
        return f"{self.qualifier}.{self.name}" if self.qualifier else self.name


def parse_query(sql: str) -> tuple[exp.Expr | None, SqlError | None]:
    """Parse one DuckDB query; return it, or the first syntax error with its position."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        message = _TOKEN_REPR.sub(r"'\1'", str(first.get("description") or e).split("\n")[0])
        line, col = first.get("line"), first.get("col")
        highlight = first.get("highlight") or ""
        if isinstance(col, int) and highlight and "\n" not in highlight:
            col = max(1, col - len(highlight) + 1)  # sqlglot points at the token's last char
        return None, SqlError(message, line, col)
    except TokenError as e:
        return None, SqlError(f"cannot tokenize SQL: {e}")
    if not statements:
        return None, SqlError("the SQL is empty")
    if len(statements) > 1:
        return None, SqlError(f"expected one query, found {len(statements)} statements")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query | exp.Pivot | exp.Values):
        return None, SqlError(
            f"expected a query (SELECT/FROM/WITH ...), found {stmt.key.upper()} statement"
        )
    return stmt, None


def table_refs(tree: exp.Expr) -> list[TableRef]:
    """Tables read by a query, in order of appearance, without CTE names or files.

    DuckDB table functions (``read_parquet(...)``, ``range(10)``) are not table names, and
    ``FROM 'file.csv'`` (a quoted path) is a file scan, so neither is returned.
    """
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in tree.find_all(exp.Table):
        ident = table.this
        if not isinstance(ident, exp.Identifier):
            continue  # a table function
        name = ident.name
        if ident.quoted and re.search(r"[./\\*]", name):
            continue  # a file path scanned directly
        qualifier = ".".join(p for p in (table.catalog, table.db) if p)
        if not qualifier and name.lower() in ctes:
            continue
        line = ident.meta.get("line")
        col = ident.meta.get("col")
        if isinstance(col, int):
            col = max(1, col - len(name) + 1 - (2 if ident.quoted else 0))
        refs.append(TableRef(name, qualifier, line, col))
    return refs


def find_cycles(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Every distinct dependency cycle as a path ``[a, b, c, a]`` (a reads b, b reads c ...).

    Nodes are visited in the order of ``deps`` so results are deterministic.
    """
    white, gray, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    for start in deps:
        if color[start] != white:
            continue
        # iterative DFS: stack of (node, iterator over its deps)
        path: list[str] = [start]
        iters = [iter(deps.get(start, ()))]
        color[start] = gray
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = black
                iters.pop()
                continue
            if nxt not in color:
                continue  # unknown name: reported elsewhere
            if color[nxt] == gray:
                cycle = [*path[path.index(nxt) :], nxt]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif color[nxt] == white:
                color[nxt] = gray
                path.append(nxt)
                iters.append(iter(deps.get(nxt, ())))
    return cycles


def topological_order(names: Iterable[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Order ``names`` so every dataset follows its upstream ones; ties keep input order.

    Assumes no cycles (check with :func:`find_cycles` first).
    """
    order: list[str] = []
    done: set[str] = set()
    names = list(names)
    known = set(names)

    def visit(n: str) -> None:
        stack = [(n, iter(deps.get(n, ())))]
        while stack:
            node, it = stack[-1]
            child = next(it, None)
            if child is None:
                stack.pop()
                if node not in done:
                    done.add(node)
                    order.append(node)
            elif child in known and child not in done:
                stack.append((child, iter(deps.get(child, ()))))

    for n in names:
        if n not in done:
            visit(n)
    return order
