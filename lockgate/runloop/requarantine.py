"""Unparseable records are quarantined once: the warehouse's quarantine table, not the state
store, says which ones are already there.

An incremental source re-reads a file when the state store cannot say it was published
(the state store was deleted or is new, the file grew, the last run crashed before
recording). Its good rows are then settled against the table by cursor and content; its
*unparseable* records have no cursor, so they are matched against the quarantine on where
they come from and what they hold: ``(_lg_source_file, _lg_line, _lg_raw_record)``,
NULL-safe. A record already there is taken out of the batch's rejects and counted (the
caller reports it as skipped, reason ``already_quarantined``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import duckdb
from sqlglot import exp

from lockgate.engine.session import ident, table_ref
from lockgate.storage.delta import QUARANTINE_SUFFIX

KEY = ("_lg_source_file", "_lg_line", "_lg_raw_record")
_R, _Q = "__r", "__q"


def drop_quarantined_rejects(ctx: Any, spec: Any, rejects_table: str) -> int:
    """Delete from ``rejects_table`` the records the dataset's quarantine already holds;
    returns how many. Only for incremental sources (a full read of a non-incremental source
    is a new batch by definition) and not on a full refresh (it rebuilds the quarantine)."""
    if spec.kind != "source" or spec.incremental is None or ctx.full_refresh:
        return 0
    qname = spec.name + QUARANTINE_SUFFIX
    if not ctx.store.exists(qname):
        return 0
    from lockgate.runloop.step import _register_table

    ses = ctx.session
    rel = f"__lg_requarantine_{spec.name}"
    columns = _register_table(ctx, rel, qname, None)
    try:
        if not set(KEY) <= set(columns):
            return 0  # the quarantine never held an unparseable record
        before = ses.count(rejects_table)
        if not before:
            return 0
        same = exp.and_(
            *[
                exp.NullSafeEQ(
                    this=exp.column(c, table=_Q, quoted=True),
                    expression=exp.column(c, table=rejects_table, quoted=True),
                )
                for c in KEY
            ]
        )
        seen = exp.Exists(
            this=exp.select(exp.Literal.number(1))
            .from_(exp.Table(this=ident(rel), alias=exp.TableAlias(this=ident(_Q))))
            .where(same)
        )
        ses.execute(exp.delete(table_ref(rejects_table), where=seen))
        return before - ses.count(rejects_table)
    finally:
        ses.settle()
        with contextlib.suppress(duckdb.Error):
            ses.con.unregister(rel)
        ses.execute(exp.Drop(tables=[table_ref(rel)], kind="VIEW", exists=True))
