"""The stages of a time-partitioned dataset (``partition:``), in place of audit → publish.

- :func:`due`: the intervals this step processes — whole intervals from ``partition.start`` up
  to ``now - lag`` that the state store's merged ranges do not cover (a backfill names its
  chunk's intervals); none due: the step is a no-op.
- staging reads only those intervals (a SQL transform: a relation filter DuckDB pushes into
  the query; a source: every row, the others counted as skipped ``outside_due_intervals``).
- :func:`bucket`: one view of the staged rows per interval; rows whose partition column is
  NULL belong to no interval and are quarantined (``partition_null``).
- :func:`audit_intervals`: checks and gate per interval — a bad day is blocked (its rows
  skipped as ``interval_blocked``, the day stays due) or its bad rows quarantined, while the
  good days of the same run publish.
- :func:`quarantine_intervals` then :func:`publish_intervals`: ONE quarantine commit and ONE
  table commit that *replaces* exactly the published intervals (``replace_where``), so
  running an interval again is idempotent. The runner records them as done (merged ranges).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.engine.session import ident, table_ref
from lockgate.errors import GateBlocked, TerminalError
from lockgate.ops import intervals as iv
from lockgate.project.ops_models import PartitionSpec
from lockgate.runloop.context import IntervalOutcome, StepContext, StepState
from lockgate.runloop.due import Due, due_now
from lockgate.runloop.results import AccountingError, StepResult, StepStatus
from lockgate.runloop.stages.audit import audit_view
from lockgate.runloop.stages.gate import blocked
from lockgate.runloop.stages.publish import refuse_other_batch
from lockgate.runloop.stages.quarantine import meta_columns, publish_quarantine, rejects_part
from lockgate.runloop.stages.split import _publish_query
from lockgate.runloop.writes import table_write
from lockgate.storage._predicates import range_predicate
from lockgate.storage.base import CommitTag

if TYPE_CHECKING:
    from lockgate.quality import AuditResult, CheckResult
    from lockgate.quality.gate import GateDecision

log = logging.getLogger(__name__)

#: how a partition column's engine type is compared: a DATE, a naive TIMESTAMP (read as UTC)
#: or a TIMESTAMP WITH TIME ZONE
_KINDS = ("date", "timestamp", "timestamptz")


def _spec(state: StepState) -> PartitionSpec:
    assert state.spec.partition is not None
    return state.spec.partition


def due_intervals(ctx: StepContext, state: StepState) -> Due:
    """The intervals this step would process now (oldest first), and why (see
    :func:`lockgate.runloop.due.due_now`: the plan asks the same)."""
    return due_now(
        ctx.state,
        ctx.project,
        state.spec,
        ctx.now,
        window=(ctx.intervals or {}).get(state.name),
        # no table: the stored ranges say nothing about what it holds
        fresh=ctx.full_refresh or state.table is None,
    )


def due(ctx: StepContext, state: StepState) -> None:
    """Pick the due intervals; the batch's identity includes them."""
    p = _spec(state)
    found = due_intervals(ctx, state)
    state.intervals = todo = found.intervals
    res = state.result
    if not todo:
        res.output_version = state.table.version if state.table is not None else None
        state.end(StepStatus.NOOP, found.describe(p.grain))
        return
    if found.redo or found.kept:
        res.warnings.append(found.describe(p.grain))
    spans = iv.spans(todo)
    res.inputs["intervals"] = [list(s) for s in spans]
    digest = json.dumps([res.batch_id, spans]).encode()
    res.batch_id = hashlib.sha256(digest).hexdigest()[:24]
    ctx.report(state.name, found.describe(p.grain))


