"""stage: extract the source, or compute the transform, into the staging table.

A source stages every row of the files it reads (an incremental one skips the files its
last step published); a transform reads its upstream tables at their pinned versions (an
incremental one only rows past its cursor). Rows read again are then settled — taken out of
the batch under a named reason (:func:`lockgate.runloop.incremental.settle_rereads`). A step
that staged nothing new ends here, up to date."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import cast

from sqlglot import exp

from lockgate._suggest import did_you_mean
from lockgate.engine.transforms import stage_python, stage_sql
from lockgate.errors import TerminalError
from lockgate.project.models import DatasetSpec, PythonTransformSpec
from lockgate.runloop import incremental
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.relations import register_columns, register_table
from lockgate.runloop.stages.publish import acknowledge_position
from lockgate.runloop.stages.resolve import last_inputs, open_source
from lockgate.sources.base import ResumeToken, Source
from lockgate.sql import table_ref


def stage(ctx: StepContext, state: StepState) -> None:
    spec, res, ses = state.spec, state.result, ctx.session
    ctx.report(spec.name, "staging")
    state.quarantine = ctx.store.snapshot(spec.name + "__quarantine")
    rejects = _extract(ctx, state)
    res.rows_in = ses.count(state.stage) + rejects + _staged_apart(state)
    state.rereads = _settle_rereads(ctx, state)
    state.rejects = rejects - state.rereads.known_rejects
    state.staged_rows = ses.count(state.stage)
    if _no_changes(state):
        assert state.table is not None and state.staged is not None
        res.output_version = state.table.version
        res.check_accounting(0)
        acknowledge_position(ctx, state)  # what it re-read was in the table already
        ses.drop(state.stage, state.stage + "__rejects")
        if state.staged.deletes:
            ses.drop(state.staged.deletes)
        state.end(reason="no new changes")
        return
    if state.staged_rows == 0 and state.staged is not None and state.staged.schemaless:
        # nothing read and no known columns: publishing would fix placeholder types
        res.output_version = state.table.version if state.table is not None else None
        res.check_accounting(0)
        ses.drop(state.stage, state.stage + "__rejects")
        state.end(reason="no records read (their columns are unknown until some arrive)")
        return
    if (
        state.staged_rows == 0
        and state.rejects == 0
        and state.rereads.late == 0
        and _rereading(ctx, state)
    ):
        # nothing new (files already published, rows read again already there): before
        # looking at columns — an input with no files to read stages no real schema
        assert state.table is not None
        res.output_version = state.table.version
        res.check_accounting(0)
        ses.drop(state.stage, state.stage + "__rejects")
        state.end(reason="no new rows beyond the watermark")


def _rereading(ctx: StepContext, state: StepState) -> bool:
    """An incremental step adding to a table that exists: some rows may be read again."""
    return state.spec.incremental is not None and not ctx.full_refresh and state.table is not None


def _extract(ctx: StepContext, state: StepState) -> int:
    """Create the staging table (and ``<stage>__rejects`` for sources); returns the number
    of unreadable records. A source stages every row of the files it reads — no cursor
    filter: rows at or below the watermark are classified by :func:`_settle_rereads`. The
    source is handed back its resume token when the step continues a published table; the
    token it returns is recorded with the step's inputs, never interpreted here."""
    spec = state.spec
    if spec.kind == "source":
        # read back from the state store's JSON: a JSON value by construction
        resume = last_inputs(ctx, state).get("resume") if _rereading(ctx, state) else None
        resume = cast("ResumeToken", resume)
        source = open_source(ctx, spec)
        if source.SUPPORTS_CDC:
            source = _at_position(ctx, state, source)
        staged = source.stage(ctx.session, state.stage, resume=resume)
        state.source, state.staged = source, staged
        state.result.inputs["resume"] = staged.resume
        state.result.warnings.extend(staged.warnings)
        state.result.more_available = staged.more
        return staged.rejected
    views = _register_inputs(ctx, state)
    where = spec.defined_in or "?"
    if spec.defined_line:
        where += f":{spec.defined_line}"
    if isinstance(spec.transform, PythonTransformSpec):
        tf = ctx.project.python_transform(spec.name)
        stage_python(ctx.session, spec.name, tf, state.stage, views)
    else:
        row_filter = None
        if spec.partition is not None:  # only the due intervals are computed
            from lockgate.runloop.stages.partitions import row_filter as due_filter

            row_filter = due_filter(state)
        stage_sql(
            ctx.session, spec.name, ctx.project.sql_text(spec.name), state.stage, where, row_filter
        )
    return 0


