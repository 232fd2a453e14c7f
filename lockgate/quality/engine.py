"""The fused audit: every check of a batch in as few passes over the data as possible.

Count mode (``mark=False``, e.g. ``lockgate check``) is **one SQL statement**: one aggregate
pass over the table computes ``count(*) FILTER (WHERE <failing predicate>)`` for every
row-level check, the scope size of every ``where``, and every table-level metric; each
``unique`` check adds one hash aggregate (``GROUP BY key HAVING count(*) > 1``) and each
``relationship`` a mark join against the parent's key set (DuckDB builds the hash table on
the small parent side), both cross-joined into the same statement.

Mark mode (``mark=True``, the run loop) is **two passes**. When ``table`` is a DuckDB base
table (the run loop's staged batch) marking is *sparse*: pass 1 materialises only the failing
rows' ``rowid`` and mask — ``<table>__lg_marks(_lg_rowid, _lg_fail_mask…)`` (bit ``i`` set =
row-level check ``i`` failed; 63 checks per BIGINT column, ``_lg_fail_mask_1``… beyond), a
few thousand rows instead of a copy of the batch. ``rowid`` is stable while the table is not
modified, so the split reads the staged table itself: passing rows are
``rowid NOT IN (SELECT _lg_rowid FROM marks WHERE <bits>)`` (a hash anti-join against the
small marks table), failing rows a join on ``rowid``. For any other relation (a view, a
registered Arrow dataset: no ``rowid``) pass 1 materialises ``<table>__lg_marked`` = every
column + the mask column(s) as before. ``unique`` marks by a mark join against the (small)
set of duplicated keys, ``relationship`` against the parent key set — never a window over
the whole table. Pass 2 computes every count (from the mask columns) and every table-level
metric in one aggregate; measured, this is cheaper than evaluating the predicates twice,
and the gate then splits passing/failing rows without re-evaluating anything.

``CheckResult.seconds``: checks fused into a pass share it equally (the pass time divided by
the number of checks in it); sampling and custom SQL are attributed to their own check.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate.engine.base import Engine, EngineError
from lockgate.engine.session import as_engine
from lockgate.engine.types import is_decimal, is_numeric, is_string
from lockgate.errors import ConfigError
from lockgate.quality import checks as C
from lockgate.quality.checks import BaseCheck
from lockgate.quality.compile import (
    BITS_PER_MASK,
    FAILED_CHECKS_COLUMN,
    MASK_COLUMN,
    T_ALIAS,
    CompiledCheck,
    Context,
    _count_if,
    bit_value,
    col,
    compile_checks,
    ident,
    mask_column,
    table_ref,
)

if TYPE_CHECKING:
    from lockgate.engine.session import EngineLike

log = logging.getLogger(__name__)

#: column of the sparse marks table holding the failing row's ``rowid`` in the audited table
ROWID_COLUMN = "_lg_rowid"
_M_ALIAS = "__lg_m"


@dataclass
class CheckResult:
    """The outcome of one check on one batch."""

    name: str
    type: str
    dimension: str
    severity: str
    failing_rows: int
    fraction: float | None
    passed: bool
    row_level: bool
    observed: Any = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""
    rows_in_scope: int = 0
    threshold: str | int | float = 0
    bit: int | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["observed"], float) and not math.isfinite(d["observed"]):
            d["observed"] = str(d["observed"])
        return d


@dataclass
class AuditResult:
    """All check results of a batch plus (mark mode) what the split reads.

    Split with ``SELECT … FROM marked_table WHERE passing_predicate(decision)`` and
    :meth:`failing_rows_query`. ``marked_table`` is the audited table itself when marking
    was sparse (``marks_table`` then holds the failing rows' ``rowid`` + mask), otherwise a
    materialised copy with the mask column(s). :attr:`created_tables` lists what to drop.
    """

    table: str
    total_rows: int
    results: list[CheckResult]
    marked_table: str | None
    columns: list[str]
    mask_columns: list[str]
    seconds: float = 0.0
    marks_table: str | None = None

    @property
    def created_tables(self) -> list[str]:
        """Tables the audit created (drop them once the batch is split)."""
        out = [t for t in (self.marked_table, self.marks_table) if t and t != self.table]
        return out

    @property
    def passed(self) -> bool:
        """No error-severity check failed."""
        return all(r.passed or r.severity != C.Severity.ERROR for r in self.results)

    def result(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    # -- splitting the marked table --------------------------------------------------------
    def _bits(self, bits: Any = None) -> list[int]:
        if bits is None:
            return [r.bit for r in self.results if r.bit is not None]
        if hasattr(bits, "quarantine_bits"):
            return sorted(bits.quarantine_bits)
        return sorted(int(b) for b in bits)

    def _mask_predicate(self, bits: Any, table: str | None = None) -> exp.Expr | None:
        """TRUE when the mask column(s) (of ``table``) have any of ``bits`` set; None if no
        bits are asked for."""
        masks: dict[str, int] = {}
        for b in self._bits(bits):
            masks[mask_column(b)] = masks.get(mask_column(b), 0) | bit_value(b)
        if not masks:
            return None
        parts = [
            exp.NEQ(
                this=exp.Paren(
                    this=exp.BitwiseAnd(this=col(m, table), expression=exp.Literal.number(v))
                ),
                expression=exp.Literal.number(0),
            )
            for m, v in masks.items()
        ]
        return exp.or_(*parts) if len(parts) > 1 else parts[0]

    def failing_predicate(self, bits: Any = None) -> exp.Expr:
        """TRUE for a row (of ``marked_table``) failing any of ``bits`` (default: every
        row-level check)."""
        cond = self._mask_predicate(bits, self.marks_table)
        if cond is None:
            return exp.false()
        if self.marks_table is None:
            return cond
        sub = exp.select(col(ROWID_COLUMN, self.marks_table)).from_(table_ref(self.marks_table))
        return exp.In(this=exp.column("rowid"), query=sub.where(cond).subquery())

    def passing_predicate(self, bits: Any = None) -> exp.Expr:
        """TRUE for a row failing none of ``bits`` (a GateDecision, bit numbers, or None =
        all row-level checks)."""
        return exp.Not(this=exp.Paren(this=self.failing_predicate(bits)))

    def failing_names_expr(self, bits: Any = None, mask_table: str | None = None) -> exp.Expr:
        """``VARCHAR[]`` of the names of the checks (among ``bits``) a row failed, from the
        mask column(s) of ``mask_table`` (default: unqualified, i.e. the marked table)."""
        wanted = set(self._bits(bits))
        items: list[exp.Expr] = [
            exp.Case(
                ifs=[
                    exp.If(
                        this=self._mask_predicate([r.bit], mask_table),
                        true=exp.Literal.string(r.name),
                    )
                ]
            )
            for r in self.results
            if r.bit is not None and r.bit in wanted
        ]
        if not items:
            return exp.Cast(this=exp.Array(expressions=[]), to=exp.DataType.build("VARCHAR[]"))
        x = exp.to_identifier("x")
        return exp.ArrayFilter(
            this=exp.Array(expressions=items),
            expression=exp.Lambda(
                this=exp.Not(this=exp.Is(this=x.copy(), expression=exp.Null())), expressions=[x]
            ),
        )

    def _source(self) -> str:
        if self.marked_table is None:
            raise ValueError("audit(..., mark=False) has no marked table to split")
        return self.marked_table

    def passing_rows_query(
        self, columns: Sequence[str] | None = None, bits: Any = None
    ) -> exp.Select:
        """``SELECT columns FROM marked WHERE <no quarantining bit set>``."""
        cols = [col(c) for c in (columns or self.columns)]
        return (
            exp.select(*cols).from_(table_ref(self._source())).where(self.passing_predicate(bits))
        )

    def failing_rows_query(self, columns: Any = None, bits: Any = None) -> exp.Select:
        """Failing rows (any of ``bits``) with ``_lg_failed_checks VARCHAR[]``.

        ``columns`` may also be given a GateDecision (then it is used as ``bits``)."""
        if columns is not None and hasattr(columns, "quarantine_bits"):
            columns, bits = None, columns
        if self.marks_table is not None:
            # sparse: join the (small) marks to the audited table on rowid
            cond = self._mask_predicate(bits, _M_ALIAS) or exp.false()
            on = exp.EQ(this=col("rowid", T_ALIAS), expression=col(ROWID_COLUMN, _M_ALIAS))
            return (
                exp.select(
                    *[col(c, T_ALIAS) for c in (columns or self.columns)],
                    exp.alias_(self.failing_names_expr(bits, _M_ALIAS), FAILED_CHECKS_COLUMN),
                )
                .from_(table_ref(self._source(), T_ALIAS))
                .join(table_ref(self.marks_table, _M_ALIAS), on=on, join_type="INNER")
                .where(cond)
            )
        cols = [col(c) for c in (columns or self.columns)]
        return (
            exp.select(*cols, exp.alias_(self.failing_names_expr(bits), FAILED_CHECKS_COLUMN))
            .from_(table_ref(self._source()))
            .where(self.failing_predicate(bits))
        )


# ---- audit ---------------------------------------------------------------------------------


def describe(con: EngineLike, relation: str) -> dict[str, str]:
    """Column name → type of a table/view in the engine's dialect (no data read)."""
    return as_engine(con).query_columns(exp.select("*").from_(table_ref(relation)))


def audit(
    con: EngineLike,
    table: str,
    checks: Sequence[BaseCheck],
    *,
    references: Mapping[str, str] | None = None,
    mark: bool = False,
    now: datetime | None = None,
    sample_size: int = 5,
    key_columns: Sequence[str] = (),
    dataset: str | None = None,
) -> AuditResult:
    """Run ``checks`` on relation ``table`` of the engine ``con`` (see the module docstring).

    ``references`` maps dataset names used by relationship/reconcile/reference_match/
    custom SQL to relations registered on ``con``; ``dataset`` is the audited dataset's own
    name as custom SQL refers to it. Raises :class:`ConfigError` (before reading data) if
    a check does not fit the table.
    """
    from lockgate.quality.validate import validate_checks

    t0 = time.perf_counter()
    con = as_engine(con)
    references = dict(references or {})
    columns = describe(con, table)
    ref_cols = {}
    for name, rel in references.items():
        try:
            ref_cols[name] = describe(con, rel)
        except EngineError:
            continue
    problems = validate_checks(checks, columns, references=ref_cols)
    if problems:
        raise ConfigError(problems)
    ctx = Context(
        table, columns, references, now or datetime.now(UTC), dataset, max(sample_size, 1)
    )
    compiled = compile_checks(checks, ctx)
    n_bits = sum(1 for c in compiled if c.bit is not None)
    mask_cols = [mask_column(b) for b in range(0, n_bits, BITS_PER_MASK)] or [MASK_COLUMN]
    plain_cols = [c for c in columns if c not in mask_cols]

    t_pass = time.perf_counter()
    row, marked, marks = _run_pass(con, table, compiled, mask_cols, columns, mark)
    pass_seconds = time.perf_counter() - t_pass

    total = int(row["__lg_total"])
    fused = [c for c in compiled if c.kind not in ("custom", "schema")]
    share = pass_seconds / max(len(fused), 1)
    results: list[CheckResult] = []
    for cc in compiled:
        r = _result(cc, row, total, columns)
        r.seconds = share if cc in fused else 0.0
        if cc.kind == "custom":
            _run_custom(con, cc, r, total, sample_size)
        results.append(r)

    if sample_size > 0:
        _samples(
            con, table, marked, marks, compiled, results, columns, key_columns, sample_size, row
        )
    res = AuditResult(
        table=table,
        total_rows=total,
        results=results,
        marked_table=marked,
        columns=plain_cols,
        mask_columns=mask_cols,
        seconds=time.perf_counter() - t0,
        marks_table=marks,
    )
    log.debug("audited %s: %d rows, %d checks in %.3fs", table, total, len(checks), res.seconds)
    return res


def _run_pass(
    con: Engine,
    table: str,
    compiled: Sequence[CompiledCheck],
    mask_cols: Sequence[str],
    columns: Mapping[str, str],
    mark: bool,
) -> tuple[dict[str, Any], str | None, str | None]:
    """The counting pass (plus, in mark mode, the marking pass before it): (the aggregate
    row, the marked table, the sparse marks table)."""
    if not mark:
        return _aggregate(con, table, compiled, marked_mode=False), None, None
    if _has_stable_rowid(con, table, columns):
        marks = table + "__lg_marks"
        _create_marks(con, table, marks, compiled, mask_cols)
        return _aggregate(con, table, compiled, marked_mode=True, marks=marks), table, marks
    marked = table + "__lg_marked"
    _create_marked(con, table, marked, compiled, mask_cols)
    return _aggregate(con, marked, compiled, marked_mode=True), marked, None


def _mask_expr(compiled: Sequence[CompiledCheck], j: int) -> exp.Expr:
    """BIGINT bitmask of the row-level checks with bits in mask column ``j``."""
    terms: list[exp.Expr] = []
    for cc in compiled:
        if cc.bit is None or cc.bit // BITS_PER_MASK != j:
            continue
        assert cc.fail is not None
        terms.append(
            exp.Case(
                ifs=[exp.If(this=cc.fail, true=exp.Literal.number(bit_value(cc.bit)))],
                default=exp.Literal.number(0),
            )
        )
    if not terms:
        return exp.Cast(this=exp.Literal.number(0), to=exp.DataType.build("BIGINT"))
    e: exp.Expr = terms[0]
    for t in terms[1:]:
        e = exp.BitwiseOr(this=e, expression=t)
    return exp.Cast(this=e, to=exp.DataType.build("BIGINT"))


def _has_stable_rowid(con: Engine, table: str, columns: Mapping[str, str]) -> bool:
    """Whether ``table`` is a base table whose ``rowid`` pseudo-column is visible (not a
    view or a registered Arrow/pandas relation, and no user column named ``rowid``)."""
    return not any(c.lower() == "rowid" for c in columns) and con.has_rowid(table)


def _create_marks(
    con: Engine,
    table: str,
    marks: str,
    compiled: Sequence[CompiledCheck],
    mask_cols: Sequence[str],
) -> None:
    """Sparse marking: ``marks(_lg_rowid, mask…)`` for the failing rows of ``table`` only."""
    inner = exp.select(
        exp.alias_(col("rowid", T_ALIAS), ROWID_COLUMN, quoted=True),
        *[exp.alias_(_mask_expr(compiled, j), m, quoted=True) for j, m in enumerate(mask_cols)],
    ).from_(table_ref(table, T_ALIAS))
    any_bit = exp.or_(*[exp.NEQ(this=col(m), expression=exp.Literal.number(0)) for m in mask_cols])
    sel = exp.select(exp.Star()).from_(inner.subquery("__lg_k")).where(any_bit)
    con.execute(exp.Create(this=table_ref(marks), kind="TABLE", expression=sel, replace=True))


def _create_marked(
    con: Engine,
    table: str,
    marked: str,
    compiled: Sequence[CompiledCheck],
    mask_cols: Sequence[str],
) -> None:
    sel = exp.select(
        exp.Column(this=exp.Star(), table=ident(T_ALIAS)),
        *[exp.alias_(_mask_expr(compiled, j), m, quoted=True) for j, m in enumerate(mask_cols)],
    ).from_(table_ref(table, T_ALIAS))
    con.execute(exp.Create(this=table_ref(marked), kind="TABLE", expression=sel, replace=True))


def _aggregate(
    con: Engine,
    source: str,
    compiled: Sequence[CompiledCheck],
    *,
    marked_mode: bool,
    marks: str | None = None,
) -> dict[str, Any]:
    """One statement: the aggregate pass + cross-joined unique/reference subqueries.

    With ``marks`` (sparse marking) the failing counts come from that small table."""
    aggs: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "__lg_total")]
    mark_aggs: list[exp.Expr] = []
    extra: list[exp.Query] = []
    for cc in compiled:
        i = cc.index
        if cc.scope is not None and cc.kind not in ("custom", "schema"):
            aggs.append(exp.alias_(_count_if(cc.scope.copy()), f"__lg_s{i}"))
        if cc.bit is not None:
            if marked_mode:
                cond: exp.Expr = exp.NEQ(
                    this=exp.Paren(
                        this=exp.BitwiseAnd(
                            this=col(mask_column(cc.bit)),
                            expression=exp.Literal.number(bit_value(cc.bit)),
                        )
                    ),
                    expression=exp.Literal.number(0),
                )
                (mark_aggs if marks else aggs).append(exp.alias_(_count_if(cond), f"__lg_c{i}"))
            elif cc.kind == "unique":
                assert cc.unique_count is not None
                q = cc.unique_count.copy()
                q.selects[0].replace(exp.alias_(q.selects[0].copy(), f"__lg_c{i}"))
                q.selects[1].replace(exp.alias_(q.selects[1].copy(), f"__lg_u{i}"))
                extra.append(q)
            else:
                assert cc.fail is not None
                aggs.append(exp.alias_(_count_if(cc.fail.copy()), f"__lg_c{i}"))
        if cc.metric is not None:
            aggs.append(exp.alias_(cc.metric.copy(), f"__lg_m{i}"))
        if cc.ok is not None:
            aggs.append(exp.alias_(cc.ok.copy(), f"__lg_ok{i}"))
        if cc.ref_metric is not None:
            q = cc.ref_metric.copy()
            q.selects[0].replace(exp.alias_(q.selects[0].copy(), f"__lg_r{i}"))
            extra.append(q)
    if mark_aggs:
        assert marks is not None
        extra.append(exp.select(*mark_aggs).from_(table_ref(marks)))
    main = exp.select(*aggs).from_(table_ref(source, T_ALIAS))
    stmt: exp.Select = exp.select(exp.Star()).from_(main.subquery("__lg_main"))
    for k, q in enumerate(extra):
        stmt = stmt.join(q.subquery(f"__lg_x{k}"), join_type="CROSS")
    log.debug("audit pass")
    row = con.fetch_row(stmt)
    assert row
    return row


