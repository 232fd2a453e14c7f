"""What a step works with: the run's shared :class:`StepContext` (typed by
:mod:`lockgate.runloop.ports`) and the :class:`StepState` one step builds up, stage by stage
(:mod:`lockgate.runloop.stages`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlglot import exp

from lockgate.project.models import DatasetSpec
from lockgate.runloop.contract import ContractResult
from lockgate.runloop.incremental import Cursor, Rereads
from lockgate.runloop.ports import LeaseLike, ProjectView, SessionSource
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.sources.base import Source, StagedSource
from lockgate.state.store import StateStore
from lockgate.storage.base import TableSnapshot, TableStore

if TYPE_CHECKING:  # lockgate.quality is imported when a step audits, not with the package
    from lockgate.engine.session import Session
    from lockgate.quality import AuditResult, GateDecision
    from lockgate.quality.checks import BaseCheck

BATCH_ROWS = 122_880  # DuckDB → Arrow batch size (DuckDB's row-group size)
Reporter = Callable[[str, str], None]  # (dataset, phase)


@dataclass
class StepContext:
    """What every step of one run shares."""

    project: ProjectView
    #: the engine sessions; a run whose steps are all up to date never opens one
    sessions: SessionSource
    store: TableStore
    state: StateStore
    run_id: str
    run_seq: int
    full_refresh: bool = False
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    report: Reporter = lambda dataset, phase: None
    lease: LeaseLike | None = None  # the run's lock (a dry run has none: it commits nothing)
    project_id: str | None = None  # the warehouse's identity (runloop.identity)
    #: tables checked intact in this run (runloop.trust): read ones are checked once
    verified: set[str] = field(default_factory=set)
    #: partitioned datasets: the intervals this run may process (a backfill's chunk); a
    #: dataset not named processes all its due intervals
    intervals: Mapping[str, Sequence[tuple[int, int]]] | None = None
    #: commits in a fixed order across concurrent runs (a backfill's chunks)
    turn: CommitTurn | None = None
    #: source fingerprints the run's plan took moments ago, by dataset: a step's first
    #: attempt uses its own instead of asking the source again (an unchanged database table
    #: costs one query per run, not two); taken once, so a retry asks anew
    planned_sources: dict[str, object] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        """The calling thread's engine session (opened on first use)."""
        return self.sessions.current()

    def drop_work(self, *tables: str) -> None:
        """Drop engine work tables, if the session was ever opened (else there are none)."""
        if self.sessions.opened:
            self.session.drop(*tables)


def stage_name(dataset: str) -> str:
    return f"__lg_stage_{dataset}"


@dataclass
class StepState:
    """What one step has found and decided so far; each stage reads and adds to it.

    A stage ends the step early with :meth:`end` (an outcome such as *up to date*); the
    fields a stage fills stay ``None`` until it ran."""

    spec: DatasetSpec  # with the project's default write mode applied
    result: StepResult
    stage: str  # the staging table
    table: TableSnapshot | None = None  # the dataset's table (None: not published yet)
    quarantine: TableSnapshot | None = None  # its quarantine table (read by `stage`)
    upstream: dict[str, int | None] = field(default_factory=dict)  # pinned input versions
    definition: str = ""  # definition hash
    watermark: Cursor = None  # the published watermark (incremental)
    lowest: Cursor = None  # the lowest cursor value to (re)read: watermark - lookback
    rejects: int = 0  # unreadable records (to quarantine)
    rereads: Rereads = field(default_factory=Rereads)
    staged_rows: int = 0
    staged_columns: dict[str, str] = field(default_factory=dict)
    checks: list[BaseCheck] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)  # dataset → relation
    contract: ContractResult | None = None
    audit: AuditResult | None = None
    decision: GateDecision | None = None
    #: which failed checks send a row to quarantine (None: no row-level split)
    split: GateDecision | list[int] | None = None
    publish_query: exp.Select | None = None  # the rows the dataset's commit publishes
    rows_out: int = 0  # rows the publish query has (counted before any commit)
    #: a source dataset: its adapter and what it staged (a change source is acknowledged
    #: after the commit)
    source: Source | None = None
    staged: StagedSource | None = None
    #: a partitioned dataset: the due intervals this step processes, and each one's outcome
    intervals: list[tuple[int, int]] = field(default_factory=list)
    outcomes: list[IntervalOutcome] = field(default_factory=list)
    null_partition: int = 0  # staged rows whose partition column is NULL (quarantined)
    done: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def batch_id(self) -> str:
        return self.result.batch_id or ""

    def end(self, status: StepStatus | None = None, reason: str | None = None) -> None:
        """End the step here with ``status`` (default: unchanged) and ``reason``."""
        if status is not None:
            self.result.status = status
        if reason is not None:
            self.result.reason = reason
        self.done = True


@dataclass
class IntervalOutcome:
    """One interval of a partitioned step: its rows (a view of the staged batch), what the
    audit found and what the gate decided."""

    lo: int
    hi: int
    label: str
    view: str
    audit: AuditResult | None = None
    decision: GateDecision | None = None
    split: GateDecision | list[int] | None = None
    publish_query: exp.Select | None = None
    created: bool = False  # its view exists (only intervals with rows get one)

    @property
    def blocked(self) -> bool:
        return self.decision is not None and self.decision.action == "block"


class CommitTurn(Protocol):
    """Orders the commits of concurrent runs: run ``k`` commits to a table after run
    ``k - 1`` has committed to it (or finished with it)."""

    def wait(self, dataset: str) -> None: ...
    def release(self, dataset: str) -> None: ...


#: a stage of a step (:data:`lockgate.runloop.step.STAGES`)
Stage = Callable[[StepContext, StepState], None]
