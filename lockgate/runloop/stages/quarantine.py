"""quarantine: failing rows (with the names of the checks they failed), unreadable records
and late rows go to ``<dataset>__quarantine`` — written before the dataset's own commit,
skipped when this batch is already there. Then the step's accounting must hold: every
record read is published, quarantined or skipped by name (a failure here is a bug in
lockgate, never published as success)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate.project.models import DatasetSpec
from lockgate.runloop.context import BATCH_ROWS, StepContext, StepState
from lockgate.sql import ident, table_ref
from lockgate.storage.base import CommitTag

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.engine.session import Session


def quarantine(ctx: StepContext, state: StepState) -> None:
    res = state.result
    if state.split is not None or state.rejects or state.rereads.late or ctx.full_refresh:
        res.rows_quarantined = publish_quarantine(ctx, state)
    res.check_accounting(state.rows_out)


def publish_quarantine(
    ctx: StepContext, state: StepState, parts: list[exp.Select] | None = None
) -> int:
    """Rows written to the quarantine (or already there from this batch); ``parts``: the
    queries of the rows to quarantine (default: this step's failing, unreadable, late)."""
    import pyarrow as pa

    table = state.quarantine
    # a full refresh rebuilds the dataset from all input, so its quarantine is rebuilt too
    # (appending would list every old bad row twice)
    replace = ctx.full_refresh and table is not None
    last = table.last_commit if table is not None else None
    if not ctx.full_refresh and last is not None and last.batch_id == state.batch_id:
        return int(last.rows or 0)
    parts = _parts(ctx, state) if parts is None else parts
    if not parts:
        if table is not None and replace:
            empty = pa.RecordBatchReader.from_batches(table.schema, [])
            _replace_quarantine(ctx, state, empty)
        return 0
    ses = ctx.session
    tmp = f"__lg_q_{state.name}"
    first, *rest = parts
    ses.drop(tmp)
    ses.execute(exp.Create(this=table_ref(tmp), kind="TABLE", expression=first))
    for p in rest:
        _insert_by_name(ses, tmp, p)
    n = ses.count(tmp)
    position = state.staged.position if state.staged is not None else None
    if position is not None and table is not None and not replace:
        _drop_already_quarantined(ctx, state, tmp, position.app_id, position.column)
    if ses.count(tmp) or replace:
        raw_reader = ses.reader(exp.select("*").from_(table_ref(tmp)), BATCH_ROWS)
        try:
            data = raw_reader
            if replace:
                _replace_quarantine(ctx, state, data)
            else:
                pub = ctx.store.publish_quarantine(state.name, data, tag=_tag(ctx, state))
                state.result.quarantine_version = pub.version
        finally:
            raw_reader.close()
    ses.drop(tmp)
    return n


def meta_columns(ctx: StepContext) -> list[exp.Expr]:
    """The run's metadata columns every quarantined row carries."""
    return [
        exp.alias_(exp.Literal.string(ctx.run_id), "_lg_run_id"),
        exp.alias_(
            exp.Cast(
                this=exp.Literal.string(ctx.now.isoformat()), to=exp.DataType.build("TIMESTAMPTZ")
            ),
            "_lg_quarantined_at",
        ),
    ]


def rejects_part(state: StepState, meta: list[exp.Expr]) -> exp.Select:
    """The step's unreadable records (``parse_error``)."""
    failed = exp.Array(expressions=[exp.Literal.string("parse_error")])
    return exp.select(exp.Star(), exp.alias_(failed, "_lg_failed_checks"), *meta).from_(
        table_ref(state.stage + "__rejects")
    )


def _parts(ctx: StepContext, state: StepState) -> list[exp.Select]:
    """One query per kind of quarantined row, each with the run's metadata columns."""
    meta = meta_columns(ctx)
    parts: list[exp.Select] = []
    if state.split is not None:
        assert state.audit is not None
        fq = state.audit.failing_rows_query(bits=state.split)
        parts.append(exp.select(exp.Star(), *meta).from_(fq.subquery("__f")))
    if state.rejects:
        parts.append(rejects_part(state, meta))
    if state.rereads.late_table is not None:
        parts.append(_late_part(state.spec, state.rereads.late_table, meta))
    return parts


def _late_part(spec: DatasetSpec, late_table: str, meta: list[exp.Expr]) -> exp.Select:
    assert spec.incremental is not None
    inc = spec.incremental
    older = "the watermark" if inc.lookback is None else f"watermark - lookback ({inc.lookback})"
    return exp.select(
        exp.Star(),
        exp.alias_(exp.Array(expressions=[exp.Literal.string("late")]), "_lg_failed_checks"),
        exp.alias_(
            exp.Literal.string(f"late: {inc.cursor} older than {older}"),
            "_lg_reason",
        ),
        *[m.copy() for m in meta],
    ).from_(table_ref(late_table))


def _replace_quarantine(ctx: StepContext, state: StepState, data: pa.RecordBatchReader) -> None:
    pub = ctx.store.publish_quarantine(state.name, data, tag=_tag(ctx, state), replace=True)
    state.result.quarantine_version = pub.version


def _tag(ctx: StepContext, state: StepState) -> CommitTag:
    position = state.staged.position if state.staged is not None else None
    positions = () if position is None else ((position.app_id, position.value),)
    return CommitTag(ctx.run_id, ctx.run_seq, state.batch_id, positions=positions)


def _drop_already_quarantined(
    ctx: StepContext, state: StepState, tmp: str, app_id: str, column: str
) -> None:
    """A change source's rows whose position the quarantine already holds (written by an
    attempt that crashed before the dataset's commit) are not written twice: they are
    there already, so they still count as quarantined."""
    held = ctx.store.txn_version(state.name + "__quarantine", app_id)
    if held is None:
        return
    have = ctx.session.columns(tmp)
    # a quarantined change carries its position; an unreadable one has it as its line
    cols = [c for c in (column, "_lg_line") if c in have]
    if not cols:
        return
    old = exp.or_(
        *[exp.LTE(this=exp.column(ident(c)), expression=exp.Literal.number(held)) for c in cols]
    )
    ctx.session.execute(exp.delete(table_ref(tmp), where=old))


def _insert_by_name(ses: Session, table: str, query: exp.Select) -> None:
    """INSERT INTO t BY NAME <query>, adding any columns the query has and t lacks."""
    have = ses.columns(table)
    probe = f"__lg_probe_{table}"
    ses.execute(exp.Create(this=table_ref(probe), kind="VIEW", expression=query, replace=True))
    for c, t in ses.columns(probe).items():
        if c not in have:
            ses.execute(
                exp.Alter(
                    this=table_ref(table),
                    kind="TABLE",
                    actions=[
                        exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
                    ],
                )
            )
    ses.execute(
        exp.Insert(
            this=table_ref(table),
            expression=exp.select("*").from_(table_ref(probe)),
            by_name=True,
        )
    )
    ses.execute(exp.Drop(tables=[table_ref(probe)], kind="VIEW", exists=True))
