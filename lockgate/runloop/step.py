"""One step of the run loop: materialise one dataset by running :data:`STAGES` in order over
a :class:`~lockgate.runloop.context.StepState` (the shape of sqlglot's optimizer: a tuple
of rules). Each stage lives in :mod:`lockgate.runloop.stages`; the runner records the
result."""

from __future__ import annotations

import os
import resource
import time

from lockgate.pii import mask_check_samples, scrub, spec_pii
from lockgate.project.models import DatasetSpec
from lockgate.runloop.context import Stage, StepContext, StepState, stage_name
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.runloop.stages.audit import audit
from lockgate.runloop.stages.contract import contract, validate_checks
from lockgate.runloop.stages.finish import finish
from lockgate.runloop.stages.gate import gate
from lockgate.runloop.stages.partitions import (
    audit_intervals,
    bucket,
    commit_turn,
    due,
    finish_intervals,
    publish_intervals,
    quarantine_intervals,
)
from lockgate.runloop.stages.publish import acknowledge, publish
from lockgate.runloop.stages.quarantine import quarantine
from lockgate.runloop.stages.resolve import (
    batch_id_for,
    current_watermark,
    definition_hash,
    resolve,
    resolve_inputs,
)
from lockgate.runloop.stages.split import split
from lockgate.runloop.stages.stage import stage
from lockgate.runloop.stages.stamp import stamp

__all__ = [
    "STAGES",
    "StepContext",
    "batch_id_for",
    "current_watermark",
    "definition_hash",
    "resolve_inputs",
    "run_step",
]

STAGES: tuple[Stage, ...] = (
    resolve,  # pin the inputs; up to date? (the same batch is already published)
    stage,  # extract / compute into staging; settle rows read again; nothing new?
    stamp,  # _lg_ingested_at on the rows of a feature view's dataset (issue #13)
    validate_checks,  # the checks against the staged columns, every problem at once
    contract,  # the staged schema against the declared and published one (drift policy)
    audit,  # every check in as few passes as possible, failing rows marked
    gate,  # publish all, publish passing (rest to quarantine), or block: an outcome
    split,  # the publish query and its row count; which rows go to quarantine
    quarantine,  # failing, unreadable and late rows; every record read accounted for
    publish,  # one atomic, idempotent commit with the batch id and the new watermark
    acknowledge,  # a change source confirms the position its table now holds
    finish,  # the published schema into the result; work tables dropped
)

#: a time-partitioned dataset (``partition:``): the due intervals, each checked and gated
#: on its own, published in one commit replacing exactly those intervals
PARTITION_STAGES: tuple[Stage, ...] = (
    resolve,
    due,  # the intervals to process (none: up to date)
    stage,  # a SQL transform computes only the due intervals
    stamp,
    validate_checks,
    contract,
    bucket,  # one view per interval; rows in no due interval counted
    audit_intervals,  # checks and gate per interval: a bad day does not block the others
    commit_turn,  # a backfill's chunks commit in order
    quarantine_intervals,
    publish_intervals,  # replaces exactly the published intervals
    finish_intervals,
)


#: what runs in :data:`PARTITION_STAGES` instead of each whole-batch stage it leaves out
#: (None: the stage has no meaning for a partitioned dataset). A stage added to
#: :data:`STAGES` must be in both tuples or here, so the two cannot drift apart unnoticed
#: (tests/run/test_stage_tuples.py).
PARTITION_COUNTERPARTS: dict[Stage, Stage | None] = {
    audit: audit_intervals,
    gate: audit_intervals,  # the gate is per interval
    split: audit_intervals,  # each passing interval's publish query
    quarantine: quarantine_intervals,
    publish: publish_intervals,
    acknowledge: None,  # change sources merge; a partitioned dataset cannot (models.py)
    finish: finish_intervals,
}


def _cpu_seconds() -> float:
    """User + system CPU seconds of the process (DuckDB's threads included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    """The process's resident memory now (Linux /proc; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


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
    stages = PARTITION_STAGES if spec.partition is not None else STAGES
    cpu0, peak = _cpu_seconds(), _rss_bytes()
    for run_stage in stages:
        run_stage(ctx, state)
        peak = max(peak, _rss_bytes())
        if state.done:
            break
    # before anything records them: personal values in check results and the gate's reason
    hidden = mask_check_samples(state.result.checks, spec_pii(spec), state.checks)
    res = state.result
    res.reason, res.error = scrub(res.reason, hidden) or "", scrub(res.error, hidden)
    state.result.duration_s = time.perf_counter() - t0
    state.result.cost = {"cpu_s": round(_cpu_seconds() - cpu0, 4), "peak_rss_bytes": peak}
    return state.result
