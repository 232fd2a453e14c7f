"""Bind SQL transforms against the known schemas of their inputs, before anything runs.

A source's schema is known when it declares ``columns``; a SQL transform's is inferred by
binding its query (DuckDB's binder, the engine that runs it) over empty tables of its
inputs' schemas; a Python transform's is known only when it declares ``columns``. A query
whose inputs are all known is bound by the engine's binder (for DuckDB: an in-memory
database that cannot touch files or the network); a column it names that no input has is
reported. Anything else the binder
refuses (an unknown function, a file) is left to the run: nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lockgate.engine.base import DEFAULT_ENGINE, engine_class
from lockgate.engine.memo import DialectMemo
from lockgate.quality.checks import re2_error

# DuckDB binder messages that mean "this column does not exist" (quotes vary by version)
_UNKNOWN_COLUMN = (
    re.compile(r'Referenced column "?(?P<col>[^"]+?)"? not found in FROM clause'),
    re.compile(
        r'(?:Table|Values list) "(?P<table>[^"]+)" does not have a column named "(?P<col>[^"]+)"'
    ),
    re.compile(r'Column "(?P<col>[^"]+)" in EXCLUDE list not found'),
)
_AMBIGUOUS = re.compile(r'Ambiguous reference to column name "(?P<col>[^"]+)"')
_CANDIDATES = re.compile(r'Candidate bindings:[\s:]*(?P<names>"[^\n]*)')


@dataclass(frozen=True)
class ColumnError:
    """A column the query names that its inputs do not have (or have twice)."""

    column: str
    table: str | None  # the qualifier, when the query wrote ``t.column``
    ambiguous: bool
    candidates: tuple[str, ...]  # the binder's suggestions
    line: int | None  # 1-based, within the SQL text
    col: int | None


class SchemaBinder:
    """The engine's binder, holding one empty table per dataset of known schema."""

    def __init__(self, engine: str = DEFAULT_ENGINE, memo: DialectMemo | None = None) -> None:
        cls = engine_class(engine)
        self._binder = cls.binder() if memo is None else memo.binder(cls)

    def close(self) -> None:
        if self._binder is not None:
            self._binder.close()

    def add(self, name: str, columns: Mapping[str, str]) -> bool:
        """Create the empty table ``name``; False when the engine does not know a type."""
        return self._binder is not None and self._binder.add(name, columns)

    def bind(self, sql: str, tree: exp.Expr) -> tuple[dict[str, str] | None, ColumnError | None]:
        """The output schema of ``sql`` (column → type), or the column error; ``(None,
        None)`` when the binder refused it for another reason or it was not bound."""
        if self._binder is None or not _reads_only_tables(tree):
            return None, None
        schema, message = self._binder.bind(sql)
        if message is not None:
            return None, _column_error(message, tree)
        return schema, None


def _reads_only_tables(tree: exp.Expr) -> bool:
    """Whether every FROM item is a plain table name (no table function, no file path)."""
    for table in tree.find_all(exp.Table):
        this = table.this
        if not isinstance(this, exp.Identifier):
            return False
        if this.quoted and re.search(r"[./\\*]", this.name):
            return False
    return True


def _column_error(message: str, tree: exp.Expr) -> ColumnError | None:
    text = message.split("Error: ", 1)[-1]
    for pattern in _UNKNOWN_COLUMN:
        m = pattern.search(text)
        if m:
            table = m.groupdict().get("table")
            return _located(m.group("col"), table, False, _candidates(text), tree)
    m = _AMBIGUOUS.search(text)
    if m:
        return _located(m.group("col"), None, True, (), tree)
    return None


def _candidates(text: str) -> tuple[str, ...]:
    m = _CANDIDATES.search(text)
    return tuple(re.findall(r'"([^"]+)"', m.group("names"))) if m else ()


def _located(
    column: str, table: str | None, ambiguous: bool, cands: tuple[str, ...], tree: exp.Expr
) -> ColumnError:
    """Where the query names ``column`` first (sqlglot keeps token positions)."""
    name = column.split(".")[-1].lower()
    for node in tree.find_all(exp.Column):
        if node.name.lower() != name or (table and node.table.lower() != table.lower()):
            continue
        ident_node = node.this
        line = ident_node.meta.get("line") if isinstance(ident_node, exp.Identifier) else None
        col = ident_node.meta.get("col") if isinstance(ident_node, exp.Identifier) else None
        if isinstance(col, int) and isinstance(ident_node, exp.Identifier):
            col = max(1, col - len(ident_node.name) + 1 - (2 if ident_node.quoted else 0))
        return ColumnError(column, table, ambiguous, cands, line, col)
    return ColumnError(column, table, ambiguous, cands, None, None)


# functions whose second argument (``expression``) is a regular expression run by RE2
_REGEX_FUNCS = tuple(
    getattr(exp, n)
    for n in (
        "RegexpLike",
        "RegexpILike",
        "RegexpFullMatch",
        "RegexpReplace",
        "RegexpExtract",
        "RegexpExtractAll",
        "RegexpSplit",
        "RegexpCount",
        "RegexpInstr",
        "RegexpSubstr",
        "SimilarTo",
    )
    if hasattr(exp, n)
)


@dataclass(frozen=True)
class RegexError:
    """A literal pattern in SQL that RE2 (DuckDB's regex engine) refuses."""

    pattern: str
    error: str
    line: int | None  # 1-based, within the SQL text
    col: int | None


def regex_errors(tree: exp.Expr) -> list[RegexError]:
    """Literal regular expressions in ``tree`` (``regexp_matches(x, '...')``, ``~``,
    ``SIMILAR TO``, ``regexp_replace`` ...) that RE2 cannot compile: DuckDB would fail the
    query when it runs, after reading the data."""
    out: list[RegexError] = []
    for node in tree.walk():
        pattern: exp.Expr | None = None
        if isinstance(node, _REGEX_FUNCS):
            pattern = node.args.get("expression")
        elif isinstance(node, exp.Anonymous) and str(node.this).lower().startswith("regexp_"):
            args = node.expressions
            pattern = args[1] if len(args) > 1 else None
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            continue
        err = re2_error(pattern.this)
        if err is None:
            continue
        line, col = pattern.meta.get("line"), pattern.meta.get("col")
        if isinstance(col, int):
            col = max(1, col - len(pattern.this) - 1)  # sqlglot points at the closing quote
        out.append(RegexError(pattern.this, err, line, col))
    return sorted(out, key=lambda e: (e.line or 0, e.col or 0))


def condition_regex_errors(condition: str) -> list[RegexError]:
    """:func:`regex_errors` of a SQL condition (a check's ``where``/``expr``); a condition
    that does not parse is left to the check validation, which reports it."""
    try:
        tree = sqlglot.parse_one(condition, read="duckdb")
    except SqlglotError:
        return []
    return regex_errors(tree)
