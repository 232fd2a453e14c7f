"""A run plan: what a run of (part of) a project will do and why, as a frozen value.

:func:`plan` looks at the warehouse and the state store — without reading data or taking
the project lock — and returns a :class:`Plan`: the selected steps in dependency order, each
with its pinned inputs, definition hash, dependencies and the planned action with its cause.
``runner.execute(plan)`` runs it; the CLI's ``--dry-run`` prints it; a scheduler can keep,
show or compare it before running.

Pinned inputs are exact for inputs that nothing in the plan rebuilds. Where an upstream step
of the same plan publishes first, the pin (its version at planning time) is only a prediction,
listed in :attr:`PlannedStep.predicted`: execution resolves those again once the upstream has
finished. Execution, under the project lock, always resolves every input itself (another run
may have published in between); a firm pin that moved is logged as a stale plan.

>>> s = PlannedStep(dataset="rev", kind="sql", depends_on=("orders",),
...                 inputs={"orders": 3}, definition="ab12", action=Action.RUN,
...                 cause=Cause.UPSTREAM, reason="upstream 'orders' will publish a new version",
...                 predicted=("orders",))
>>> s.inputs["orders"], s.status
(3, <StepStatus.PLANNED: 'planned'>)
>>> s.inputs["orders"] = 4
Traceback (most recent call last):
...
TypeError: 'mappingproxy' object does not support item assignment
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from lockgate.errors import LockgateError
from lockgate.runloop.results import StepResult, StepStatus

if TYPE_CHECKING:  # the step's modules import the engine and the store: only when planning
    from lockgate.engine.session import Session
    from lockgate.project import Project
    from lockgate.project.models import DatasetSpec
    from lockgate.runloop.step import StepContext
    from lockgate.storage.delta import CommitInfo

log = logging.getLogger(__name__)


class Action(StrEnum):
    """What execution is expected to do with a step."""

    RUN = "run"  # build and publish a new batch
    SKIP = "skip"  # up to date: inputs and definition unchanged since the last publish
    FAIL = "fail"  # cannot run as things stand (a damaged table, an unreadable input)


class Cause(StrEnum):
    """Why a step has its action."""

    NEW = "new"  # never published
    FULL_REFRESH = "full_refresh"  # --full-refresh: rebuild from all input data
    UPSTREAM = "upstream"  # an upstream step of this plan publishes a new version first
    DEFINITION = "definition"  # the definition (config, SQL, Python) changed
    INPUTS = "inputs"  # a new input: an upstream version or the source files changed
    CHANGED = "changed"  # inputs or definition changed (no record says which)
    INTERVALS = "intervals"  # a partitioned dataset has due intervals (new, or restated)
    UP_TO_DATE = "up_to_date"
    ERROR = "error"


_STATUS = {
    Action.RUN: StepStatus.PLANNED,
    Action.SKIP: StepStatus.NOOP,
    Action.FAIL: StepStatus.FAILED,
}


def _freeze(value: object) -> object:
    """A read-only copy: mappings become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: object) -> object:
    """A plain (JSON-serialisable) copy of a frozen value: dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class PlannedStep:
    """One dataset of a plan."""

    dataset: str
    kind: str  # source / sql / python
    #: upstream steps of this plan it reads, in the project's order: it starts after them,
    #: and is skipped when one of them fails or is blocked
    depends_on: tuple[str, ...] = ()
    #: other steps of this plan it starts after without reading them as inputs: the
    #: datasets its checks compare against (``to:``)
    after: tuple[str, ...] = ()
    #: pinned inputs: upstream table versions, or ``{"source": <fingerprint>}`` (read-only)
    inputs: Mapping[str, object] = field(default_factory=dict)
    definition: str = ""  # hash of everything that shapes the output
    action: Action = Action.RUN
    cause: Cause = Cause.NEW
    reason: str = ""  # the cause for a person
    #: inputs whose pin is a prediction: their upstream is rebuilt by this plan first
    predicted: tuple[str, ...] = ()
    batch_id: str | None = None  # the batch the pinned inputs make (when compared)
    cursor_from: object = None  # an incremental step: the lowest cursor value it will read
    last_version: int | None = None  # the table's newest lockgate version when planned
    hint: str | None = None  # how to fix a step that cannot run
    #: a partitioned step: its due intervals as merged ``[lo, hi)`` spans (epoch seconds)
    intervals: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _freeze(self.inputs))
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "after", tuple(self.after))
        object.__setattr__(self, "predicted", tuple(self.predicted))
        object.__setattr__(self, "intervals", tuple(tuple(i) for i in self.intervals))

    @property
    def status(self) -> StepStatus:
        """The dry run's status: ``planned`` (will run), ``noop`` or ``failed``."""
        return _STATUS[self.action]

    def firm_inputs(self) -> dict[str, object]:
        """The pins that are not predictions (plain values)."""
        return {k: thaw(v) for k, v in self.inputs.items() if k not in self.predicted}

    def result(self) -> StepResult:
        """The dry run's view of this step (what ``lockgate run --dry-run`` prints)."""
        r = StepResult(dataset=self.dataset, status=self.status, reason=self.reason, hint=self.hint)
        if self.cause in (Cause.UP_TO_DATE, Cause.DEFINITION, Cause.INPUTS, Cause.CHANGED):
            r.inputs = {k: thaw(v) for k, v in self.inputs.items()}
        return r

    def to_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "depends_on": list(self.depends_on),
            "after": list(self.after),
            "inputs": thaw(self.inputs),
            "definition": self.definition,
            "action": str(self.action),
            "cause": str(self.cause),
            "reason": self.reason,
            "predicted": list(self.predicted),
            "batch_id": self.batch_id,
            "cursor_from": self.cursor_from,
            "last_version": self.last_version,
            "hint": self.hint,
            "intervals": [list(i) for i in self.intervals],
        }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The selected steps of a project in dependency order, and the run's options."""

    project: Project = field(repr=False, compare=False)
    steps: tuple[PlannedStep, ...]
    select: tuple[str, ...] = ()
    full_refresh: bool = False
    #: the run's clock (freshness checks); None: the time execution starts
    now: datetime | None = None
    #: the warehouse's identity as planned (None: a new identity will be created)
    project_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "select", tuple(self.select))

    @property
    def names(self) -> list[str]:
        return [s.dataset for s in self.steps]

    def step(self, dataset: str) -> PlannedStep:
        for s in self.steps:
            if s.dataset == dataset:
                return s
        raise KeyError(dataset)

    def results(self) -> list[StepResult]:
        """The dry run: one result per step (status planned / noop / failed, and why)."""
        return [s.result() for s in self.steps]

    def to_dict(self) -> dict[str, object]:
        return {
            "project": self.project.config.name,
            "select": list(self.select),
            "full_refresh": self.full_refresh,
            "now": self.now.isoformat() if self.now else None,
            "project_id": self.project_id,
            "created_at": self.created_at.isoformat(),
            "steps": [s.to_dict() for s in self.steps],
        }


