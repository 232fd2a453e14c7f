"""Compile checks into sqlglot expressions (DuckDB dialect).

Every row-level check becomes a *failing predicate*: a boolean that is TRUE for a failing
row (NULL and FALSE both mean "not failing", which gives the NULL semantics documented in
:mod:`lockgate.quality.checks` for free). Table-level checks become aggregate *metrics*
over the same scan, or a small query of their own (reconcile's reference side, custom SQL).

User text (``where``, ``expr``, ``custom_sql``) is parsed with sqlglot and re-rendered;
values are sqlglot literals; identifiers are always quoted. Nothing from the user is
formatted into a SQL string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlglot
from sqlglot import exp

from lockgate._duration import parse_seconds
from lockgate.engine.types import is_decimal, is_numeric, is_string, is_tz
from lockgate.quality import checks as C
from lockgate.quality.checks import BaseCheck
from lockgate.sql import col
from lockgate.sql import ident as ident
from lockgate.sql import literal as literal
from lockgate.sql import table_ref as table_ref

#: alias of the audited table inside the fused queries (correlated subqueries use it)
T_ALIAS = "__lg_t"
MASK_COLUMN = "_lg_fail_mask"
FAILED_CHECKS_COLUMN = "_lg_failed_checks"
#: bits per mask column (BIGINT, sign bit unused)
BITS_PER_MASK = 63

Kind = Literal["row", "unique", "relationship", "reference", "table", "custom", "schema"]


def mask_column(bit: int) -> str:
    """Name of the mask column holding ``bit`` (``_lg_fail_mask``, ``_lg_fail_mask_1``…)."""
    j = bit // BITS_PER_MASK
    return MASK_COLUMN if j == 0 else f"{MASK_COLUMN}_{j}"


def bit_value(bit: int) -> int:
    return 1 << (bit % BITS_PER_MASK)


def parse_condition(text: str) -> exp.Expr:
    """Parse one SQL boolean expression (raises ``ValueError`` with the parser's message)."""
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.SqlglotError as e:
        raise ValueError(f"cannot parse SQL expression {text!r}: {_first_line(e)}") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise ValueError(f"expected one SQL expression, got {len(trees)}: {text!r}")
    tree = trees[0]
    if tree is None or isinstance(tree, exp.Query | exp.DDL | exp.DML | exp.Command):
        raise ValueError(f"expected a SQL boolean expression, not a statement: {text!r}")
    return tree


def parse_query(text: str) -> exp.Query:
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except sqlglot.errors.SqlglotError as e:
        raise ValueError(f"cannot parse SQL query: {_first_line(e)}") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise ValueError("custom_sql must be exactly one SELECT query returning the failing rows")
    return trees[0]


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def free_columns(tree: exp.Expr) -> list[str]:
    """Column names referenced by ``tree`` outside any subquery."""
    out: list[str] = []
    for c in tree.find_all(exp.Column):
        if c.find_ancestor(exp.Query) is None or c.find_ancestor(exp.Query) is tree:
            out.append(c.name)
    return out


# ---- compiled form -------------------------------------------------------------------------


@dataclass
class CompiledCheck:
    index: int
    check: BaseCheck
    name: str
    kind: Kind
    scope: exp.Expr | None = None  # the parsed ``where``
    fail: exp.Expr | None = None  # row-level: TRUE = failing (scope included)
    bit: int | None = None
    metric: exp.Expr | None = None  # table-level aggregate (observed value)
    ok: exp.Expr | None = None  # table-level SQL verdict (freshness)
    ref_metric: exp.Query | None = None  # reconcile: the reference side (own query)
    custom: exp.Query | None = None  # custom_sql: the failing-rows query (tables bound)
    unique_count: exp.Query | None = None  # unique: rows in duplicate groups (hash aggregate)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def row_level(self) -> bool:
        return self.bit is not None


@dataclass
class Context:
    table: str
    columns: Mapping[str, str]
    references: Mapping[str, str]
    now: datetime
    dataset: str | None = None
    sample_size: int = 5


def _sample_safe(name: str, ctx: Context) -> exp.Expr:
    t = ctx.columns.get(name, "VARCHAR")
    if t.upper() == "BOOLEAN" or is_string(t) or (is_numeric(t) and not is_decimal(t)):
        return col(name)
    return exp.Cast(this=col(name), to=exp.DataType.build("VARCHAR"))


def _and(*parts: exp.Expr | None) -> exp.Expr | None:
    ps = [p for p in parts if p is not None]
    if not ps:
        return None
    return exp.and_(*ps) if len(ps) > 1 else ps[0]


def _paren(e: exp.Expr) -> exp.Expr:
    return e if isinstance(e, exp.Column | exp.Paren | exp.Literal) else exp.Paren(this=e)


def _not_null(cols: Sequence[str], table: str | None = None) -> exp.Expr:
    e = _and(*[exp.Not(this=exp.Is(this=col(c, table), expression=exp.Null())) for c in cols])
    assert e is not None
    return e


def _key_expr(cols: Sequence[str], table: str | None = None) -> exp.Expr:
    if len(cols) == 1:
        return col(cols[0], table)
    return exp.Tuple(expressions=[col(c, table) for c in cols])


def _interval_us(seconds: float) -> exp.Interval:
    return exp.Interval(
        this=exp.Literal.string(str(round(seconds * 1_000_000))), unit=exp.Var(this="MICROSECOND")
    )


def _ts_literal(ts: datetime, col_type: str) -> exp.Expr:
    """``ts`` as a literal comparable with a column of ``col_type`` (UTC for naive columns)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    if is_tz(col_type):
        return exp.Cast(
            this=exp.Literal.string(ts.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMPTZ")
        )
    naive = ts.astimezone(UTC).replace(tzinfo=None)
    return exp.Cast(
        this=exp.Literal.string(naive.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMP")
    )


def _text(v: object) -> str:
    """A YAML scalar as the text DuckDB would cast it to (``true``, ``12``, ``2.5``)."""
    return str(v).lower() if isinstance(v, bool) else str(v)


def _bound(v: object, col_type: str) -> exp.Expr:
    if isinstance(v, str):
        return exp.Cast(
            this=exp.Literal.string(v), to=exp.DataType.build(col_type, dialect="duckdb")
        )
    return literal(v)


def bind_tables(tree: exp.Query, ctx: Context) -> exp.Query:
    """Point table names in user SQL at DuckDB relations: the dataset's own name (or
    ``this``) → the audited table; a reference name → its registered relation."""
    names = {k.lower(): v for k, v in ctx.references.items()}
    own = {"this"} | ({ctx.dataset.lower()} if ctx.dataset else set())

    def repl(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Table)
            and not node.args.get("db")
            and isinstance(node.this, exp.Identifier)
        ):
            n = node.name.lower()
            target = ctx.table if n in own else names.get(n)
            if target is not None:
                alias = node.args.get("alias") or exp.TableAlias(this=ident(node.name))
                return exp.Table(this=ident(target), alias=alias)
        return node

    out = tree.transform(repl)
    assert isinstance(out, exp.Query)
    return out


# ---- compile -------------------------------------------------------------------------------


def compile_checks(checks: Sequence[BaseCheck], ctx: Context) -> list[CompiledCheck]:
    """Compile every check; row-level ones get consecutive mask bits in declaration order."""
    out: list[CompiledCheck] = []
    bit = 0
    for i, c in enumerate(checks):
        cc = compile_check(i, c, ctx)
        if cc.kind in ("row", "unique", "relationship", "reference"):
            cc.bit = bit
            bit += 1
        out.append(cc)
    return out


def compile_check(index: int, c: BaseCheck, ctx: Context) -> CompiledCheck:
    """One check → its compiled form, through the rule registered for its type."""
    scope = parse_condition(c.where) if c.where and not isinstance(c, C.CustomSql) else None
    cc = CompiledCheck(index=index, check=c, name=c.check_name, kind="row", scope=scope)
    row_rule = ROW_RULES.get(type(c))
    if row_rule is None:
        table_rule = TABLE_RULES.get(type(c))
        if table_rule is None:
            raise TypeError(f"no compile rule for check type {type(c).__name__}")
        cc.kind = "table"
        table_rule(cc, c, ctx)
        return cc
    pred = row_rule(cc, c, ctx)
    cc.fail = _and(scope and _paren(scope), _paren(pred))
    return cc


# ---- row-level rules: each returns the failing predicate (the ``where`` scope is added by
# compile_check); rules that need their own pass set ``cc.kind`` and its query

RowRule = Callable[[CompiledCheck, Any, Context], exp.Expr]
TableRule = Callable[[CompiledCheck, Any, Context], None]


def _ctype(ctx: Context, name: str) -> str:
    return ctx.columns.get(name, "VARCHAR")


def _not_null_rule(cc: CompiledCheck, c: C.NotNull, ctx: Context) -> exp.Expr:
    return exp.Is(this=col(c.column), expression=exp.Null())


def _values_rule(
    cc: CompiledCheck, c: C.AcceptedValues | C.NotAcceptedValues, ctx: Context
) -> exp.Expr:
    if is_string(_ctype(ctx, c.column)):
        # YAML numbers against a text column compare as text, not by casting the column
        vals: list[exp.Expr] = [exp.Literal.string(_text(v)) for v in c.values]
    else:
        vals = [literal(v) for v in c.values]
    inn = exp.In(this=col(c.column), expressions=vals)
    return exp.Not(this=inn) if isinstance(c, C.AcceptedValues) else inn


def _regex_rule(cc: CompiledCheck, c: C.RegexMatch, ctx: Context) -> exp.Expr:
    return exp.Not(
        this=exp.RegexpFullMatch(this=col(c.column), expression=exp.Literal.string(c.pattern))
    )


def _length_rule(cc: CompiledCheck, c: C.LengthBetween, ctx: Context) -> exp.Expr:
    return _or_bounds(exp.Length(this=col(c.column)), c.min, c.max, False, False, "BIGINT")


def _parsable_rule(cc: CompiledCheck, c: C.ParsableAs, ctx: Context) -> exp.Expr:
    target = exp.DataType.build(c.as_type, dialect="duckdb")
    return exp.and_(
        exp.Not(this=exp.Is(this=col(c.column), expression=exp.Null())),
        exp.Is(this=exp.TryCast(this=col(c.column), to=target), expression=exp.Null()),
    )


def _between_rule(cc: CompiledCheck, c: C.Between, ctx: Context) -> exp.Expr:
    return _or_bounds(
        col(c.column), c.min, c.max, c.min_exclusive, c.max_exclusive, _ctype(ctx, c.column)
    )


def _expression_rule(cc: CompiledCheck, c: C.Expression, ctx: Context) -> exp.Expr:
    return exp.Not(this=_paren(parse_condition(c.expr)))


_COMPARE: dict[str, type[exp.Binary]] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}


def _column_pair_rule(cc: CompiledCheck, c: C.ColumnPair, ctx: Context) -> exp.Expr:
    cmp = _COMPARE[c.op](this=col(c.column_a), expression=col(c.column_b))
    return exp.Not(this=exp.Paren(this=cmp))


def _lateness_rule(cc: CompiledCheck, c: C.Lateness, ctx: Context) -> exp.Expr:
    seconds = parse_seconds(c.max_delay)
    if c.reference == "now":
        cutoff = _ts_literal(ctx.now - timedelta(seconds=seconds), _ctype(ctx, c.column))
    else:
        cutoff = exp.Sub(this=col(c.reference), expression=_interval_us(seconds))
    return exp.LT(this=col(c.column), expression=cutoff)


def _duplicate_groups(key: Sequence[str], cond: exp.Expr | None, ctx: Context) -> exp.Select:
    return (
        exp.select(*[col(k) for k in key])
        .from_(table_ref(ctx.table))
        .where(cond)
        .group_by(*[col(k) for k in key])
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )


def _unique_rule(cc: CompiledCheck, c: C.Unique, ctx: Context) -> exp.Expr:
    cc.kind = "unique"
    key = c.key
    inner = _and(_not_null(key), cc.scope)
    dup = _duplicate_groups(key, inner, ctx)
    groups = _duplicate_groups(key, inner, ctx).select(exp.Count(this=exp.Star()).as_("__lg_n"))
    n = exp.column("__lg_n")
    sample = exp.func(
        "struct_pack",
        *[exp.PropertyEQ(this=ident(k), expression=_sample_safe(k, ctx)) for k in key],
        exp.PropertyEQ(this=ident("_lg_count"), expression=n.copy()),
    )
    cc.unique_count = exp.select(
        exp.Cast(
            this=exp.Coalesce(this=exp.Sum(this=n.copy()), expressions=[exp.Literal.number(0)]),
            to=exp.DataType.build("BIGINT"),
        ),
        exp.func("arg_min", sample, n.copy(), exp.Literal.number(ctx.sample_size)),
    ).from_(groups.subquery("__lg_g"))
    pred = _and(_not_null(key), exp.In(this=_key_expr(key), query=dup.subquery()))
    assert pred is not None
    return pred


def _relationship_rule(cc: CompiledCheck, c: C.Relationship, ctx: Context) -> exp.Expr:
    cc.kind = "relationship"
    p = "__lg_p"
    parent_q = (
        exp.select(*[col(k, p) for k in c.to_key])
        .from_(table_ref(ctx.references[c.to], p))
        .where(_not_null(c.to_key, p))
    )
    pred = _and(
        _not_null(c.key),
        exp.Not(this=exp.In(this=_key_expr(c.key), query=parent_q.subquery())),
    )
    assert pred is not None
    return pred


def _reference_rule(cc: CompiledCheck, c: C.ReferenceMatch, ctx: Context) -> exp.Expr:
    cc.kind = "reference"
    r, t = "__lg_r", T_ALIAS
    on = [
        exp.EQ(this=col(rk, r), expression=col(k, t))
        for k, rk in zip(c.keys, c.to_keys, strict=True)
    ]
    a, b = col(c.column, t), col(c.to_column or c.column, r)
    if c.tolerance:
        differs: exp.Expr = exp.GT(
            this=exp.Abs(this=exp.Sub(this=a, expression=b)), expression=literal(c.tolerance)
        )
    else:
        differs = exp.NEQ(this=a, expression=b)
    sub = (
        exp.select(exp.Literal.number(1))
        .from_(table_ref(ctx.references[c.to], r))
        .where(_and(*on, differs))
    )
    return exp.Exists(this=sub)


#: row-level check type → its failing predicate (one bit in the fused scan's mask)
ROW_RULES: dict[type[BaseCheck], RowRule] = {
    C.NotNull: _not_null_rule,
    C.AcceptedValues: _values_rule,
    C.NotAcceptedValues: _values_rule,
    C.RegexMatch: _regex_rule,
    C.LengthBetween: _length_rule,
    C.ParsableAs: _parsable_rule,
    C.Between: _between_rule,
    C.Expression: _expression_rule,
    C.ColumnPair: _column_pair_rule,
    C.Lateness: _lateness_rule,
    C.Unique: _unique_rule,
    C.Relationship: _relationship_rule,
    C.ReferenceMatch: _reference_rule,
}


def _or_bounds(
    value: exp.Expr,
    lo: object,
    hi: object,
    lo_excl: bool,
    hi_excl: bool,
    col_type: str,
) -> exp.Expr:
    parts: list[exp.Expr] = []
    if lo is not None:
        b = _bound(lo, col_type)
        parts.append(
            exp.LTE(this=value, expression=b) if lo_excl else exp.LT(this=value, expression=b)
        )
    if hi is not None:
        b = _bound(hi, col_type)
        parts.append(
            exp.GTE(this=value, expression=b) if hi_excl else exp.GT(this=value, expression=b)
        )
    if len(parts) == 1:
        return parts[0]
    return exp.Paren(this=exp.or_(*parts))


def _count_if(cond: exp.Expr | None) -> exp.Expr:
    cnt = exp.Count(this=exp.Star())
    return cnt if cond is None else exp.Filter(this=cnt, expression=exp.Where(this=cond))


def _agg_filter(agg: exp.Expr, cond: exp.Expr | None) -> exp.Expr:
    return agg if cond is None else exp.Filter(this=agg, expression=exp.Where(this=cond))


def _double(e: exp.Expr) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


# ---- table-level rules: each sets the check's metric (and verdict/own query where needed)


def _required_columns_rule(cc: CompiledCheck, c: C.RequiredColumns, ctx: Context) -> None:
    cc.kind = "schema"


def _row_count_rule(cc: CompiledCheck, c: C.RowCount, ctx: Context) -> None:
    cc.metric = _count_if(cc.scope)


def _duplicate_rate_rule(cc: CompiledCheck, c: C.DuplicateRate, ctx: Context) -> None:
    cond = _and(_not_null(c.key), cc.scope)
    n = _count_if(cond)
    d = _agg_filter(exp.Count(this=exp.Distinct(expressions=[_key_expr(c.key)])), cond)
    cc.metric = exp.Div(
        this=_double(exp.Sub(this=n, expression=d)),
        expression=exp.Nullif(this=n, expression=exp.Literal.number(0)),
    )


def _aggregate_rule(cc: CompiledCheck, c: C.AggregateBetween, ctx: Context) -> None:
    x = col(c.column)
    if c.agg == "median":
        agg: exp.Expr = exp.Median(this=x)
    elif c.agg == "quantile":
        agg = exp.Anonymous(this="quantile_cont", expressions=[x, literal(c.q)])
    else:
        agg = _aggregate(c.agg, x)
    cc.metric = _double(_agg_filter(agg, cc.scope))


def _aggregate(name: str, x: exp.Expr) -> exp.Expr:
    """``mean`` / ``stddev`` / ``sum`` / ``min`` / ``max`` / ``distinct_count`` of ``x``."""
    if name == "distinct_count":
        return exp.Count(this=exp.Distinct(expressions=[x]))
    build = {
        "mean": exp.Avg,
        "stddev": exp.StddevSamp,
        "sum": exp.Sum,
        "min": exp.Min,
        "max": exp.Max,
    }[name]
    return build(this=x)


def _freshness_rule(cc: CompiledCheck, c: C.Freshness, ctx: Context) -> None:
    ctype = ctx.columns.get(c.column, "TIMESTAMP")
    cutoff = _ts_literal(ctx.now - timedelta(seconds=parse_seconds(c.max_age)), ctype)
    mx = _agg_filter(exp.Max(this=col(c.column)), cc.scope)
    cc.metric = exp.Cast(this=mx, to=exp.DataType.build("VARCHAR"))
    cc.ok = exp.Coalesce(this=exp.GTE(this=mx.copy(), expression=cutoff), expressions=[exp.false()])


def _reconcile_rule(cc: CompiledCheck, c: C.Reconcile, ctx: Context) -> None:
    if c.metric == "row_count":
        cc.metric = _double(_count_if(cc.scope))
        ref_agg: exp.Expr = exp.Count(this=exp.Star())
    else:
        assert c.column is not None
        cc.metric = _double(_agg_filter(exp.Sum(this=col(c.column)), cc.scope))
        ref_agg = exp.Sum(this=col(c.to_column or c.column))
    cc.ref_metric = exp.select(_double(ref_agg)).from_(table_ref(ctx.references[c.to]))


def _anomaly_rule(cc: CompiledCheck, c: C.Anomaly, ctx: Context) -> None:
    """The batch's metric; the verdict against its history is the audit's (``baselines``)."""
    if c.metric == "row_count":
        cc.metric = _double(_count_if(cc.scope))
        return
    assert c.column is not None
    x = col(c.column)
    if c.metric == "null_rate":
        n = _count_if(cc.scope)
        cc.metric = exp.Div(
            this=_double(_count_if(_and(exp.Is(this=x, expression=exp.Null()), cc.scope))),
            expression=exp.Nullif(this=n, expression=exp.Literal.number(0)),
        )
        return
    if c.metric == "freshness_lag":
        ctype = ctx.columns.get(c.column, "TIMESTAMP")
        newest = _agg_filter(exp.Max(this=x), cc.scope)
        now = _ts_literal(ctx.now, ctype)
        cc.metric = _double(
            exp.Sub(this=exp.TimeToUnix(this=now), expression=exp.TimeToUnix(this=newest))
        )
        return
    cc.metric = _double(_agg_filter(_aggregate(c.metric, x), cc.scope))


def _custom_sql_rule(cc: CompiledCheck, c: C.CustomSql, ctx: Context) -> None:
    cc.kind = "custom"
    cc.custom = bind_tables(parse_query(c.sql), ctx)


#: table-level check type → sets its metric over the shared scan (or its own query)
TABLE_RULES: dict[type[BaseCheck], TableRule] = {
    C.RequiredColumns: _required_columns_rule,
    C.RowCount: _row_count_rule,
    C.DuplicateRate: _duplicate_rate_rule,
    C.AggregateBetween: _aggregate_rule,
    C.Freshness: _freshness_rule,
    C.Reconcile: _reconcile_rule,
    C.Anomaly: _anomaly_rule,
    C.CustomSql: _custom_sql_rule,
}
