"""finish: what the step published goes into its result (the published schema); the
step's work tables in the engine session are dropped. (The runner then records the result
in the state store.)"""

from __future__ import annotations

from lockgate.runloop.context import StepContext, StepState


def finish(ctx: StepContext, state: StepState) -> None:
    """The published schema into the result; the step's work tables dropped."""
    assert state.contract is not None and state.audit is not None
    state.result.columns = state.contract.columns
    stage = state.stage
    ctx.session.drop(stage, stage + "__rejects", stage + "__late")
    ctx.session.drop(*[t for t in state.audit.created_tables if t != stage])