class _NoSessions:
    """Planning reads no data: it has no engine session."""

    opened = False

    def current(self) -> Session:
        raise RuntimeError("planning reads no data: no engine session")


def plan(
    project: Project,
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    now: datetime | None = None,
) -> Plan:
    """What a run of ``select`` would do, and why, without reading data or taking the lock.

    Raises :class:`~lockgate.errors.ConfigError` for an unknown selection and
    :class:`~lockgate.state.errors.ProjectIdentityError` when the warehouse belongs to
    another project; a step that cannot run is planned with :attr:`Action.FAIL`."""
    from lockgate.runloop import identity
    from lockgate.runloop.runner import open_backends
    from lockgate.runloop.step import StepContext

    names = project.select(list(select))
    state, store = open_backends(project)
    try:
        ctx = StepContext(
            project=project,
            sessions=_NoSessions(),
            store=store,
            state=state,
            run_id="plan",
            run_seq=0,
            full_refresh=full_refresh,
            now=now or datetime.now(UTC),
            project_id=identity.resolve(
                state,
                project.warehouse_path,
                project.config.name,
                full_refresh=full_refresh,
                write=False,
                private=identity.private_store(project.state_url, project.root),
            ),
        )
        steps: list[PlannedStep] = []
        will_run: set[str] = set()
        for name in names:
            s = _plan_step(ctx, project.datasets[name], set(names), will_run)
            if s.action == Action.RUN:
                will_run.add(name)
            steps.append(s)
    finally:
        state.close()
    return Plan(
        project=project,
        steps=tuple(steps),
        select=tuple(select),
        full_refresh=full_refresh,
        now=now,
        project_id=ctx.project_id,
    )


