"""What a stream did, in the state store and in metrics.

A stream runs for days, so it is recorded in *segments*: every ``record_every`` (and when
it stops) one run (``selection = "stream:<name>"``) with one step for the sink dataset,
whose rows reconcile like a dataset step's — ``rows_in = rows_out + rows_quarantined
+ rows_skipped`` (DLQ rows are the quarantine; duplicates, already committed and late
events routed to a late table are skipped with their reason) — and the check results
summed over the segment's batches. ``lockgate history``, scores and the dashboard read them
as they read dataset runs. Metrics (per stream, Prometheus) are updated every batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockgate.streams.report import BatchCounts

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from lockgate.quality.engine import CheckResult
    from lockgate.state import StateStore


@dataclass
class _CheckSum:
    name: str
    type: str
    dimension: str
    severity: str
    failing_rows: int = 0
    rows: int = 0
    batches_failed: int = 0
    seconds: float = 0.0

    def as_result(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "dimension": self.dimension,
            "severity": self.severity,
            "failing_rows": self.failing_rows,
            "fraction": self.failing_rows / self.rows if self.rows else 0.0,
            "passed": self.batches_failed == 0,
            "observed": float(self.failing_rows),
            "seconds": self.seconds,
            "message": f"{self.failing_rows} of {self.rows} events failed (to the DLQ)"
            if self.failing_rows
            else "",
        }


@dataclass
class StreamRecorder:
    """Accumulates batches and writes a run + step every ``every_s`` seconds (and at stop)."""

    state: StateStore
    project: str
    stream: str
    sink: str
    late_table: str | None = None
    every_s: float = 60.0
    counts: BatchCounts = field(default_factory=BatchCounts)
    checks: dict[str, _CheckSum] = field(default_factory=dict)
    batches: int = 0
    last_offset: str | None = None
    last_version: int | None = None
    runs: list[str] = field(default_factory=list)
    _since: float = field(default_factory=time.monotonic)

    def batch(self, counts: BatchCounts, results: list[CheckResult], offset: str) -> None:
        self.counts.add(counts)
        self.batches += 1
        self.last_offset = offset
        for r in results:
            s = self.checks.setdefault(r.name, _CheckSum(r.name, r.type, r.dimension, r.severity))
            s.failing_rows += r.failing_rows
            s.rows += r.rows_in_scope
            s.batches_failed += 0 if r.passed else 1
            s.seconds += r.seconds
        if time.monotonic() - self._since >= self.every_s:
            self.flush()

    def flush(self, status: str = "success", error: str | None = None) -> str | None:
        """Write the segment (nothing when no batch came and nothing failed)."""
        if not self.batches and error is None:
            return None
        c = self.counts
        run = self.state.start_run(
            self.project, selection=f"stream:{self.stream}", args={"stream": self.stream}
        )
        step = self.state.start_step(run.run_id, self.project, self.sink)
        if self.checks:
            results = [s.as_result() for s in self.checks.values()]
            self.state.record_check_results(step, run.run_id, self.project, self.sink, results)
        skips = {
            "duplicate": c.duplicates,
            "already committed": c.already_committed,
            "redelivered": c.redelivered,
        }
        if self.late_table is not None:
            skips[f"late: to {self.late_table}"] = c.late
        else:
            skips["late"] = c.late  # 0: late events go to the DLQ (quarantined)
        self.state.finish_step(
            step,
            status="success" if error is None else "failed",
            rows_in=c.read,
            rows_out=c.published,
            rows_quarantined=c.dlq,
            skip_reasons={k: v for k, v in skips.items() if v},
            rows_skipped=c.duplicates + c.already_committed + c.redelivered + c.late,
            batch_id=self.last_offset,
            message=f"{self.batches} batch(es); {c.enrich_missed} kept without an enrich match"
            if c.enrich_missed
            else f"{self.batches} batch(es)",
            reason=error,
            attempts=1,
        )
        self.state.finish_run(
            run.run_id,
            status,
            summary={"stream": self.stream, "batches": self.batches, **_counts(c)},
            error=error,
        )
        self.runs.append(run.run_id)
        self.counts, self.checks, self.batches = BatchCounts(), {}, 0
        self._since = time.monotonic()
        return run.run_id


def _counts(c: BatchCounts) -> dict[str, int]:
    return {f: int(getattr(c, f)) for f in c.__dataclass_fields__}


class StreamMetrics:
    """Per-stream Prometheus metrics on ``registry`` (the one ``lockgate serve`` exposes)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        r = registry
        self.events = Counter(
            "lockgate_stream_events", "stream events by outcome", ["stream", "kind"], registry=r
        )
        self.lag = Gauge(
            "lockgate_stream_lag_messages",
            "messages in the broker not yet delivered to the stream's consumer",
            ["stream"],
            registry=r,
        )
        self.rate = Gauge(
            "lockgate_stream_events_per_second", "events read per second, last batch",
            ["stream"], registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "lockgate_stream_batch_seconds", "batch latency (parse to commit)", ["stream"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "lockgate_stream_commit_seconds", "Delta commits of a batch", ["stream"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r,
        )  # fmt: skip
        self.compaction_errors = Counter(
            "lockgate_stream_compaction_errors",
            "compactions of the stream's tables that failed (the stream went on)",
            ["stream"],
            registry=r,
        )
        self.dlq_ratio = Gauge(
            "lockgate_stream_dlq_ratio", "DLQ events / events read, last batch", ["stream"],
            registry=r,
        )  # fmt: skip

    def batch(
        self, stream: str, c: BatchCounts, seconds: float, commit_s: float, lag: int | None
    ) -> None:
        kinds = ("read", "published", "late", "dlq", "duplicates", "already_committed")
        for kind in (*kinds, "redelivered"):
            n = getattr(c, kind)
            if n:
                self.events.labels(stream, kind).inc(n)
        self.batch_seconds.labels(stream).observe(seconds)
        self.commit_seconds.labels(stream).observe(commit_s)
        if seconds > 0:
            self.rate.labels(stream).set(c.read / seconds)
        self.dlq_ratio.labels(stream).set(c.dlq / c.read if c.read else 0.0)
        if lag is not None:
            self.lag.labels(stream).set(lag)
