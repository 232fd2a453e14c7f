"""Why a quarantined row failed a row-level check, in words with the failing value:
``amount=-14.39 not in [0, 100000]``.

Used by ``lockgate quarantine``; the explanation is built from the check's definition and
the row as stored in the quarantine table (no query is run).

>>> from lockgate.quality.checks import Between
>>> explain(Between(type="between", column="amount", min=0, max=100000), {"amount": -14.39})
'amount=-14.39 not in [0, 100000]'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lockgate.quality import checks as C

_MAX_VALUE_CHARS = 200
_MAX_LISTED = 12


def value(v: Any) -> str:
    """A value as it reads in an explanation: strings quoted, NULL as NULL; a very long
    value is shortened (its length stays visible)."""
    if v is None:
        return "NULL"
    text = repr(v) if isinstance(v, str) else str(v)
    if len(text) > _MAX_VALUE_CHARS:
        return f"{text[: _MAX_VALUE_CHARS - 1]}… ({len(text):,} characters)"
    return text


def _values(vals: Sequence[Any]) -> str:
    shown = ", ".join(value(v) for v in vals[:_MAX_LISTED])
    more = f", … ({len(vals)} values)" if len(vals) > _MAX_LISTED else ""
    return f"[{shown}{more}]"


def _cols(row: Mapping[str, Any], cols: Sequence[str]) -> str:
    return ", ".join(f"{c}={value(row.get(c))}" for c in cols)


def _range(lo: Any, hi: Any, lo_open: bool = False, hi_open: bool = False) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _length(v: Any) -> int | str:
    return len(v) if isinstance(v, str) else "?"


#: why a value fails a single-column check: what follows ``column=value``
_VALUE_REASONS: dict[type[C.BaseCheck], Callable[[Any, Any], str]] = {
    C.Between: lambda c, v: f"not in {_range(c.min, c.max, c.min_exclusive, c.max_exclusive)}",
    C.AcceptedValues: lambda c, v: f"not in accepted values {_values(c.values)}",
    C.NotAcceptedValues: lambda c, v: "is a forbidden value",
    C.RegexMatch: lambda c, v: f"does not match {c.pattern!r}",
    C.LengthBetween: lambda c, v: f"has length {_length(v)}, not in {_range(c.min, c.max)}",
    C.ParsableAs: lambda c, v: f"does not parse as {c.as_type}",
}


def explain(check: C.BaseCheck, row: Mapping[str, Any]) -> str:
    """Why ``row`` fails ``check`` (a row-level check), naming the failing value(s)."""
    c: Any = check
    col = getattr(c, "column", None)
    v = row.get(col) if isinstance(col, str) else None
    reason = _VALUE_REASONS.get(type(check))
    if reason is not None:
        return f"{col}={value(v)} {reason(c, v)}"
    match check:
        case C.NotNull():
            return f"{col} is NULL"
        case C.Unique():
            return f"{_cols(row, c.key)} is not unique"
        case C.Relationship():
            return f"{_cols(row, c.key)} not found in {c.to}.{'/'.join(c.to_key)}"
        case C.ReferenceMatch():
            ref = f"{c.to}.{c.to_column or c.column}"
            tol = f" by more than {c.tolerance:g}" if c.tolerance else ""
            return f"{col}={value(v)} differs from {ref}{tol} (key {_cols(row, c.keys)})"
        case C.ColumnPair():
            return f"not {c.column_a} {c.op} {c.column_b} ({_cols(row, [c.column_a, c.column_b])})"
        case C.Lateness():
            ref = "now" if c.reference == "now" else f"{c.reference}={value(row.get(c.reference))}"
            return f"{col}={value(v)} is more than {c.max_delay} older than {ref}"
        case C.Expression():
            used = [k for k in row if not k.startswith("_lg_") and k in c.expr]
            return f"{c.expr} is false" + (f" ({_cols(row, used)})" if used else "")
    cols = c.referenced_columns()
    return f"failed ({_cols(row, cols)})" if cols else "failed"


def explain_failures(
    failed: Sequence[str], row: Mapping[str, Any], checks: Mapping[str, C.BaseCheck]
) -> list[tuple[str, str]]:
    """(check name, why) for each name in ``failed``; a parse error gives the reader's
    reason; a check no longer defined is named as such."""
    out = []
    for name in failed:
        if name == "parse_error":
            why = str(row.get("_lg_reason") or "the record could not be read")
        elif name in checks:
            why = explain(checks[name], row)
        else:
            why = "(check no longer defined)"
        out.append((name, why))
    return out


__all__ = ["explain", "explain_failures", "value"]
