"""split: what the dataset's commit publishes and what goes to quarantine, counted before
anything is written.

The gate's decision picks the failing rows to hold back; even when it publishes everything
(``warn``), a row with a NULL merge key is held back (it cannot be upserted — it would be
inserted again on every re-read). A merge keeps the latest row per key; the others are
counted as skipped (``duplicate_in_window``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate.errors import ConfigError, Problem, TerminalError
from lockgate.masking import is_text_type, masked_query, register_masking
from lockgate.project.models import DatasetSpec, WriteMode
from lockgate.runloop import merge_keys
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.results import StepResult
from lockgate.sql import ident, table_ref

if TYPE_CHECKING:
    from lockgate.engine.session import Session
    from lockgate.quality import AuditResult, GateDecision


def split(ctx: StepContext, state: StepState) -> None:
    assert state.audit is not None and state.decision is not None and state.contract is not None
    if ctx.lease is not None:
        ctx.lease.check()  # the run still owns the project (before any write)
    spec, result, decision = state.spec, state.audit, state.decision
    if decision.action == "publish_passing":
        state.split = decision
    elif decision.action == "publish_all":
        key_checks = merge_keys.key_checks(spec)
        null_keys = [
            c.bit
            for c in result.results
            if c.name in key_checks and c.failing_rows and c.bit is not None
        ]
        state.split = null_keys or None
    ctx.report(spec.name, "publishing")
    marked = result.marked_table or state.stage
    q = _publish_query(spec, marked, state.contract.projection, result, state.split)
    staged = state.staged
    if staged is not None and staged.deletes is not None and staged.deleted_rows:
        # a change source's delete rows: not audited, published in the same commit
        deletes = exp.select(*[p.copy() for p in state.contract.projection]).from_(
            table_ref(staged.deletes)
        )
        q = exp.select(exp.Star()).from_(exp.union(q, deletes, distinct=False).subquery("__cdc"))
    if spec.mask:
        q = _masked(ctx, spec, q, state.contract.columns)
    state.publish_query = q
    state.rows_out = _count_publish(ctx.session, q, state.result)


def _masked(
    ctx: StepContext, spec: DatasetSpec, q: exp.Select, columns: dict[str, str]
) -> exp.Select:
    """The publish query with the dataset's ``mask:`` applied (after the checks: they judged
    the clear values; the quarantine keeps them, shown masked to readers without PII rights)."""
    rules = spec.mask_rules()
    by_lower = {c.lower(): c for c in columns}
    problems = []
    for c in rules:
        name = by_lower.get(c.lower())
        if name is None:
            problems.append(Problem(f"mask: column '{c}' is not in the dataset's columns"))
        elif not is_text_type(columns[name]):
            msg = f"mask: column '{name}' is {columns[name]}; masked values are text"
            problems.append(Problem(msg, hint=f"cast it to VARCHAR (columns: {{{name}: VARCHAR}})"))
    if problems:
        raise ConfigError(problems)
    _refuse_newly_masked(ctx, spec)
    register_masking(ctx.session, spec.mask_key_env, rules)
    return masked_query(q, list(columns), rules)


def _refuse_newly_masked(ctx: StepContext, spec: DatasetSpec) -> None:
    """A column masked now but published in the clear before: appending or merging would
    leave the clear values in the table beside the masked ones (``mask:`` promises none).
    Only a full refresh (or an overwrite) replaces them."""
    if ctx.full_refresh or spec.write.mode == WriteMode.OVERWRITE:
        return
    if not ctx.store.exists(spec.name):  # no table (a first run, or its folder was removed)
        return
    steps = ctx.state.dataset_steps(
        ctx.project.name, spec.name, limit=500, project_id=ctx.project_id
    )
    last = next((s for s in steps if s.status == "success" and s.rows_out), None)
    definition = (last.input_versions or {}).get("definition") if last else None
    if last is None or not isinstance(definition, str):
        return
    from lockgate.state.intervals import load_definition

    body = load_definition(ctx.state, ctx.project.name, definition)
    if body is None or not isinstance(body.get("spec"), dict):
        return
    before = {str(c).lower() for c in body["spec"].get("mask") or {}}
    new = [c for c in spec.mask if c.lower() not in before]
    if new:
        cols = ", ".join(f"'{c}'" for c in new)
        raise TerminalError(
            f"dataset '{spec.name}': mask: {cols} published unmasked before (version "
            f"{last.output_version}, run {last.run_id[:8]}); writing in {spec.write.mode} mode "
            "would keep those clear values in the table beside the masked ones",
            hint=f"lockgate run --select {spec.name} --full-refresh rewrites the table masked; "
            f"then `lockgate vacuum {spec.name} --retain-hours 0` deletes the older files that "
            "still hold the clear values",
        )


def _publish_query(
    spec: DatasetSpec,
    marked: str,
    projection: list[exp.Expr],
    result: AuditResult,
    split: GateDecision | list[int] | None,
) -> exp.Select:
    q = exp.select(*projection).from_(table_ref(marked))
    if split is not None:
        q = q.where(result.passing_predicate(split))
    keys = list(spec.write.keys)
    if keys and spec.write.mode == WriteMode.MERGE:
        # de-duplicate the batch by key: latest by order_by, else by the incremental cursor
        # (the dropped rows are counted by _count_publish)
        latest = spec.write.order_by or (spec.incremental.cursor if spec.incremental else None)
        order = (
            [exp.Ordered(this=exp.Column(this=ident(latest)), desc=True, nulls_first=False)]
            if latest
            else [exp.Ordered(this=exp.Column(this=ident(k))) for k in keys]
        )
        rn = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.Column(this=ident(k)) for k in keys],
            order=exp.Order(expressions=order),
        )
        q = q.qualify(exp.EQ(this=rn, expression=exp.Literal.number(1)))
    return q


def _count_publish(ses: Session, q: exp.Select, res: StepResult) -> int:
    """Rows ``q`` will publish; for merge, the rows the per-key de-duplication drops are
    counted as skipped (``duplicate_in_window``)."""
    total = exp.Count(this=exp.Star())
    qualify = q.args.get("qualify")
    if qualify is None:
        row = ses.execute(exp.select(total).from_(q.subquery("__c"))).fetchone()
        return int(row[0]) if row else 0
    passing = q.copy()
    passing.set("qualify", None)
    both = exp.select(
        exp.select(total.copy()).from_(passing.subquery("__a")).subquery(),
        exp.select(total.copy()).from_(q.subquery("__b")).subquery(),
    )
    row = ses.execute(both).fetchone()
    n_pass, n_out = (int(row[0]), int(row[1])) if row else (0, 0)
    res.skip("duplicate_in_window", n_pass - n_out)
    return n_out