def column_kind(spec: PartitionSpec, dataset: str, columns: dict[str, str]) -> str:
    """``date`` / ``timestamp`` / ``timestamptz`` of the partition column, or a clear error."""
    col = spec.column
    if col not in columns:
        raise TerminalError(
            f"dataset '{dataset}': partition column '{col}' is not in its data "
            f"(columns: {', '.join(list(columns)[:20])})",
            hint=did_you_mean(col, columns) or "fix partition.column",
        )
    t = columns[col].upper()
    if t == "DATE":
        if spec.grain == "hour":
            raise TerminalError(
                f"dataset '{dataset}': partition column '{col}' is a DATE, too coarse for "
                "hourly intervals",
                hint="use grain: day or month, or a TIMESTAMP column",
            )
        return "date"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "timestamptz"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    raise TerminalError(
        f"dataset '{dataset}': partition column '{col}' has type {columns[col]}, not a date "
        "or timestamp",
        hint="cast it in the dataset's SQL (CAST(x AS TIMESTAMP)) or pick another column",
    )


def _bound(ts: int, kind: str) -> exp.Expr:
    d = iv.to_datetime(ts)
    if kind == "date":
        return exp.cast(exp.Literal.string(d.date().isoformat()), exp.DataType.Type.DATE)
    if kind == "timestamptz":
        return exp.cast(exp.Literal.string(d.isoformat()), exp.DataType.Type.TIMESTAMPTZ)
    text = d.replace(tzinfo=None).isoformat(sep=" ")
    return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)


def in_ranges(column: str, ranges: list[iv.Interval], kind: str) -> exp.Expr:
    """``column`` in one of the ``[lo, hi)`` ranges (a DuckDB condition)."""
    col = exp.Column(this=ident(column))
    return exp.or_(
        *[
            exp.Paren(
                this=exp.and_(
                    exp.GTE(this=col.copy(), expression=_bound(lo, kind)),
                    exp.LT(this=col.copy(), expression=_bound(hi, kind)),
                )
            )
            for lo, hi in ranges
        ]
    )


def row_filter(state: StepState) -> Callable[[dict[str, str]], str]:
    """The staging filter of a SQL transform: only rows of the due intervals are computed."""
    p = _spec(state)

    def where(columns: dict[str, str]) -> str:
        kind = column_kind(p, state.name, columns)
        return in_ranges(p.column, iv.spans(state.intervals), kind).sql("duckdb")

    return where


def bucket(ctx: StepContext, state: StepState) -> None:
    """The due intervals' outcomes to fill; rows in no due interval counted (skipped or
    quarantined)."""
    p, ses, res = _spec(state), ctx.session, state.result
    kind = column_kind(p, state.name, state.staged_columns)
    col = exp.Column(this=ident(p.column))
    # views are created when an interval is audited (a DDL statement each): empty intervals
    # never get one
    state.outcomes = [
        IntervalOutcome(lo, hi, iv.label(lo, p.grain), f"{state.stage}__p{i}")
        for i, (lo, hi) in enumerate(state.intervals)
    ]
    due_rows = in_ranges(p.column, iv.spans(state.intervals), kind)
    counts = exp.select(
        exp.func("count_if", due_rows),
        exp.func("count_if", exp.Is(this=col, expression=exp.Null())),
    ).from_(table_ref(state.stage))
    row = ses.execute(counts).fetchone()
    in_due, nulls = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    outside = state.staged_rows - in_due - nulls
    res.skip("outside_due_intervals", outside)
    state.null_partition = nulls  # quarantined with the intervals' failing rows
    if nulls:
        res.warnings.append(
            f"{nulls:,} row(s) with a NULL {p.column} belong to no interval: quarantined"
        )


