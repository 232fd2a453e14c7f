"""Type families of SQL type names, as sqlglot reads them in the engine's dialect.

One place answers "is this column numeric / temporal / text?" for checks, the audit and the
profiler, instead of lists of type names in each of them.

>>> is_numeric("DECIMAL(12,2)"), is_integer("UBIGINT"), is_integer("DOUBLE"), is_float("REAL")
(True, True, False, True)
>>> is_temporal("TIMESTAMP WITH TIME ZONE"), is_temporal("TIME"), is_tz("TIMESTAMPTZ")
(True, False, True)
>>> is_string("VARCHAR"), is_string("JSON"), is_numeric("BIT")
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

DIALECT = "duckdb"
_T = exp.DataType.Type


@lru_cache(maxsize=1024)
def parse_type(type_name: str, dialect: str = DIALECT) -> exp.DataType | None:
    """``type_name`` as a sqlglot DataType; None when sqlglot cannot read it."""
    try:
        return exp.DataType.build(type_name, dialect=dialect)
    except (ParseError, ValueError):
        return None


def _is(type_name: str, types: Collection[Any]) -> bool:
    t = parse_type(type_name)
    return t is not None and t.is_type(*types)


# DuckDB's BIT is a bit string, not a number
_NUMERIC = exp.DataType.NUMERIC_TYPES - {_T.BIT}
_INTEGERS = exp.DataType.INTEGER_TYPES - {_T.BIT}


def is_numeric(type_name: str) -> bool:
    """Integers, floats and decimals."""
    return _is(type_name, _NUMERIC)


def is_integer(type_name: str) -> bool:
    return _is(type_name, _INTEGERS)


_FLOATS = frozenset({_T.FLOAT, _T.DOUBLE, _T.UDOUBLE})


def is_float(type_name: str) -> bool:
    """Binary floating point (FLOAT/REAL, DOUBLE): NaN and infinities are possible."""
    return _is(type_name, _FLOATS)


def is_decimal(type_name: str) -> bool:
    """Exact fixed-point numbers."""
    return _is(type_name, exp.DataType.REAL_TYPES - _FLOATS)


def is_temporal(type_name: str) -> bool:
    """Dates and timestamps (a time of day is not a point in time)."""
    return _is(type_name, exp.DataType.TEMPORAL_TYPES - {_T.TIME, _T.TIMETZ})


def is_tz(type_name: str) -> bool:
    """Timestamps with a time zone."""
    return _is(type_name, {_T.TIMESTAMPTZ, _T.TIMESTAMPLTZ})


def is_string(type_name: str) -> bool:
    return _is(type_name, exp.DataType.TEXT_TYPES)