def _plan_step(
    ctx: StepContext, spec: DatasetSpec, selected: set[str], will_run: set[str]
) -> PlannedStep:
    from lockgate.runloop.step import definition_hash, resolve_inputs
    from lockgate.runloop.trust import verify_published

    name = spec.name
    deps = tuple(u for u in ctx.project.deps.get(name, ()) if u in selected)
    rebuilt = tuple(u for u in deps if u in will_run)
    base = PlannedStep(
        dataset=name,
        kind=spec.kind,
        depends_on=deps,
        after=_check_targets(spec, selected - {name, *deps}),
        definition=definition_hash(ctx, spec),
        predicted=rebuilt,
    )
    try:
        if not ctx.full_refresh:
            verify_published(ctx, name, repair=False)
        last = ctx.store.last_commit(name)
    except LockgateError as e:
        return replace(base, action=Action.FAIL, cause=Cause.ERROR, reason=e.message, hint=e.hint)
    base = replace(base, last_version=None if last is None else last.version)
    if spec.partition is not None and last is not None and not ctx.full_refresh:
        return _plan_intervals(ctx, spec, base)
    early = None
    if ctx.full_refresh:
        early = (Cause.FULL_REFRESH, "--full-refresh: rebuild from all input data")
    elif rebuilt:
        early = (Cause.UPSTREAM, f"upstream '{rebuilt[0]}' will publish a new version")
    elif last is None:
        early = (Cause.NEW, "never published")
    if early is not None:  # runs whatever its inputs: pin them where they can be read now
        try:
            base = replace(base, inputs=resolve_inputs(ctx, spec))
        except LockgateError as e:
            log.debug("plan: inputs of %s cannot be pinned yet: %s", name, e)
        return replace(base, action=Action.RUN, cause=early[0], reason=early[1])
    assert last is not None
    try:
        inputs = resolve_inputs(ctx, spec)
    except LockgateError as e:
        return replace(base, action=Action.FAIL, cause=Cause.ERROR, reason=e.message)
    return _compare(ctx, spec, replace(base, inputs=inputs), inputs, last)


def _compare(
    ctx: StepContext,
    spec: DatasetSpec,
    base: PlannedStep,
    inputs: dict[str, object],
    last: CommitInfo,
) -> PlannedStep:
    """A published step that nothing upstream rebuilds: skip it when its batch (definition
    and pinned inputs) is the one the table's newest commit holds, else say what changed."""
    from lockgate.runloop import incremental
    from lockgate.runloop.step import batch_id_for, current_watermark

    bid = batch_id_for(base.definition, inputs)
    base = replace(base, batch_id=bid)
    if bid == last.batch_id:
        reason = f"inputs and definition unchanged since version {last.version}"
        return replace(base, action=Action.SKIP, cause=Cause.UP_TO_DATE, reason=reason)
    reason = f"inputs or definition changed since version {last.version}"
    wm = current_watermark(ctx, spec)
    lowest = None
    if spec.incremental is not None and wm is not None:
        lowest = incremental.min_cursor(spec.incremental, wm)
        reason += f"; incremental from {spec.incremental.cursor} >= {lowest}"
    cause, detail = _what_changed(ctx, spec, base.definition, inputs)
    if detail:
        reason = f"{detail} since version {last.version}" + reason.partition(str(last.version))[2]
    return replace(base, action=Action.RUN, cause=cause, reason=reason, cursor_from=lowest)


