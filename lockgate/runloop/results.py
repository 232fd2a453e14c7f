"""Values a run returns: per-step results and the run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lockgate.errors import TerminalError

# one definition of each status, shared with the state store (re-exported here)
from lockgate.state.records import RunStatus as RunStatus
from lockgate.state.records import StepStatus as StepStatus


@dataclass
class StepResult:
    dataset: str
    status: StepStatus
    reason: str = ""
    #: records read: rows staged (source records or transform output) + unreadable records
    rows_in: int = 0
    rows_out: int = 0  # rows written to the dataset
    rows_quarantined: int = 0  # rows written to its quarantine (failed checks, rejects, late)
    #: rows neither published nor quarantined, always for a named reason (``skip_reasons``)
    rows_skipped: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    output_version: int | None = None
    quarantine_version: int | None = None
    watermark: str | None = None
    watermark_type: str | None = None
    schema_version: int | None = None
    batch_id: str | None = None
    duration_s: float = 0.0
    attempts: int = 0
    checks: list[dict[str, object]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    drift: dict[str, object] | None = None
    columns: dict[str, str] = field(default_factory=dict)  # published schema
    inputs: dict[str, object] = field(default_factory=dict)
    error: str | None = None
    hint: str | None = None  # how to fix a failure
    #: a change source stopped at its batch size (or a truncate / DDL): more changes wait
    #: (``lockgate run`` runs the dataset again until they are read)
    more_available: bool = False
    #: a partitioned dataset: each processed interval (label, status, rows) …
    intervals: list[dict[str, object]] = field(default_factory=list)
    #: resources the step used: ``cpu_s`` (process CPU seconds while it ran — overlapping
    #: when steps run in parallel), ``peak_rss_bytes`` (the process's resident memory, sampled
    #: after each stage), ``bytes_read`` (its pinned input tables' files), ``bytes_written``
    #: (the files its commit added)
    cost: dict[str, float] = field(default_factory=dict)
    #: … and the ``[lo, hi)`` ranges it published (recorded as done)
    done_intervals: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (StepStatus.SUCCESS, StepStatus.NOOP, StepStatus.PLANNED)

    def skip(self, reason: str, rows: int) -> None:
        """Count ``rows`` as skipped for ``reason`` (one of :data:`SKIP_REASONS`)."""
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        if rows:
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + rows
            self.rows_skipped += rows

    def check_accounting(self, rows_out: int | None = None) -> None:
        """The step invariant: records read = published + quarantined + skipped.

        ``rows_out`` defaults to :attr:`rows_out`. Raises :class:`AccountingError` (a bug in
        lockgate, never a data problem) when rows are unaccounted for."""
        out = self.rows_out if rows_out is None else rows_out
        if self.rows_skipped != sum(self.skip_reasons.values()):
            raise AccountingError(
                f"dataset '{self.dataset}': rows_skipped {self.rows_skipped} differs from the "
                f"sum of skip_reasons {self.skip_reasons}"
            )
        if self.rows_in != out + self.rows_quarantined + self.rows_skipped:
            raise AccountingError(
                f"dataset '{self.dataset}': {self.rows_in} records read but {out} published "
                f"+ {self.rows_quarantined} quarantined + {self.rows_skipped} skipped "
                f"({self.skip_reasons or 'no skip reasons'}): "
                f"{self.rows_in - out - self.rows_quarantined - self.rows_skipped:+} rows "
                "unaccounted for"
            )

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["status"] = str(self.status)
        return d


#: why a record read by a step can be neither published nor quarantined
SKIP_REASONS: dict[str, str] = {
    "already_published": "re-read (lookback window, boundary, NULL cursor, or a file read "
    "again) and already in the table",
    "already_quarantined": "re-read and already in the quarantine",
    "superseded": "merge: the table already holds a newer version of the key (by cursor)",
    "duplicate_in_window": "merge: another row of the batch has the same key and wins",
    "late": "older than watermark - lookback, dropped by incremental.late: skip",
    "duplicate_record": "the source returned the same record twice in one read (offset "
    "pagination over a list that changed): one copy kept",
    "already_applied": "change data capture: the change's transaction is already in the "
    "table (the slot handed it out again after a crash)",
    "superseded_in_batch": "change data capture: a later change of the same row in the batch wins",
    "truncated": "change data capture: a TRUNCATE later in the batch removed the row",
    "outside_due_intervals": "partitioned: the row's time interval is done already, not due "
    "yet, or before partition.start (a run reads only its due intervals)",
    "interval_blocked": "partitioned: the gate blocked the row's interval; the interval stays "
    "due and is processed again by the next run",
    "parent_field_missing": "REST child endpoint: a parent record without a scalar value for "
    "a {parent.field} placeholder opens no child read (counted per parent record)",
    "parent_value_unsafe": "REST child endpoint: a parent value for a path placeholder is "
    "empty, '.' or '..' (it would read another endpoint); counted per parent record",
    "duplicate_parent": "REST child endpoint: the parent's child URL was already read in this "
    "run (counted per parent record)",
    "child_not_found": "REST child endpoint answered 404 and child_not_found: skip is set "
    "(counted per parent record; listed in the step's warnings)",
}


class AccountingError(TerminalError):
    """Internal error: a step cannot account for every record it read. Always a bug."""

    def __init__(self, message: str) -> None:
        super().__init__(
            "internal error: " + message,
            hint="a bug in lockgate, not in your data: the dataset's batch was not reported "
            "as published; re-run with --debug and report it",
        )


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

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "project": self.project,
            "status": str(self.status),
            "duration_s": round(self.duration_s, 3),
            "dry_run": self.dry_run,
            "steps": [s.to_dict() for s in self.steps],
        }