def _counts(ctx: StepContext, state: StepState) -> list[int]:
    """Rows per due interval, in one range join (not one query per interval)."""
    p = _spec(state)
    kind = column_kind(p, state.name, state.staged_columns)
    ses = ctx.session
    rel = f"{state.stage}__iv"
    values = exp.Values(
        expressions=[
            exp.Tuple(expressions=[exp.Literal.number(i), _bound(lo, kind), _bound(hi, kind)])
            for i, (lo, hi) in enumerate(state.intervals)
        ],
        alias=exp.TableAlias(
            this=exp.to_identifier("__iv"),
            columns=[exp.to_identifier(c) for c in ("idx", "lo", "hi")],
        ),
    )
    ses.execute(
        exp.Create(
            this=table_ref(rel),
            kind="TABLE",
            expression=exp.select("*").from_(values),
            replace=True,
        )
    )
    col = exp.column(ident(p.column), table="__s")
    join = exp.and_(
        exp.GTE(this=col.copy(), expression=exp.column("lo", table="__iv")),
        exp.LT(this=col.copy(), expression=exp.column("hi", table="__iv")),
    )
    q = (
        exp.select(exp.column("idx", table="__iv"), exp.Count(this=exp.Star()))
        .from_(exp.alias_(table_ref(rel), "__iv"))
        .join(exp.alias_(table_ref(state.stage), "__s"), on=join)
        .group_by(exp.column("idx", table="__iv"))
    )
    counts = [0] * len(state.intervals)
    for idx, n in ses.execute(q).fetchall():
        counts[int(idx)] = int(n)
    ses.drop(rel)
    return counts


def audit_intervals(ctx: StepContext, state: StepState) -> None:
    """Checks and the gate for each interval on its own. Every empty interval gets the same
    verdict, so the checks run once on an empty batch for all of them."""
    from lockgate.quality import gate as decide
    from lockgate.quality.scores import compute_scores

    spec, res = state.spec, state.result
    assert state.contract is not None
    policy = ctx.project.effective_gate(spec.name)
    ctx.report(spec.name, f"auditing {len(state.outcomes)} interval(s)")
    counts = _counts(ctx, state) if len(state.outcomes) > 1 else [-1] * len(state.outcomes)
    audits = _IntervalAudits(ctx, state)
    all_results: list[CheckResult] = []
    total = 0
    for o, n in zip(state.outcomes, counts, strict=True):
        o.audit = a = audits.of(o, n)
        o.decision = d = decide(a, policy)
        all_results.extend(a.results)
        total += a.total_rows
        _record_interval(res, o, a, d)
        if d.action != "block" and n != 0:  # an empty interval's old rows go all the same
            o.split = d if d.action == "publish_passing" else None
            marked = a.marked_table or o.view
            o.publish_query = _publish_query(spec, marked, state.contract.projection, a, o.split)
    res.scores = compute_scores(all_results, total_rows=total)
    if all(o.blocked for o in state.outcomes):
        _block_all(state)
        return
    _warn_blocked(res, state.outcomes)
    _publish_union(ctx, state)


class _IntervalAudits:
    """The audit of one interval's rows (a view of the staged batch); one shared audit of
    an empty batch for all the empty ones."""

    def __init__(self, ctx: StepContext, state: StepState) -> None:
        self.ctx, self.state = ctx, state
        self.empty: AuditResult | None = None

    def of(self, o: IntervalOutcome, n: int) -> AuditResult:
        ctx, state = self.ctx, self.state
        if n == 0:
            if self.empty is None:
                view = f"{state.stage}__pe"
                q = exp.select("*").from_(table_ref(state.stage)).where(exp.false())
                ctx.session.execute(
                    exp.Create(this=table_ref(view), kind="VIEW", expression=q, replace=True)
                )
                self.empty = audit_view(ctx, state, view, with_history=False)
            return self.empty
        kind = column_kind(_spec(state), state.name, state.staged_columns)
        rows = exp.select("*").from_(table_ref(state.stage))
        rows = rows.where(in_ranges(_spec(state).column, [(o.lo, o.hi)], kind))
        ctx.session.execute(
            exp.Create(this=table_ref(o.view), kind="VIEW", expression=rows, replace=True)
        )
        o.created = True
        return audit_view(ctx, state, o.view, with_history=False)