def _result(
    cc: CompiledCheck, row: Mapping[str, Any], total: int, columns: Mapping[str, str]
) -> CheckResult:
    c = cc.check
    i = cc.index
    scope_rows = int(row.get(f"__lg_s{i}", total)) if cc.scope is not None else total
    r = CheckResult(
        name=cc.name,
        type=str(getattr(c, "type", "")),
        dimension=str(c.dimension),
        severity=str(c.severity),
        failing_rows=0,
        fraction=0.0,
        passed=True,
        row_level=cc.bit is not None,
        rows_in_scope=scope_rows,
        threshold=c.threshold,
        bit=cc.bit,
        description=c.description,
    )
    if cc.bit is not None:
        n = int(row[f"__lg_c{i}"] or 0)
        r.failing_rows = n
        r.fraction = n / scope_rows if scope_rows else 0.0
        allowed = c.allowed_failures(scope_rows)
        r.passed = n <= allowed
        if not r.passed:
            r.message = f"{n:,} of {scope_rows:,} rows fail (allowed: {allowed:g})"
        return r
    if cc.kind == "custom":
        return r  # filled by _run_custom
    ok, observed, msg = _table_verdict(cc, row, columns)
    r.observed = observed
    r.passed = ok
    r.failing_rows = 0 if ok else 1
    r.fraction = None
    r.message = msg
    return r


