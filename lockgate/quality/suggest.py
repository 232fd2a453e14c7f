"""Suggested checks: turn a :class:`~lockgate.quality.profile.Profile` into check YAML.

The output is a starting point for a person to review, never applied automatically: it
describes the data as it *was* when profiled. Each suggestion carries a comment that says
what in the profile led to it. Every suggestion is chosen so that it passes on the data it
was derived from:

- ``row_count``: between half and one and a half times the profiled rows (``warn``);
- ``not_null``: columns without NULLs;
- ``unique``: columns whose approximate distinct count is within 2% of the non-null rows.
  HyperLogLog is approximate, so pass ``con`` and ``table`` to confirm candidates with one
  exact ``count(DISTINCT ...)`` query; without them the comment asks the reviewer to;
- ``accepted_values``: string columns with at most 20 distinct values whose top values
  cover every non-null row (profile with ``top_k >= 20`` to see them all);
- ``between``: numeric columns without NaN, bounds widened by 10% of the range (at least
  one unit of the rounding step) and rounded outwards to a round number; a non-negative
  column keeps a lower bound >= 0;
- ``regex_match``: string columns whose every non-null value fully matches one of the
  known formats (UUID, email, ISO timestamp, ISO date), counted exactly by the profile;
- ``freshness``: timestamp columns, max age = twice the age of the newest value at
  suggestion time, rounded up to whole hours/days (``warn``: freshness depends on when
  the check runs).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate.engine.base import Engine
from lockgate.engine.session import as_engine
from lockgate.quality.profile import PATTERNS, ColumnProfile, Profile, _parse_ts, _table_expr

if TYPE_CHECKING:
    from lockgate.engine.session import EngineLike

#: accepted_values is suggested up to this many distinct values
MAX_ACCEPTED_VALUES = 20
#: order in which formats are tried (most specific first)
_FORMAT_ORDER = ("uuid", "email", "iso_datetime", "iso_date")
_FORMAT_LABEL = {
    "uuid": "a UUID",
    "email": "an email address",
    "iso_datetime": "an ISO-8601 timestamp",
    "iso_date": "an ISO-8601 date (YYYY-MM-DD)",
}


def suggest_checks(
    profile: Profile,
    *,
    dataset: str | None = None,
    con: EngineLike | None = None,
    table: str | None = None,
    now: datetime | None = None,
) -> str:
    """Return a commented check file (YAML with a ``checks:`` list) proposed from ``profile``.

    ``con``/``table`` (the profiled relation) let ``unique`` candidates be confirmed
    exactly; ``now`` fixes the clock for ``freshness`` (default: the current UTC time).
    """
    now = now or datetime.now(UTC)
    exact_unique = (
        _confirm_unique(profile, as_engine(con), table) if con is not None and table else None
    )
    label = dataset or profile.target
    lines = [
        f"# Checks suggested by `lockgate suggest` from a profile of {label}",
        f"# ({profile.rows} rows, profiled {profile.created_at}).",
        "# Review every check: they describe the data as it was, not as it must be.",
    ]
    if profile.rejected:
        lines.append(
            f"# {profile.rejected} record(s) could not be read and are not in the profile:"
        )
        for r in profile.rejected_sample:
            reason = " ".join(str(r.get("reason", "")).split())
            lines.append(f"#   {r.get('file')}:{r.get('line')}: {reason}")
    lines.append("checks:")
    header = len(lines)
    if profile.rows > 0:
        lo, hi = profile.rows // 2, math.ceil(profile.rows * 1.5)
        lines += _item(
            f"{profile.rows} rows profiled: expect between half and 1.5x as many per batch.",
            {"type": "row_count", "min": lo, "max": hi, "severity": "warn"},
        )
    for col in profile.columns:
        lines += _column_suggestions(col, exact_unique, now)
    if len(lines) == header:
        lines.append("  []  # nothing to suggest: the profile is empty")
    return "\n".join(lines) + "\n"


def _column_suggestions(
    col: ColumnProfile, exact_unique: dict[str, bool] | None, now: datetime
) -> list[str]:
    out: list[str] = []
    if col.rows == 0:
        return out
    if col.null_count == 0:
        out += _item(
            f"{col.name}: no NULL in {col.rows} rows.",
            {"type": "not_null", "column": col.name},
        )
    if _unique_candidate(col):
        confirmed = None if exact_unique is None else exact_unique.get(col.name)
        if confirmed is None:
            out += _item(
                f"{col.name}: ~{col.distinct_approx} distinct values in {col.non_null} non-null"
                " rows (approximate: confirm it is a key).",
                {"type": "unique", "column": col.name},
            )
        elif confirmed:
            out += _item(
                f"{col.name}: every non-null value is distinct ({col.non_null} rows).",
                {"type": "unique", "column": col.name},
            )
    values = _accepted_values(col)
    if values is not None:
        shown = ", ".join(f"{v} ({n})" for v, n in col.top_values[:5])
        more = ", ..." if len(col.top_values) > 5 else ""
        out += _item(
            f"{col.name}: {len(values)} distinct value{'s' if len(values) > 1 else ''}:"
            f" {shown}{more}.",
            {"type": "accepted_values", "column": col.name, "values": values},
        )
    bounds = _between(col)
    if bounds is not None:
        out += _item(
            f"{col.name}: observed min {_fmt(col.min)}, max {_fmt(col.max)}; bounds widened"
            " by 10% of the range and rounded.",
            {"type": "between", "column": col.name, "min": bounds[0], "max": bounds[1]},
        )
    fmt = _format(col)
    if fmt is not None:
        out += _item(
            f"{col.name}: all {col.non_null} non-null values look like {_FORMAT_LABEL[fmt]}.",
            {"type": "regex_match", "column": col.name, "pattern": PATTERNS[fmt]},
        )
    fresh = _freshness(col, now)
    if fresh is not None:
        age, max_age = fresh
        out += _item(
            f"{col.name}: newest value {col.max} was {age} old when suggested; allow twice"
            " that (adjust to the real SLA).",
            {"type": "freshness", "column": col.name, "max_age": max_age, "severity": "warn"},
        )
    return out


# ----------------------------------------------------------------------------- rules


def _unique_candidate(col: ColumnProfile) -> bool:
    if col.distinct_approx is None or col.non_null < 2:
        return False
    # keys are integers, strings or UUIDs; distinct floats or timestamps are rarely keys
    if not (col.is_integer or col.kind == "string" or col.type.upper() == "UUID"):
        return False
    return col.distinct_approx >= 0.98 * col.non_null


def _accepted_values(col: ColumnProfile) -> list[Any] | None:
    if col.kind != "string" or not col.top_values or col.non_null == 0:
        return None
    if len(col.top_values) > MAX_ACCEPTED_VALUES:
        return None
    if sum(n for _, n in col.top_values) != col.non_null:
        return None  # the top values do not cover every row: more values exist
    if len(col.top_values) >= col.non_null:
        return None  # every value distinct: not a category
    return sorted(v for v, _ in col.top_values)


def _between(col: ColumnProfile) -> tuple[int | float, int | float] | None:
    if col.kind != "numeric" or col.nan_count or col.min is None or col.max is None:
        return None
    mn, mx = float(col.min), float(col.max)
    if not (math.isfinite(mn) and math.isfinite(mx)):
        return None
    return widen(mn, mx, integer=col.is_integer)


def widen(mn: float, mx: float, *, integer: bool) -> tuple[int | float, int | float]:
    """Bounds containing ``[mn, mx]``, widened by 10% of the range and rounded outwards.

    >>> widen(3, 97, integer=True)
    (0, 107)
    >>> widen(0.52, 0.98, integer=False)
    (0.47, 1.03)
    """
    span = mx - mn
    pad = 0.1 * span if span > 0 else 0.1 * max(abs(mx), 1.0)
    exponent = math.floor(math.log10(pad))
    step = 10.0**exponent
    if integer:
        step = max(step, 1.0)
    lo = math.floor((mn - pad) / step) * step
    hi = math.ceil((mx + pad) / step) * step
    if mn >= 0 > lo:
        lo = 0.0
    if integer:
        return int(lo), int(hi)
    digits = max(0, -exponent)
    lo_r, hi_r = round(lo, digits), round(hi, digits)
    # rounding to the step's digits never moves a bound by more than the float error,
    # which the pad (>= one step) absorbs; still, keep the observed range inside
    return min(lo_r, mn), max(hi_r, mx)


def _format(col: ColumnProfile) -> str | None:
    if col.kind != "string" or col.non_null == 0:
        return None
    for name in _FORMAT_ORDER:
        if col.patterns.get(name) == col.non_null:
            return name
    return None


def _freshness(col: ColumnProfile, now: datetime) -> tuple[str, str] | None:
    if col.kind != "temporal" or not col.type.upper().startswith("TIMESTAMP") or col.max is None:
        return None
    newest = _parse_ts(str(col.max))
    if newest is None:
        return None
    age_s = max((now - newest).total_seconds(), 0.0)
    allowed = max(2 * age_s, 3600.0)
    hours = math.ceil(allowed / 3600)
    max_age = f"{hours}h" if hours <= 48 else f"{math.ceil(allowed / 86400)}d"
    return _human(age_s), max_age


def _human(seconds: float) -> str:
    if seconds < 3600:
        return f"{round(seconds / 60)}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _confirm_unique(profile: Profile, con: Engine, table: str) -> dict[str, bool]:
    """Exact check of every unique candidate in one query: count(DISTINCT c) = count(c)."""
    names = [c.name for c in profile.columns if _unique_candidate(c)]
    if not names:
        return {}
    sel = [
        exp.alias_(
            exp.EQ(
                this=exp.Count(this=exp.Distinct(expressions=[exp.column(n, quoted=True)])),
                expression=exp.Count(this=exp.column(n, quoted=True)),
            ),
            f"u{i}",
            quoted=True,
        )
        for i, n in enumerate(names)
    ]
    row = con.execute(exp.select(*sel).from_(_table_expr(table))).fetchone()
    assert row is not None
    return {n: bool(v) for n, v in zip(names, row, strict=True)}


# ----------------------------------------------------------------------------- YAML text


def _item(comment: str, fields: dict[str, Any]) -> list[str]:
    lines = [f"  # {_one_line(comment)}"]
    first = True
    for key, value in fields.items():
        prefix = "  - " if first else "    "
        lines.append(f"{prefix}{key}: {_yaml(value)}")
        first = False
    return lines


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml(v: Any) -> str:
    """A YAML flow scalar/sequence; strings as JSON (a valid YAML double-quoted scalar)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v.lower() not in _YAML_WORDS:
            return v
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Sequence):
        return "[" + ", ".join(_yaml(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = ["MAX_ACCEPTED_VALUES", "suggest_checks", "widen"]
