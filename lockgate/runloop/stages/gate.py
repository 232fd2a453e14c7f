"""gate: decide from the audit what to publish — everything, the passing rows (the rest to
quarantine), or nothing. A blocked batch is the step's outcome (:attr:`StepStatus.BLOCKED`,
with the audit's check results and scores), not an error: the step ends here and nothing
is published."""

from __future__ import annotations

from lockgate.errors import GateBlocked
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.results import StepResult, StepStatus


def gate(ctx: StepContext, state: StepState) -> None:
    from lockgate.quality import gate as decide

    assert state.audit is not None
    name = state.name
    state.decision = decision = decide(state.audit, ctx.project.effective_gate(name))
    if decision.action != "block":
        return
    why = GateBlocked(
        f"quality gate blocked dataset '{name}': {decision.reason}",
        hint=f"see `lockgate show {name}` for the failing checks; nothing was published",
    )
    state.result = blocked(state.result, why)
    state.end()


def blocked(found: StepResult, why: GateBlocked) -> StepResult:
    """The outcome of a blocked batch: what the audit found (checks, scores, records read,
    the batch and its inputs) and why nothing was published."""
    return StepResult(
        dataset=found.dataset,
        status=StepStatus.BLOCKED,
        reason=why.message,
        error=str(why),
        hint=why.hint,
        rows_in=found.rows_in,
        batch_id=found.batch_id,
        inputs=found.inputs,
        checks=found.checks,
        scores=found.scores,
    )