def _in_bounds(v: float | None, lo: float | None, hi: float | None) -> bool:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return False
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def _table_verdict(
    cc: CompiledCheck, row: Mapping[str, Any], columns: Mapping[str, str]
) -> tuple[bool, Any, str]:
    c = cc.check
    m = row.get(f"__lg_m{cc.index}")
    if isinstance(c, C.RequiredColumns):
        have = {k.lower() for k in columns}
        missing = [x for x in c.columns if x.lower() not in have]
        return not missing, missing, f"missing columns: {', '.join(missing)}" if missing else ""
    if isinstance(c, C.RowCount):
        n = int(m or 0)
        ok = _in_bounds(float(n), c.min, c.max)
        return ok, n, "" if ok else f"{n:,} rows, expected [{c.min}, {c.max}]"
    if isinstance(c, C.DuplicateRate):
        rate = 0.0 if m is None else float(m)
        lim = C.parse_fraction(c.max)
        ok = rate <= lim
        return ok, rate, "" if ok else f"duplicate rate {rate:.4%} > {lim:.4%}"
    if isinstance(c, C.AggregateBetween):
        v = None if m is None else float(m)
        ok = _in_bounds(v, c.min, c.max)
        return ok, v, "" if ok else f"{c.agg}({c.column}) = {v}, expected [{c.min}, {c.max}]"
    if isinstance(c, C.Freshness):
        ok = bool(row.get(f"__lg_ok{cc.index}"))
        return ok, m, "" if ok else f"newest {c.column} = {m} is older than {c.max_age}"
    if isinstance(c, C.Reconcile):
        ref = row.get(f"__lg_r{cc.index}")
        a = 0.0 if m is None else float(m)
        b = 0.0 if ref is None else float(ref)
        tol = C.parse_fraction(c.tolerance) * abs(b)
        ok = abs(a - b) <= tol
        obs = {"value": a, "reference": b}
        return ok, obs, "" if ok else f"{c.metric} {a:g} vs {c.to} {b:g} (tolerance {tol:g})"
    raise TypeError(type(c).__name__)  # pragma: no cover


