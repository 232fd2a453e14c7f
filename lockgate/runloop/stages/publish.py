"""publish: the batch into the dataset's table, as ONE atomic commit carrying the run, the
batch id and the new watermark (a re-commit of the same batch is a no-op: the table store
decides that, in one place). The lock lease is checked right before; the store's row count
must match the publish query's."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sqlglot import exp

from lockgate.errors import TerminalError
from lockgate.runloop import incremental
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.results import AccountingError
from lockgate.runloop.writes import table_write
from lockgate.sql import ident
from lockgate.storage.base import CommitTag, PublishResult

if TYPE_CHECKING:
    from lockgate.engine.session import Session


def publish(ctx: StepContext, state: StepState) -> None:
    assert state.publish_query is not None and state.contract is not None
    spec, res, ses, q = state.spec, state.result, ctx.session, state.publish_query
    watermark = _watermark(ses, state)
    res.watermark, res.watermark_type = watermark or (None, None)
    write = table_write(spec.write, state.contract.schema_mode, full_refresh=ctx.full_refresh)
    if write.mode == "overwrite_partitions":
        # the distinct partitions of the batch (a cheap pass on DuckDB's side) let the
        # store stream the batch straight into one replace-these-partitions commit
        cols = [exp.Column(this=ident(c)) for c in write.partition_by]
        cur = ses.execute(exp.select(*cols).distinct().from_(q.subquery("__p")))
        write = write.with_partitions(
            [dict(zip(write.partition_by, row, strict=True)) for row in cur.fetchall()]
        )
    position = state.staged.position if state.staged is not None else None
    positions: tuple[tuple[str, int], ...] = ()
    if position is not None:
        positions = ((position.app_id, position.value), *position.extra)
        if write.mode == "merge":
            soft = (position.column, position.op_column, "_lg_commit_ts", position.deleted_flag)
            write = dataclasses.replace(
                write,
                delete_when=(position.op_column, "d"),
                soft_delete=tuple(c for c in soft if c) if position.deleted_flag else (),
            )
    ses.settle()
    if ctx.lease is not None:
        ctx.lease.check()  # again, right before the commit: the quarantine write took time
    # DuckDB writes the Parquet files itself where the write mode allows (append/overwrite),
    # otherwise the query's Arrow batches stream into delta-rs
    pub = ctx.store.publish_query(
        spec.name,
        ses,
        q,
        write=write,
        tag=CommitTag(
            ctx.run_id,
            ctx.run_seq,
            state.batch_id,
            "|".join(watermark) if watermark else None,
            positions=positions,
        ),
    )
    res.output_version, res.rows_out = pub.version, pub.rows
    refuse_other_batch(spec.name, pub)
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


def acknowledge(ctx: StepContext, state: StepState) -> None:
    """A change source confirms what its dataset's table now holds (e.g. advances its
    replication slot) — only after the commit, so a crash in between re-reads, never loses."""
    acknowledge_position(ctx, state)


def acknowledge_position(ctx: StepContext, state: StepState) -> None:
    staged, source = state.staged, state.source
    if staged is None or source is None or staged.position is None:
        return
    held = ctx.store.txn_version(state.name, staged.position.app_id)
    if held is not None:
        source.acknowledge(held)


def refuse_other_batch(dataset: str, pub: PublishResult) -> None:
    """Raise when this run already committed a *different* batch to the table (an earlier
    attempt whose commit landed, then the inputs changed): recording success and the new
    watermark would claim rows that were never published."""
    if pub.already_committed:
        raise TerminalError(
            f"dataset '{dataset}': this run already published a different batch to the "
            f"table ({pub.reason}); its inputs changed between attempts",
            hint="run again: the next run picks up the new inputs",
        )