def _record_interval(res: StepResult, o: IntervalOutcome, a: AuditResult, d: GateDecision) -> None:
    """The interval's check results (labelled with it) and its status in the step result."""
    for c in a.results:
        cd = _check_dict(c)
        cd["interval"] = o.label
        cd["message"] = f"[{o.label}] {cd.get('message') or ''}".rstrip()
        res.checks.append(cd)
    if d.action == "block":
        res.skip("interval_blocked", a.total_rows)
        res.intervals.append(
            {"interval": o.label, "status": "blocked", "rows": a.total_rows, "reason": d.reason}
        )
    else:
        res.intervals.append({"interval": o.label, "status": "published", "rows": a.total_rows})


def _block_all(state: StepState) -> None:
    """Every interval blocked: the step is blocked, nothing is published, all stay due."""
    spec, res, outcomes = state.spec, state.result, state.outcomes
    why = GateBlocked(
        f"quality gate blocked every interval of dataset '{spec.name}' "
        f"({', '.join(o.label for o in outcomes[:5])}"
        f"{', …' if len(outcomes) > 5 else ''}): "
        + "; ".join(f"{o.label}: {o.decision.reason}" for o in outcomes[:3] if o.decision),
        hint=f"see `lockgate show {spec.name}` for the failing checks; nothing was published "
        "and the intervals stay due",
    )
    state.result = blocked(res, why)
    state.result.intervals = res.intervals
    # every row read is in a blocked interval (interval_blocked) or was skipped before:
    # the blocked step still accounts for all of them
    state.result.skip_reasons = dict(res.skip_reasons)
    state.result.rows_skipped = res.rows_skipped
    state.end()


def _warn_blocked(res: StepResult, outcomes: list[IntervalOutcome]) -> None:
    blocked_ones = [o for o in outcomes if o.blocked]
    if blocked_ones:
        res.warnings.append(
            f"gate blocked {len(blocked_ones)} of {len(outcomes)} interval(s): "
            + ", ".join(o.label for o in blocked_ones[:10])
            + (" …" if len(blocked_ones) > 10 else "")
            + " (their rows skipped; they stay due)"
        )


def _publish_union(ctx: StepContext, state: StepState) -> None:
    """The publish query: the passing intervals' rows, one UNION ALL; and its row count."""
    assert state.contract is not None
    passing = [o for o in state.outcomes if not o.blocked]
    queries = [o.publish_query for o in passing if o.publish_query is not None]
    if not queries:  # every published interval is empty: replace them with nothing
        queries = [
            exp.select(*[p.copy() for p in state.contract.projection])
            .from_(table_ref(state.stage))
            .where(exp.false())
        ]
    union: exp.Query = queries[0]
    for q in queries[1:]:
        union = exp.union(union, q, distinct=False)
    state.publish_query = exp.select("*").from_(union.subquery("__u"))
    row = ctx.session.execute(
        exp.select(exp.Count(this=exp.Star())).from_(state.publish_query.subquery("__c"))
    ).fetchone()
    state.rows_out = int(row[0]) if row else 0


def _check_dict(c: object) -> dict[str, object]:
    from lockgate.runloop.stages.audit import check_dict

    return check_dict(c)  # type: ignore[arg-type]


def commit_turn(ctx: StepContext, state: StepState) -> None:
    """Wait for this run's turn to commit (a backfill's chunks commit in order), then read
    the tables again: a chunk before this one has just committed to them."""
    if ctx.lease is not None:
        ctx.lease.check()
    if ctx.turn is None:
        return
    ctx.turn.wait(state.name)
    for name in (state.name, state.name + "__quarantine"):
        ctx.store.forget(name)
    state.table = ctx.store.snapshot(state.name)
    state.quarantine = ctx.store.snapshot(state.name + "__quarantine")


