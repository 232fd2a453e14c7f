"""The stages of a step, in order: each is a small function ``(ctx, state) -> None`` over
the run's :class:`~lockgate.runloop.context.StepContext` and the step's
:class:`~lockgate.runloop.context.StepState`, readable alone (as sqlglot's optimizer is a
tuple of rules). A stage ends the step early with ``state.end(...)`` (up to date, nothing
new, blocked by the gate); an error is raised (the runner retries the transient ones)."""

from __future__ import annotations

from collections.abc import Callable

from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.stages.audit import audit
from lockgate.runloop.stages.contract import contract, validate_checks
from lockgate.runloop.stages.finish import finish
from lockgate.runloop.stages.gate import gate
from lockgate.runloop.stages.publish import publish
from lockgate.runloop.stages.quarantine import quarantine
from lockgate.runloop.stages.resolve import resolve
from lockgate.runloop.stages.split import split
from lockgate.runloop.stages.stage import stage

Stage = Callable[[StepContext, StepState], None]

STAGES: tuple[Stage, ...] = (
    resolve,  # pin the inputs; up to date? (the same batch is already published)
    stage,  # extract / compute into staging; settle rows read again; nothing new?
    validate_checks,  # the checks against the staged columns, every problem at once
    contract,  # the staged schema against the declared and published one (drift policy)
    audit,  # every check in as few passes as possible, failing rows marked
    gate,  # publish all, publish passing (rest to quarantine), or block
    split,  # the publish query and its row count; which rows go to quarantine
    quarantine,  # failing, unreadable and late rows; every record read accounted for
    publish,  # one atomic, idempotent commit with the batch id and the new watermark
    finish,  # the published schema into the result; work tables dropped
)

__all__ = ["STAGES", "Stage"]
