"""Schema of a set of files read one by one: the union of their columns (matched by name,
ignoring case and surrounding whitespace) and one type per column.

A column's type is the declared one; otherwise the one every file agrees on; otherwise a
type that can hold every file's values (DuckDB's common numeric or temporal type — a
string column in one file does not stop another file's ``BIGINT``: its values are cast
per row and the ones that do not convert are rejected); otherwise ``VARCHAR``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from lockgate.sources.base import SqlConnection

_NUMERIC = exp.DataType.NUMERIC_TYPES
_TEMPORAL = exp.DataType.TEMPORAL_TYPES


_WIDE = {
    "TINYINT": "BIGINT",
    "SMALLINT": "BIGINT",
    "INTEGER": "BIGINT",
    "UTINYINT": "BIGINT",
    "USMALLINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
}


def key(name: str) -> str:
    """How a column name is matched across files and against declared columns."""
    return name.strip().lower()


def _kind(typ: str) -> str | None:
    try:
        dt = exp.DataType.build(typ, dialect="duckdb")
    except Exception:  # an exotic type sqlglot cannot parse: only exact matches unify
        return None
    if dt.is_type(*_NUMERIC):
        return "numeric"
    if dt.is_type(*_TEMPORAL):
        return "temporal"
    return None


def _supertype(con: SqlConnection, types: Sequence[str]) -> str:
    """DuckDB's type for ``UNION ALL`` of ``types`` (types come from DESCRIBE)."""
    selects = [
        exp.select(exp.alias_(exp.cast(exp.Null(), exp.DataType.build(t, dialect="duckdb")), "c"))
        for t in types
    ]
    query: exp.Query = selects[0]
    for s in selects[1:]:
        query = exp.union(query, s, distinct=False)
    rows = con.execute("DESCRIBE " + query.sql("duckdb")).fetchall()
    return str(rows[0][1])


def unify(con: SqlConnection, types: Sequence[str]) -> str:
    distinct = list(dict.fromkeys(types))
    if len(distinct) == 1:
        return distinct[0]
    typed = [t for t in distinct if t != "VARCHAR"]
    kinds = {_kind(t) for t in typed}
    if len(kinds) != 1 or None in kinds:
        return "VARCHAR"
    out = typed[0] if len(typed) == 1 else _supertype(con, typed)
    if "VARCHAR" in distinct:  # text may hold any number: not just the narrow type's range
        out = _WIDE.get(out, out)
    return out


def union_columns(
    con: SqlConnection,
    schemas: Sequence[Mapping[str, str]],
    declared: Mapping[str, str] | None,
    *,
    text_wins: bool = False,
) -> dict[str, str]:
    """Canonical column name → target type over all files, in order of first appearance:
    a declared column keeps its declared name and type; any other takes its first
    spelling and the unified type (``text_wins``: any ``VARCHAR`` makes it ``VARCHAR`` —
    for CSV, where a file's types are guesses from a sample). Declared columns that no
    file has are left out (the caller reports them)."""
    declared_by_key = {key(c): (c, t) for c, t in (declared or {}).items()}
    names: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    for schema in schemas:
        for col, typ in schema.items():
            k = key(col)
            if k not in names:
                names[k] = declared_by_key[k][0] if k in declared_by_key else col.strip() or col
            seen.setdefault(k, [])
            if typ:  # "" = a file without data rows: its types say nothing
                seen[k].append(typ)
    out: dict[str, str] = {}
    for k, name in names.items():
        if k in declared_by_key:
            out[name] = declared_by_key[k][1]
        elif not seen[k] or (text_wins and "VARCHAR" in seen[k]):
            out[name] = "VARCHAR"
        else:
            out[name] = unify(con, seen[k])
    return out


def file_mapping(schema: Mapping[str, str], columns: Mapping[str, str]) -> dict[str, str]:
    """One file's column name → canonical column name (raises ``ValueError`` naming the
    columns when two of the file's columns match the same name)."""
    canonical = {key(c): c for c in columns}
    out = {col: canonical[key(col)] for col in schema if key(col) in canonical}
    if len(set(out.values())) != len(out):
        clash = sorted(c for c in out if list(out.values()).count(out[c]) > 1)
        raise ValueError(
            "columns " + ", ".join(repr(c) for c in clash) + " differ only in case or spaces"
        )
    return out
