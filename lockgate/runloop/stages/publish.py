"""publish: the batch into the dataset's table, as ONE atomic commit carrying the run, the
batch id and the new watermark (a re-commit of the same batch is a no-op: the table store
decides that, in one place). The lock lease is checked right before; the store's row count
must match the publish query's."""

from __future__ import annotations

from sqlglot import exp

from lockgate.engine.session import Session, ident
from lockgate.errors import TerminalError
from lockgate.project.models import WriteMode
from lockgate.runloop import incremental
from lockgate.runloop.context import BATCH_ROWS, StepContext, StepState
from lockgate.runloop.results import AccountingError


def publish(ctx: StepContext, state: StepState) -> None:
    assert state.publish_query is not None and state.contract is not None
    spec, res, ses, q = state.spec, state.result, ctx.session, state.publish_query
    watermark = _watermark(ses, state)
    res.watermark, res.watermark_type = watermark or (None, None)
    write, schema_mode = spec.write, state.contract.schema_mode
    if ctx.full_refresh:
        write = write.model_copy(update={"mode": WriteMode.OVERWRITE})
        schema_mode = "overwrite"
    partition_values = None
    if write.mode == WriteMode.OVERWRITE_PARTITIONS:
        # the distinct partitions of the batch (a cheap pass on DuckDB's side) let the
        # store stream the batch straight into one replace-these-partitions commit
        cols = [exp.Column(this=ident(c)) for c in write.partition_by]
        cur = ses.execute(exp.select(*cols).distinct().from_(q.subquery("__p")))
        partition_values = [
            dict(zip(write.partition_by, row, strict=True)) for row in cur.fetchall()
        ]
    ses.settle()
    if ctx.lease is not None:
        ctx.lease.check()  # again, right before the commit: the quarantine write took time
    # DuckDB writes the Parquet files itself where the write mode allows (append/overwrite),
    # otherwise the query's Arrow batches stream into delta-rs
    pub = ctx.store.publish_query(
        spec.name,
        ses.con,
        q,
        write=write,
        run_id=ctx.run_id,
        run_seq=ctx.run_seq,
        batch_id=state.batch_id,
        watermark="|".join(watermark) if watermark else None,
        schema_mode=schema_mode,
        partition_values=partition_values,
        batch_rows=BATCH_ROWS,
    )
    res.output_version, res.rows_out = pub.version, pub.rows
    if pub.already_committed:
        # this run already committed a *different* batch to this table (an earlier attempt
        # whose commit landed, then the inputs changed): recording success and the new
        # watermark would claim rows that were never published
        raise TerminalError(
            f"dataset '{spec.name}': this run already published a different batch to the "
            f"table ({pub.reason}); its inputs changed between attempts",
            hint="run again: the next run picks up the new inputs",
        )
    if pub.skipped:
        res.reason = pub.reason
    if pub.rows != state.rows_out:
        raise AccountingError(
            f"dataset '{spec.name}': the publish query had {state.rows_out} rows but the "
            f"store wrote {pub.rows} (version {pub.version})"
        )


def _watermark(ses: Session, state: StepState) -> tuple[str, str] | None:
    """The batch's new watermark, encoded as (text, type); never below the old one."""
    inc = state.spec.incremental
    if inc is None or state.publish_query is None:
        return None
    rows = ses.execute(
        exp.select(exp.Max(this=exp.Column(this=ident(inc.cursor)))).from_(
            state.publish_query.subquery("__w")
        )
    ).fetchall()
    batch_max = rows[0][0] if rows else None
    return incremental.encode(incremental.advance(state.watermark, batch_max))
