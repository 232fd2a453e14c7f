"""Predicates handed to delta-rs (parsed by DataFusion), built with sqlglot expressions.

Identifiers are always quoted; values become typed literals, never formatted strings.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from lockgate.errors import TerminalError

#: aliases used in the merge predicate (DataFusion accepts quoted aliases)
TARGET_ALIAS = "target"
SOURCE_ALIAS = "source"
# DataFusion's SQL is close enough to PostgreSQL's for comparisons, IN, IS NULL and CAST.
_DIALECT = "postgres"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(
        exp.to_identifier(name, quoted=True),
        table=exp.to_identifier(table, quoted=True) if table else None,
    )


def literal(value: Any) -> exp.Expression:
    """A typed SQL literal for a partition value.

    >>> literal(dt.date(2024, 1, 2)).sql("postgres")
    "CAST('2024-01-02' AS DATE)"
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        # Delta stores microseconds (time-zone-aware columns in UTC); a plain CAST would give
        # DataFusion nanoseconds, which it refuses to compare with the column.
        if value.tzinfo is not None:
            utc = value.astimezone(dt.UTC).replace(tzinfo=None)
            text, arrow_type = utc.isoformat() + "Z", 'Timestamp(Microsecond, Some("UTC"))'
        else:
            text, arrow_type = value.isoformat(), "Timestamp(Microsecond, None)"
        return exp.Anonymous(
            this="arrow_cast",
            expressions=[exp.Literal.string(text), exp.Literal.string(arrow_type)],
        )
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    raise TerminalError(
        f"cannot build a partition predicate for value {value!r} of type {type(value).__name__}",
        hint="partition by a string, integer, boolean, date or timestamp column",
    )


def _equals(column: str, value: Any) -> exp.Expression:
    if value is None:
        return exp.Is(this=_col(column), expression=exp.Null())
    return exp.EQ(this=_col(column), expression=literal(value))


def partition_predicate(columns: Sequence[str], values: Iterable[Mapping[str, Any]]) -> str | None:
    """Predicate matching exactly the given partitions (``None`` when there are none).

    >>> partition_predicate(["p"], [{"p": "a"}, {"p": None}])
    '"p" IN (\\'a\\') OR "p" IS NULL'
    """
    distinct: dict[tuple[Any, ...], None] = {}
    for row in values:
        distinct[tuple(row[c] for c in columns)] = None
    if not distinct:
        return None
    if len(columns) == 1:
        (column,) = columns
        present = [key[0] for key in distinct if key[0] is not None]
        parts: list[exp.Expression] = []
        if present:
            parts.append(exp.In(this=_col(column), expressions=[literal(v) for v in present]))
        if any(key[0] is None for key in distinct):
            parts.append(_equals(column, None))
        return exp.or_(*parts).sql(_DIALECT)
    groups = [
        exp.and_(*(_equals(c, v) for c, v in zip(columns, key, strict=True))) for key in distinct
    ]
    return exp.or_(*groups).sql(_DIALECT)


def range_predicate(column: str, ranges: Sequence[tuple[Any, Any]]) -> str | None:
    """Rows whose ``column`` lies in one of the half-open ``[lo, hi)`` ranges (``None``: no
    ranges). Bounds are typed literals (dates, timestamps), as :func:`literal` builds them.

    >>> print(range_predicate("d", [(dt.date(2024, 1, 1), dt.date(2024, 1, 2))]))
    ("d" >= CAST('2024-01-01' AS DATE) AND "d" < CAST('2024-01-02' AS DATE))
    """
    if not ranges:
        return None
    parts = [
        exp.Paren(
            this=exp.and_(
                exp.GTE(this=_col(column), expression=literal(lo)),
                exp.LT(this=_col(column), expression=literal(hi)),
            )
        )
        for lo, hi in ranges
    ]
    return exp.or_(*parts).sql(_DIALECT)


def merge_predicate(keys: Sequence[str]) -> str:
    """``target.k = source.k AND ...`` (plain equality: merge keys are assumed non-null).

    >>> merge_predicate(["id"])
    '"target"."id" = "source"."id"'
    """
    return exp.and_(
        *(exp.EQ(this=_col(k, TARGET_ALIAS), expression=_col(k, SOURCE_ALIAS)) for k in keys)
    ).sql(_DIALECT)


def quoted_column(table: str, name: str) -> str:
    """``"table"."name"`` for delta-rs (an update's value or a predicate's operand).

    >>> quoted_column("source", "_lg_op")
    '"source"."_lg_op"'
    """
    return _col(name, table).sql(_DIALECT)


def value_predicate(table: str, column: str, value: str) -> str:
    """``"table"."column" = 'value'`` (the value a literal, never formatted in).

    >>> print(value_predicate("source", "_lg_op", "d"))
    "source"."_lg_op" = 'd'
    """
    return exp.EQ(this=_col(column, table), expression=exp.Literal.string(value)).sql(_DIALECT)
