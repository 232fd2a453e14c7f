"""What the state store returns: plain frozen dataclasses (no ORM objects leak out).

All timestamps are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """A run's status: ``running`` in the state store until it finishes."""

    SUCCESS = "success"
    PARTIAL = "partial"  # some steps failed or blocked, others published
    FAILED = "failed"
    BLOCKED = "blocked"  # a quality gate blocked
    INTERRUPTED = "interrupted"  # stopped early: lost its lock, or the process died
    RUNNING = "running"  # started, not finished (state store only)


class StepStatus(StrEnum):
    """A step's status — the run loop's result and the state store's record alike."""

    SUCCESS = "success"  # published (possibly with quarantined rows)
    NOOP = "noop"  # inputs unchanged since the last publish: nothing to do
    BLOCKED = "blocked"  # the quality gate blocked the batch; nothing published
    FAILED = "failed"  # an error; nothing published
    UPSTREAM_FAILED = "upstream_failed"  # skipped because an upstream step failed or blocked
    PLANNED = "planned"  # dry run: would run (never recorded)
    RUNNING = "running"  # between start_step and finish_step (state store only)


@dataclass(frozen=True)
class RunRecord:
    """Handle of a started run. ``seq`` is the Delta application-transaction version."""

    run_id: str
    seq: int
    started_at: datetime


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    seq: int
    project: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    selection: str | None
    args: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None
    pid: int | None
    host: str | None


@dataclass(frozen=True)
class AttemptInfo:
    step_id: int
    attempt: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    transient: bool


@dataclass(frozen=True)
class StepInfo:
    step_id: int
    run_id: str
    project: str
    dataset: str
    status: str
    reason: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    attempts: int | None
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    input_versions: dict[str, Any] | None
    output_version: int | None
    quarantine_version: int | None
    watermark: str | None
    schema_version: int | None
    batch_id: str | None
    message: str | None
    rows_skipped: int | None = None  # read, neither published nor quarantined
    skip_reasons: dict[str, int] | None = None  # reason -> rows (sums to rows_skipped)
    #: cpu_s, peak_rss_bytes, bytes_read, bytes_written
    cost: dict[str, float] | None = None


@dataclass(frozen=True)
class CheckRecord:
    step_id: int
    run_id: str
    project: str
    dataset: str
    check_name: str
    check_type: str | None
    dimension: str | None
    severity: str | None
    failing_rows: int | None
    fraction: float | None
    passed: bool
    observed: float | None
    samples: list[Any] | None
    seconds: float | None
    message: str | None
    finished_at: datetime | None = None  # when the step that ran the check finished
    expected: dict[str, Any] | None = None  # anomaly checks: {median, low, high, history, score}


@dataclass(frozen=True)
class RunDetail:
    """One run with its steps, their attempts and check results (``get_run``)."""

    run: RunInfo
    steps: list[StepInfo] = field(default_factory=list)
    attempts: dict[int, list[AttemptInfo]] = field(default_factory=dict)  # by step_id
    checks: dict[int, list[CheckRecord]] = field(default_factory=dict)  # by step_id


@dataclass(frozen=True)
class ScoreRecord:
    run_id: str
    project: str
    dataset: str
    dimension: str  # a quality dimension or "overall"
    score: float
    created_at: datetime


@dataclass(frozen=True)
class Watermark:
    project: str
    dataset: str
    value: str
    value_type: str | None
    updated_at: datetime
    run_id: str | None


@dataclass(frozen=True)
class ProfileRecord:
    project: str
    dataset: str
    run_id: str | None
    created_at: datetime
    profile: dict[str, Any]


@dataclass(frozen=True)
class LockInfo:
    """The row of the ``locks`` table: who holds a project's lease."""

    project: str
    holder: str
    pid: int | None
    host: str | None
    acquired_at: datetime
    expires_at: datetime
    heartbeat_at: datetime | None
