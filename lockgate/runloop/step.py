"""One step of the run loop: materialise one dataset by running :data:`STAGES` in order.

resolve → stage → validate checks → contract → audit → gate → split → quarantine → publish
→ finish (each in :mod:`lockgate.runloop.stages`); the runner records the result."""

from __future__ import annotations

import time

from lockgate.project.models import DatasetSpec
from lockgate.runloop.context import StepContext, StepState, stage_name
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.runloop.stages import STAGES
from lockgate.runloop.stages.resolve import (
    batch_id_for,
    current_watermark,
    definition_hash,
    resolve_inputs,
)

__all__ = [
    "STAGES",
    "StepContext",
    "batch_id_for",
    "current_watermark",
    "definition_hash",
    "resolve_inputs",
    "run_step",
]


def run_step(ctx: StepContext, spec: DatasetSpec) -> StepResult:
    """Materialise ``spec``: its outcome (published, up to date, nothing new, blocked by the
    gate); raises LockgateError subclasses on failure (the runner retries transient ones)."""
    t0 = time.perf_counter()
    state = StepState(
        # the project's default write mode applies where the dataset does not set one
        spec=spec.model_copy(update={"write": ctx.project.effective_write(spec.name)}),
        result=StepResult(dataset=spec.name, status=StepStatus.SUCCESS),
        stage=stage_name(spec.name),
    )
    for run_stage in STAGES:
        run_stage(ctx, state)
        if state.done:
            break
    state.result.duration_s = time.perf_counter() - t0
    return state.result
