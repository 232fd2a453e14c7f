"""Static validation of checks against a table's columns — before any data is read.

Reports *all* problems at once, each with the check's name and file position: unknown check
types and columns ("did you mean"), invalid regexes (Python ``re`` and DuckDB's RE2), type
mismatches (a range on a string column, a length on a number, freshness on a non-temporal
column, a mean of strings…), duplicate names, unparseable ``where``/``expr``/custom SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlglot
from pydantic import TypeAdapter, ValidationError

from lockgate._suggest import did_you_mean
from lockgate.engine.types import is_numeric, is_string, is_temporal
from lockgate.errors import Problem
from lockgate.quality import checks as C
from lockgate.quality.checks import CHECK_TYPES, BaseCheck, CheckSpec
from lockgate.quality.compile import free_columns, parse_condition, parse_query

_ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)


def parse_checks(
    raw: Sequence[Any], *, file: str | None = None, lines: Sequence[int | None] | None = None
) -> tuple[list[BaseCheck | None], list[Problem]]:
    """Parse raw mappings into check models; a check that does not parse is ``None`` and
    its problems (unknown type with a "did you mean", bad fields) are returned."""
    out: list[BaseCheck | None] = []
    problems: list[Problem] = []
    for i, item in enumerate(raw):
        if isinstance(item, BaseCheck):
            out.append(item)
            continue
        line = _line(lines, i)
        label = _label(item, i)
        if not isinstance(item, Mapping):
            problems.append(Problem(f"check #{i + 1}: expected a mapping", file, line))
            out.append(None)
            continue
        t = item.get("type")
        if t not in CHECK_TYPES:
            problems.append(
                Problem(
                    f"{label}: unknown check type {t!r}" if t else f"{label}: missing 'type'",
                    file,
                    line,
                    hint=(did_you_mean(str(t), CHECK_TYPES) if t else None)
                    or "types: " + ", ".join(CHECK_TYPES),
                )
            )
            out.append(None)
            continue
        try:
            out.append(_ADAPTER.validate_python(dict(item)))
        except ValidationError as e:
            fields = set(CHECK_TYPES[str(t)].model_fields) | {"as", "dimension"}
            for err in e.errors():
                loc = [str(x) for x in err["loc"] if str(x) != t]
                where = ".".join(loc)
                hint = None
                if err["type"] == "extra_forbidden" and loc:
                    hint = did_you_mean(loc[-1], fields)
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(
                    Problem(f"{label}: {where + ': ' if where else ''}{msg}", file, line, hint=hint)
                )
            out.append(None)
    return out, problems


def validate_checks(
    checks: Sequence[Any],
    columns: Mapping[str, str],
    *,
    file: str | None = None,
    lines: Sequence[int | None] | Mapping[int, int] | None = None,
    references: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Problem]:
    """Every problem of ``checks`` (models or raw mappings) against ``columns`` (name →
    DuckDB type). ``references`` (dataset name → its columns), when given, also validates
    relationship/reconcile/reference_match targets and their columns."""
    line_list: Sequence[int | None] | None = (
        [lines.get(i) for i in range(len(checks))] if isinstance(lines, Mapping) else lines
    )
    parsed, problems = parse_checks(checks, file=file, lines=line_list)
    lower = {k.lower(): v for k, v in columns.items()}
    seen: dict[str, int] = {}
    for i, c in enumerate(parsed):
        if c is None:
            continue
        line = _line(line_list, i)
        name = c.check_name

        def add(msg: str, hint: str | None = None, *, _n: str = name, _l: Any = line) -> None:
            problems.append(Problem(f"check '{_n}': {msg}", file, _l, hint=hint))

        if name in seen:
            add(
                f"duplicate check name (also check #{seen[name] + 1})",
                "give one of them a distinct 'name:'",
            )
        else:
            seen[name] = i
        for colname in c.referenced_columns():
            if colname.lower() not in lower:
                add(f"unknown column '{colname}'", did_you_mean(colname, columns))
        for label, text in (("where", c.where), ("expr", getattr(c, "expr", None))):
            if not text or (isinstance(c, C.CustomSql) and label == "where"):
                continue
            try:
                tree = parse_condition(text)
            except ValueError as e:
                add(f"{label}: {e}")
                continue
            for colname in free_columns(tree):
                if colname.lower() not in lower:
                    add(f"{label}: unknown column '{colname}'", did_you_mean(colname, columns))
        if isinstance(c, C.CustomSql):
            if c.where:
                add("'where' does not apply to custom_sql: filter inside the query")
            try:
                parse_query(c.sql)
            except ValueError as e:
                add(str(e))
        _type_problems(c, lower, add)
        _reference_problems(c, references, add)
    return problems


def _type_problems(c: BaseCheck, cols: Mapping[str, str], add: Any) -> None:
    def t(name: str | None) -> str | None:
        return cols.get(name.lower()) if name else None

    if isinstance(c, C.Between):
        ct = t(c.column)
        if ct is None:
            return
        bounds = [b for b in (c.min, c.max) if b is not None]
        if is_string(ct):
            add(
                f"between on string column '{c.column}' ({ct})",
                "use length_between or accepted_values, or cast the column",
            )
        elif is_numeric(ct) and any(isinstance(b, str) for b in bounds):
            add(f"between bounds must be numbers for numeric column '{c.column}' ({ct})")
        elif is_temporal(ct) and any(not isinstance(b, str) for b in bounds):
            add(f"between bounds must be date/time strings for column '{c.column}' ({ct})")
        elif not (is_numeric(ct) or is_temporal(ct)):
            add(f"between needs a numeric or temporal column; '{c.column}' is {ct}")
    elif isinstance(c, C.LengthBetween | C.RegexMatch):
        ct = t(c.column)
        if ct is not None and not is_string(ct):
            add(f"{c.type} needs a string column; '{c.column}' is {ct}")
    elif isinstance(c, C.AggregateBetween):
        ct = t(c.column)
        if ct is not None and c.agg != "distinct_count" and not is_numeric(ct):
            add(f"aggregate '{c.agg}' needs a numeric column; '{c.column}' is {ct}")
    elif isinstance(c, C.Freshness | C.Lateness):
        for name in (c.column, getattr(c, "reference", "now")):
            ct = t(name) if name != "now" else None
            if ct is not None and not is_temporal(ct):
                add(f"{c.type} needs a DATE/TIMESTAMP column; '{name}' is {ct}")
    elif isinstance(c, C.ParsableAs):
        try:
            sqlglot.exp.DataType.build(c.as_type, dialect="duckdb")
        except Exception:
            add(f"unknown type {c.as_type!r}", "e.g. INTEGER, DOUBLE, DATE, TIMESTAMP")
    elif isinstance(c, C.AcceptedValues | C.NotAcceptedValues):
        ct = t(c.column)
        if ct is not None and is_numeric(ct):
            bad = [v for v in c.values if isinstance(v, str) and not _is_number(v)]
            if bad:
                add(f"values {bad!r} can never equal numeric column '{c.column}' ({ct})")
    elif isinstance(c, C.ColumnPair):
        a, b = t(c.column_a), t(c.column_b)
        if a and b and _family(a) != _family(b):
            add(f"cannot compare '{c.column_a}' ({a}) with '{c.column_b}' ({b})")
    elif isinstance(c, C.Reconcile) and c.metric == "sum":
        ct = t(c.column)
        if ct is not None and not is_numeric(ct):
            add(f"reconcile sum needs a numeric column; '{c.column}' is {ct}")
    elif isinstance(c, C.Anomaly) and c.column:
        ct = t(c.column)
        if ct is None:
            return
        if c.metric == "freshness_lag" and not is_temporal(ct):
            add(f"anomaly metric freshness_lag needs a DATE/TIMESTAMP column; '{c.column}' is {ct}")
        elif c.metric in ("mean", "min", "max", "sum", "stddev") and not is_numeric(ct):
            add(f"anomaly metric '{c.metric}' needs a numeric column; '{c.column}' is {ct}")
    elif isinstance(c, C.DuplicateRate) and C.parse_fraction(c.max) > 1:
        add(f"max {c.max!r} is above 100%")


def _reference_problems(
    c: BaseCheck, refs: Mapping[str, Mapping[str, str]] | None, add: Any
) -> None:
    target = getattr(c, "to", None)
    if refs is None or not isinstance(target, str):
        return
    if target not in refs:
        add(
            f"unknown reference dataset '{target}'",
            did_you_mean(target, refs)
            or "declare it under 'references:' (check file) or as a dataset",
        )
        return
    rcols = {k.lower() for k in refs[target]}
    need: list[str] = []
    if isinstance(c, C.Relationship):
        need = list(c.to_key)
    elif isinstance(c, C.ReferenceMatch):
        need = [*c.to_keys, c.to_column or c.column]
    elif isinstance(c, C.Reconcile) and c.metric == "sum":
        need = [c.to_column or c.column or ""]
    for n in need:
        if n.lower() not in rcols:
            add(f"unknown column '{n}' in reference '{target}'", did_you_mean(n, refs[target]))


def _family(t: str) -> str:
    if is_numeric(t):
        return "number"
    if is_temporal(t):
        return "time"
    if is_string(t):
        return "string"
    return t.upper()


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _line(lines: Sequence[int | None] | None, i: int) -> int | None:
    if lines is None or i >= len(lines):
        return None
    return lines[i]


def _label(item: Any, i: int) -> str:
    if isinstance(item, Mapping) and item.get("name"):
        return f"check '{item['name']}'"
    if isinstance(item, Mapping) and item.get("type"):
        col = item.get("column")
        return f"check #{i + 1} ({item['type']}{' on ' + str(col) if col else ''})"
    return f"check #{i + 1}"