def _run_custom(con: Engine, cc: CompiledCheck, r: CheckResult, total: int, n: int) -> None:
    t0 = time.perf_counter()
    assert cc.custom is not None
    q = exp.select(exp.Count(this=exp.Star())).from_(cc.custom.copy().subquery("__lg_q"))
    row = con.execute(q).fetchone()
    failing = int(row[0]) if row else 0
    r.failing_rows = failing
    r.fraction = failing / total if total else 0.0
    allowed = cc.check.allowed_failures(total)
    r.passed = failing <= allowed
    r.message = "" if r.passed else f"query returned {failing:,} rows (allowed: {allowed:g})"
    if failing and n > 0:
        sq = exp.select(exp.Star()).from_(cc.custom.copy().subquery("__lg_q")).limit(n)
        safe = [
            exp.alias_(_safe(exp.column(c, quoted=True), t), c, quoted=True)
            for c, t in con.query_columns(sq).items()
        ]
        cur = con.execute(exp.select(*safe).from_(sq.subquery("__lg_s")))
        names = [d[0] for d in cur.description or []]
        r.samples = [dict(zip(names, v, strict=True)) for v in cur.fetchall()]
    r.seconds = time.perf_counter() - t0


def _safe(e: exp.Expr, t: str) -> exp.Expr:
    """Values Python/JSON always receive cleanly: other types as VARCHAR."""
    if t.upper() == "BOOLEAN" or is_string(t) or (is_numeric(t) and not is_decimal(t)):
        return e
    if is_decimal(t):
        return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))
    return exp.Cast(this=e, to=exp.DataType.build("VARCHAR"))