def _plan_intervals(ctx: StepContext, spec: DatasetSpec, base: PlannedStep) -> PlannedStep:
    """A published partitioned step runs when intervals are due — whatever its upstream
    does — and says which (new ones, or done ones whose definition changed)."""
    from lockgate.ops import intervals as iv
    from lockgate.runloop.due import due_now
    from lockgate.runloop.step import resolve_inputs

    assert spec.partition is not None
    try:
        base = replace(base, inputs=resolve_inputs(ctx, spec))
    except LockgateError as e:
        return replace(base, action=Action.FAIL, cause=Cause.ERROR, reason=e.message, hint=e.hint)
    found = due_now(ctx.state, ctx.project, spec, ctx.now)
    reason = found.describe(spec.partition.grain)
    spans = tuple(iv.spans(found.intervals))
    if not found.intervals:
        return replace(base, action=Action.SKIP, cause=Cause.UP_TO_DATE, reason=reason)
    if found.redo:
        cause = Cause.DEFINITION
        reason = f"definition changed ({definition_source(spec)}): {reason}"
    else:
        cause = Cause.INTERVALS
    return replace(base, action=Action.RUN, cause=cause, reason=reason, intervals=spans)


def _check_targets(spec: DatasetSpec, others: set[str]) -> tuple[str, ...]:
    """The steps among ``others`` that ``spec``'s checks compare against (``to:``): the
    project orders them first."""
    targets = [t for c in spec.checks if isinstance(t := getattr(c, "to", None), str)]
    if not targets:  # most datasets: no pass over every other step (500 x 500 on 500)
        return ()
    by_lower = {n.lower(): n for n in others}
    out: list[str] = []
    for target in targets:
        hit = by_lower.get(target.lower())
        if hit is not None and hit not in out:
            out.append(hit)
    return tuple(out)


def _what_changed(
    ctx: StepContext, spec: DatasetSpec, def_hash: str, inputs: Mapping[str, object]
) -> tuple[Cause, str]:
    """The definition or the inputs, by the last published step's record (if any), and
    what changed in words (the SQL file, the upstream versions; empty: unknown)."""
    name = spec.name
    steps = ctx.state.dataset_steps(ctx.project.name, name, limit=20, project_id=ctx.project_id)
    for step in steps:
        if str(step.status) in ("success", "noop"):
            recorded = dict(step.input_versions or {})
            if recorded.get("definition") is None:
                return Cause.CHANGED, ""
            if recorded["definition"] != def_hash:
                return Cause.DEFINITION, f"definition changed ({definition_source(spec)})"
            moved = [
                f"{k} {_short(recorded.get(k))} -> {_short(v)}"
                for k, v in inputs.items()
                if k not in ("definition", "resume") and recorded.get(k) != v
            ]
            return Cause.INPUTS, ("new input: " + ", ".join(moved)) if moved else ""
    return Cause.CHANGED, ""


def definition_source(spec: DatasetSpec) -> str:
    """Where a dataset's definition lives, for a person: its SQL file, its Python transform
    or its YAML entry (``datasets/gold/daily_revenue.sql or its YAML``)."""
    from pathlib import PurePosixPath

    from lockgate.project.models import PythonTransformSpec, SqlTransformSpec

    yaml = f"{spec.defined_in}:{spec.defined_line}" if spec.defined_in else "its YAML"
    t = spec.transform
    if isinstance(t, SqlTransformSpec) and t.sql_file:
        base = PurePosixPath(spec.defined_in).parent if spec.defined_in else PurePosixPath()
        return f"SQL file {(base / t.sql_file).as_posix()} or {yaml}"
    if isinstance(t, SqlTransformSpec):
        return f"SQL in {yaml}"
    if isinstance(t, PythonTransformSpec):
        return f"Python transform {t.python}() or {yaml}"
    return yaml


def _short(v: object) -> str:
    text = "none" if v is None else str(v)
    return text if len(text) <= 40 else text[:37] + "..."
