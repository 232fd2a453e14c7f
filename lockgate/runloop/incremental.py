"""Incremental cursors: watermark encoding, lookback, and the input filter."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlglot import exp

from lockgate.engine.session import ident
from lockgate.project.models import IncrementalSpec, parse_duration


def encode(value: Any) -> tuple[str, str] | None:
    """Watermark value → (text, type) for the state store and commit metadata."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(), "timestamp"
    if isinstance(value, date):
        return value.isoformat(), "date"
    if isinstance(value, bool):
        return str(value), "str"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, Decimal):  # exact: a float would blur the > boundary
        return str(value), "decimal"
    if isinstance(value, float):
        return repr(value), "float"
    return str(value), "str"


def decode(text: str, kind: str) -> Any:
    if kind == "timestamp":
        return datetime.fromisoformat(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "decimal":
        return Decimal(text)
    return text


def min_cursor(spec: IncrementalSpec, watermark: Any) -> Any:
    """The lowest cursor value to (re)read: watermark minus lookback."""
    if watermark is None or spec.lookback is None:
        return watermark
    if isinstance(watermark, datetime | date):
        delta = parse_duration(spec.lookback)
        if isinstance(watermark, datetime):
            return watermark - delta
        return watermark - timedelta(days=max(delta.days, 0))
    if isinstance(watermark, Decimal) and isinstance(spec.lookback, int | float):
        return watermark - Decimal(str(spec.lookback))
    if isinstance(watermark, int | float) and isinstance(spec.lookback, int | float):
        return watermark - spec.lookback
    return watermark


def literal(value: Any) -> exp.Expression:
    """A typed SQL literal for a cursor value."""
    if isinstance(value, datetime):
        lit = exp.Literal.string(value.isoformat(sep=" "))
        t = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.Cast(this=lit, to=exp.DataType.build(t))
    if isinstance(value, date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value))
    return exp.Literal.string(str(value))


def cursor_filter(cursor: str, lowest: Any, *, inclusive: bool) -> exp.Expression:
    """``cursor > watermark`` without lookback; ``cursor >= watermark - lookback`` with one
    (the re-read window is de-duplicated on publish: merge upserts, append anti-joins)."""
    col = exp.Column(this=ident(cursor))
    if inclusive:
        return exp.GTE(this=col, expression=literal(lowest))
    return exp.GT(this=col, expression=literal(lowest))