def _samples(
    con: Engine,
    table: str,
    marked: str | None,
    marks: str | None,
    compiled: Sequence[CompiledCheck],
    results: Sequence[CheckResult],
    columns: Mapping[str, str],
    key_columns: Sequence[str],
    n: int,
    row: Mapping[str, Any],
) -> None:
    """Up to ``n`` failing rows per failing row-level check: key columns + the checked
    columns (all columns without keys). One UNION ALL statement, each branch with LIMIT."""
    branches: list[exp.Select] = []
    todo: dict[int, tuple[CheckResult, list[str]]] = {}
    for cc, r in zip(compiled, results, strict=True):
        if cc.bit is None or r.failing_rows == 0:
            continue
        if marked is None and cc.kind == "unique":
            sample = row.get(f"__lg_u{cc.index}") or []
            r.samples = [dict(x) for x in sample[:n]]
            continue
        t0 = time.perf_counter()
        if key_columns:
            cols = list(dict.fromkeys([*key_columns, *cc.check.referenced_columns()]))
            cols = [c for c in cols if c in columns]
        else:
            cols = list(columns)
        pack = exp.func(
            "struct_pack",
            *[
                exp.PropertyEQ(this=ident(c), expression=_safe(col(c, T_ALIAS), columns[c]))
                for c in cols
            ],
        )
        if marked is not None:
            src = table_ref(marked, T_ALIAS)
            probe = AuditResult(table, 0, [], marked, [], [], marks_table=marks)
            cond = probe.failing_predicate([cc.bit])
        else:
            src = table_ref(table, T_ALIAS)
            assert cc.fail is not None
            cond = cc.fail.copy()
        branches.append(
            exp.select(
                exp.alias_(exp.Literal.number(cc.index), "__lg_i"), exp.alias_(pack, "__lg_row")
            )
            .from_(src)
            .where(cond)
            .limit(n)
        )
        todo[cc.index] = (r, cols)
        r.seconds += time.perf_counter() - t0
    if not branches:
        return
    t0 = time.perf_counter()
    parts = [exp.select(exp.Star()).from_(b.subquery(f"__lg_b{k}")) for k, b in enumerate(branches)]
    union: exp.Query = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    log.debug("audit samples")
    for i, rec in con.execute(union).fetchall():
        r, cols = todo[int(i)]
        r.samples.append({k: rec.get(k) for k in cols})
    per = (time.perf_counter() - t0) / len(branches)
    for r, _ in todo.values():
        r.seconds += per


def split_bits(bits: Iterable[int]) -> dict[str, int]:
    """Bit numbers → {mask column: integer mask}."""
    out: dict[str, int] = {}
    for b in bits:
        out[mask_column(b)] = out.get(mask_column(b), 0) | bit_value(b)
    return out