def _at_position(ctx: StepContext, state: StepState, source: Source) -> Source:
    """A change source, told the position its dataset's table holds (None: no table, or a
    full refresh: start over) and given the published table as a relation."""
    request = source.request
    app_id = type(source).position_id(request)
    position, target = None, None
    txn_version: Callable[[str], int | None] | None = None
    table = state.table
    if table is not None and not ctx.full_refresh:
        if app_id is not None:
            position = ctx.store.txn_version(state.name, app_id)
        txn_version = functools.partial(ctx.store.txn_version, state.name)

        rel = f"__lg_target_{state.name}"
        registered: list[str] = []

        def target() -> str:
            if not registered:  # once, and only when the source needs the stored rows
                register_table(ctx, rel, state.name, table.version)
                registered.append(rel)
            return rel

    return type(source)(
        dataclasses.replace(request, position=position, target=target, txn_version=txn_version)
    )


def _no_changes(state: StepState) -> bool:
    """A change source read nothing its table does not hold."""
    staged = state.staged
    return (
        staged is not None
        and staged.position is not None
        and state.table is not None
        and state.source is not None
        and state.source.request.position == staged.position.value
        and state.staged_rows == 0
        and staged.deleted_rows == 0
        and state.rejects == 0
    )


def _staged_apart(state: StepState) -> int:
    """Records a source read but did not stage in the batch table: its delete rows (published
    apart) and the records it skipped by name (counted in the result)."""
    staged = state.staged
    if staged is None:
        return 0
    for reason, n in staged.skipped.items():
        state.result.skip(reason, n)
    return staged.deleted_rows + sum(staged.skipped.values())


def _settle_rereads(ctx: StepContext, state: StepState) -> incremental.Rereads:
    """Take rows already published/quarantined, superseded or late out of the batch — and
    unreadable records already in the quarantine out of the rejects — each counted in the
    result under its reason (see :func:`incremental.settle_rereads`)."""
    spec, ses, stage_table = state.spec, ctx.session, state.stage
    inc = spec.incremental
    rows = ses.count(stage_table)
    if inc is None:
        return incremental.Rereads()
    if rows:
        _require_cursor(spec, inc.cursor, ses.columns(stage_table))
    if not _rereading(ctx, state):
        return incremental.Rereads()
    target = f"__lg_target_{spec.name}"
    qname = spec.name + "__quarantine"
    quarantine = None
    if state.quarantine is not None:
        rel = f"__lg_target_{qname}"
        quarantine = (rel, register_columns(ctx, rel, qname))
    out = incremental.Rereads()
    if rows:
        tables = incremental.Tables((target, register_columns(ctx, target, spec.name)), quarantine)
        out = incremental.settle_rereads(
            ses,
            stage_table,
            spec=inc,
            mode=spec.write.mode,
            keys=spec.write.keys,
            watermark=state.watermark,
            lowest=state.lowest,
            tables=tables,
        )
    if spec.kind == "source" and quarantine is not None:
        known = incremental.settle_rejects(ses, stage_table + "__rejects", quarantine)
        if known:
            out.skipped["already_quarantined"] = out.skipped.get("already_quarantined", 0) + known
            out.known_rejects = known
    _count(state, out)
    return out


def _count(state: StepState, out: incremental.Rereads) -> None:
    inc = state.spec.incremental
    assert inc is not None
    for reason, n in out.skipped.items():
        state.result.skip(reason, n)
    if out.late:
        state.result.warnings.append(
            f"{out.late:,} late row(s) quarantined ({inc.cursor} older than the watermark"
            f"{' - lookback' if inc.lookback is not None else ''}; incremental.late)"
        )


def _require_cursor(spec: DatasetSpec, cursor: str, columns: dict[str, str]) -> None:
    if cursor not in columns:
        raise TerminalError(
            f"dataset '{spec.name}': incremental cursor column '{cursor}' is not in its "
            f"data (columns: {', '.join(list(columns)[:20])})",
            hint=did_you_mean(cursor, columns) or "fix incremental.cursor",
        )


def _register_inputs(ctx: StepContext, state: StepState) -> dict[str, str]:
    """Register each upstream dataset under its own name at its pinned version (an
    incremental transform: only rows past its cursor filter, or in files added since)."""
    spec, lowest = state.spec, state.lowest
    views: dict[str, str] = {}
    cursor = spec.incremental.cursor if spec.incremental and lowest is not None else None
    previous = last_inputs(ctx, state) if cursor else {}
    for up, version in state.upstream.items():
        if version is None:
            raise TerminalError(
                f"dataset '{spec.name}' reads '{up}', which has never been published",
                hint=f"run it first: lockgate run --select +{spec.name}",
            )
        if cursor:
            last = previous.get(up)
            before = last if isinstance(last, int) else None
            scan = incremental.incremental_scan(ctx.store, up, version, before, cursor, lowest)
            if scan is not None:
                ctx.session.execute(
                    exp.Create(this=table_ref(up), kind="VIEW", expression=scan, replace=True)
                )
                views[up] = up
                continue
        raw = f"__lg_in_{up}"
        columns = register_table(ctx, raw, up, version)
        where = None
        if cursor and cursor in columns:
            where = incremental.input_filter(cursor, lowest)
        ctx.session.register_filtered(up, raw, where)
        views[up] = up
    return views
