"""sqlglot builders for names and values that come from configuration: quoted identifiers,
table references and literals (SQL is never built by formatting user strings). One home for
every layer — engine, sources, storage, quality and project import from here."""

from __future__ import annotations

from sqlglot import exp


def ident(name: str) -> exp.Identifier:
    """``name`` as a quoted identifier (any character, any case, kept as written)."""
    return exp.to_identifier(name, quoted=True)


def table_ref(name: str, alias: str | None = None) -> exp.Table:
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)) if alias else None)


def literal(v: object) -> exp.Expr:
    """A boolean, number or (anything else, as text) string literal."""
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if isinstance(v, int | float):
        return exp.Literal.number(repr(v) if isinstance(v, float) else str(v))
    return exp.Literal.string(str(v))