def quarantine_intervals(ctx: StepContext, state: StepState) -> None:
    """Failing rows of the published intervals, unreadable records and rows with a NULL
    partition column: one quarantine commit. Then every record read must be accounted for."""
    p, res = _spec(state), state.result
    meta = meta_columns(ctx)
    parts: list[exp.Select] = []
    for o in state.outcomes:
        if o.blocked or o.split is None or o.publish_query is None:
            continue
        assert o.audit is not None
        fq = o.audit.failing_rows_query(bits=o.split)
        parts.append(exp.select(exp.Star(), *[m.copy() for m in meta]).from_(fq.subquery("__f")))
    if state.rejects:
        parts.append(rejects_part(state, [m.copy() for m in meta]))
    if state.null_partition:
        col = exp.Column(this=ident(p.column))
        parts.append(
            exp.select(
                exp.Star(),
                exp.alias_(
                    exp.Array(expressions=[exp.Literal.string("partition_null")]),
                    "_lg_failed_checks",
                ),
                exp.alias_(
                    exp.Literal.string(f"partition column {p.column} is NULL: in no interval"),
                    "_lg_reason",
                ),
                *[m.copy() for m in meta],
            )
            .from_(table_ref(state.stage))
            .where(exp.Is(this=col, expression=exp.Null()))
        )
    if parts or ctx.full_refresh:
        res.rows_quarantined = publish_quarantine(ctx, state, parts)
    res.check_accounting(state.rows_out)


def publish_intervals(ctx: StepContext, state: StepState) -> None:
    """ONE commit replacing exactly the published intervals (the whole table on a full
    refresh); they become done when the runner records the step."""
    assert state.publish_query is not None and state.contract is not None
    p, spec, res, ses = _spec(state), state.spec, state.result, ctx.session
    kind = column_kind(p, spec.name, state.staged_columns)
    published = iv.spans([(o.lo, o.hi) for o in state.outcomes if not o.blocked])
    write = table_write(spec.write, state.contract.schema_mode, full_refresh=ctx.full_refresh)
    if not ctx.full_refresh:
        bounds = [(_delta_bound(lo, kind), _delta_bound(hi, kind)) for lo, hi in published]
        write = replace(write, mode="overwrite", replace_where=range_predicate(p.column, bounds))
    ses.settle()
    if ctx.lease is not None:
        ctx.lease.check()
    pub = ctx.store.publish_query(
        spec.name,
        ses,
        state.publish_query,
        write=write,
        tag=CommitTag(ctx.run_id, ctx.run_seq, state.batch_id),
    )
    res.output_version, res.rows_out = pub.version, pub.rows
    refuse_other_batch(spec.name, pub)
    if pub.rows != state.rows_out:
        raise AccountingError(
            f"dataset '{spec.name}': the publish query had {state.rows_out} rows but the "
            f"store wrote {pub.rows} (version {pub.version})"
        )
    res.done_intervals = published
    res.inputs["published"] = [list(s) for s in published]  # what replay compares


def _delta_bound(ts: int, kind: str) -> object:
    d = iv.to_datetime(ts)
    if kind == "date":
        return d.date()
    return d if kind == "timestamptz" else d.replace(tzinfo=None)


def finish_intervals(ctx: StepContext, state: StepState) -> None:
    """The published schema into the result; the step's views and work tables dropped."""
    assert state.contract is not None
    state.result.columns = state.contract.columns
    ses = ctx.session
    dropped: set[int] = set()
    for o in state.outcomes:
        if o.audit is not None and id(o.audit) not in dropped:
            dropped.add(id(o.audit))
            ses.drop(
                *[t for t in o.audit.created_tables if t not in (o.view, state.stage + "__pe")]
            )
        if o.created:
            ses.execute(exp.Drop(tables=[table_ref(o.view)], kind="VIEW", exists=True))
    ses.execute(exp.Drop(tables=[table_ref(state.stage + "__pe")], kind="VIEW", exists=True))
    ses.drop(state.stage, state.stage + "__rejects")
