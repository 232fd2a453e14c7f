"""Values a run returns: per-step results and the run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    SUCCESS = "success"  # published (possibly with quarantined rows)
    NOOP = "noop"  # inputs unchanged since the last publish: nothing to do
    BLOCKED = "blocked"  # the quality gate blocked the batch; nothing published
    FAILED = "failed"  # an error; nothing published
    UPSTREAM_FAILED = "upstream_failed"  # skipped because an upstream step failed or blocked
    PLANNED = "planned"  # dry run: would run


@dataclass
class StepResult:
    dataset: str
    status: StepStatus
    reason: str = ""
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    output_version: int | None = None
    quarantine_version: int | None = None
    watermark: str | None = None
    watermark_type: str | None = None
    schema_version: int | None = None
    batch_id: str | None = None
    duration_s: float = 0.0
    attempts: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    columns: dict[str, str] = field(default_factory=dict)  # published schema
    inputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    hint: str | None = None  # how to fix a failure

    @property
    def ok(self) -> bool:
        return self.status in (StepStatus.SUCCESS, StepStatus.NOOP, StepStatus.PLANNED)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d


class RunStatus(StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"  # some steps failed or blocked, others published
    FAILED = "failed"
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"  # stopped early: the run lost its project lock


@dataclass
class RunResult:
    run_id: str
    seq: int
    project: str
    status: RunStatus
    steps: list[StepResult]
    duration_s: float
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.status == RunStatus.SUCCESS

    def step(self, dataset: str) -> StepResult:
        for s in self.steps:
            if s.dataset == dataset:
                return s
        raise KeyError(dataset)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "project": self.project,
            "status": str(self.status),
            "duration_s": round(self.duration_s, 3),
            "dry_run": self.dry_run,
            "steps": [s.to_dict() for s in self.steps],
        }
