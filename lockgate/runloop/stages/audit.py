"""audit: evaluate every check on the staged batch in as few passes as possible, marking
the rows each row-level check fails (:func:`lockgate.quality.audit`); the check results and
the quality scores go into the step's result."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lockgate.runloop.context import StepContext, StepState

if TYPE_CHECKING:  # (numpy: only when an anomaly check runs)
    from lockgate.anomaly.detect import Point
    from lockgate.quality import AuditResult, CheckResult


def audit(ctx: StepContext, state: StepState) -> None:
    from lockgate.quality.scores import compute_scores

    spec, res = state.spec, state.result
    ctx.report(spec.name, f"auditing {state.staged_rows:,} rows")
    state.audit = result = audit_view(ctx, state, state.stage)
    res.checks = [check_dict(c) for c in result.results]
    res.scores = compute_scores(result.results, total_rows=result.total_rows)


def audit_view(
    ctx: StepContext, state: StepState, view: str, *, with_history: bool = True
) -> AuditResult:
    """The fused audit of ``view`` (the batch, or one interval of it) with the step's checks,
    marking the rows each row-level check fails."""
    from lockgate.quality import audit as run_checks

    spec = state.spec
    return run_checks(
        ctx.session,
        view,
        state.checks,
        references=state.references,
        mark=True,
        now=ctx.now,
        key_columns=spec.write.keys,
        dataset=spec.name,
        history=_history(ctx, spec.name) if with_history else None,
    )


#: earlier values an anomaly check's baseline reads (the detector looks at 4 x 28 at most)
HISTORY_POINTS = 200


def _history(ctx: StepContext, dataset: str) -> Callable[[str], Sequence[Point]]:
    """An anomaly check's earlier published values, read from the state store when asked."""
    project = ctx.project.name

    def values(check: str) -> Sequence[Point]:
        return ctx.state.check_values(project, dataset, check, HISTORY_POINTS)

    return values


def check_dict(c: CheckResult) -> dict[str, object]:
    """A check result as the step result carries it (enums as their values)."""
    d = c.to_dict()
    for k, v in list(d.items()):
        if hasattr(v, "value"):
            d[k] = v.value
    return d
