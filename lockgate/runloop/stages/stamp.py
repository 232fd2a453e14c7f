"""stamp: ``_lg_ingested_at`` on every row of a dataset whose feature views have no created
timestamp of their own (issue #13), so a training set knows when each row became known.

The value is the run's time (one value per batch: replaying the run gives the same rows).
A merge that updates a row stamps it again — a correction is known from its own publish."""

from __future__ import annotations

from sqlglot import exp

from lockgate.features.definitions import INGESTED_AT, stamped_datasets
from lockgate.runloop.context import StepContext, StepState
from lockgate.sql import ident, table_ref


def stamp(ctx: StepContext, state: StepState) -> None:
    if state.spec.name not in stamped_datasets(ctx.project.features):
        return
    if INGESTED_AT in ctx.session.columns(state.stage):
        return  # the data brings its own (e.g. a transform passing its input's through)
    now = exp.cast(exp.Literal.string(ctx.now.isoformat()), exp.DataType.build("TIMESTAMPTZ"))
    ctx.session.execute(
        exp.Alter(
            this=table_ref(state.stage),
            kind="TABLE",
            actions=[
                exp.ColumnDef(
                    this=ident(INGESTED_AT),
                    kind=exp.DataType.build("TIMESTAMPTZ"),
                    constraints=[exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(this=now))],
                )
            ],
        )
    )
