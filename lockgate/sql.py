"""Small sqlglot builders every layer shares: quoted identifiers, columns, tables, literals.

SQL is built as sqlglot expressions, never by formatting strings; these are the few
constructors the engine, the checks and the run loop all need.

>>> from sqlglot import exp
>>> exp.select(col("a b", "t")).from_(table_ref("x", "t")).sql("duckdb")
'SELECT "t"."a b" FROM "x" AS "t"'
>>> [literal(v).sql() for v in (True, 2, 0.5, "it's")]
['TRUE', '2', '0.5', "'it''s'"]
"""

from __future__ import annotations

from sqlglot import exp


def ident(name: str) -> exp.Identifier:
    """``name`` as a quoted identifier (any spelling, keywords included)."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """Column ``name``, qualified by ``table`` when given."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table_ref(name: str, alias: str | None = None) -> exp.Table:
    """Table ``name`` (one part, quoted), aliased as ``alias`` when given."""
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)) if alias else None)


def literal(v: object) -> exp.Expr:
    """A boolean, number or (anything else, as text) string literal."""
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int | float):
        return exp.Literal.number(repr(v) if isinstance(v, float) else str(v))
    return exp.Literal.string(str(v))


__all__ = ["col", "ident", "literal", "table_ref"]
