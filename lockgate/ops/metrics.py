"""Prometheus metrics of runs, as a run-events listener (prometheus-client).

Labels are bounded: project, dataset, status, severity, schedule — never a run id.

>>> from lockgate.runloop import events as ev
>>> m = RunMetrics()
>>> m(ev.RunFinished(run_id="r", project="p", status="success", duration_s=1.5))
>>> b"lockgate_runs_total{project=\\"p\\",status=\\"success\\"} 1.0" in m.exposition()
True
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from lockgate.runloop import events as ev
from lockgate.runloop.results import StepResult

#: the rows a step accounts for (records read = published + quarantined + skipped)
_ROW_KINDS = ("read", "published", "quarantined", "skipped")
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class RunMetrics:
    """Counts what runs did; its own registry (several schedulers in one process, tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.runs = Counter("lockgate_runs", "runs finished", ["project", "status"], registry=r)
        self.run_seconds = Histogram(
            "lockgate_run_duration_seconds", "run wall time", ["project"],
            buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.steps = Counter("lockgate_steps", "steps finished", ["dataset", "status"], registry=r)
        self.step_seconds = Histogram(
            "lockgate_step_duration_seconds", "step wall time", ["dataset"],
            buckets=_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.rows = Counter("lockgate_rows", "rows by outcome", ["dataset", "kind"], registry=r)
        self.check_failures = Counter(
            "lockgate_check_failures", "checks that failed", ["dataset", "severity"], registry=r
        )
        self.blocked = Counter("lockgate_gate_blocked", "batches blocked", ["dataset"], registry=r)
        self.last_success = Gauge(
            "lockgate_last_success_timestamp_seconds",
            "when a dataset last published",
            ["dataset"],
            registry=r,
        )
        self.freshness_lag = Gauge(
            "lockgate_freshness_lag_seconds", "age of the newest publish", ["dataset"], registry=r
        )
        self.cpu = Counter(
            "lockgate_step_cpu_seconds", "CPU seconds of steps", ["dataset"], registry=r
        )
        self.io_bytes = Counter(
            "lockgate_step_bytes", "bytes steps read and wrote", ["dataset", "kind"], registry=r
        )
        self.peak_rss = Gauge(
            "lockgate_step_peak_rss_bytes", "resident memory of the last step", ["dataset"],
            registry=r,
        )  # fmt: skip
        self.schedule_fired = Counter(
            "lockgate_schedule_fired", "ticks fired", ["schedule", "status"], registry=r
        )
        self.schedule_next = Gauge(
            "lockgate_schedule_next_tick_timestamp_seconds",
            "the next tick of the earliest schedule",
            registry=r,
        )

        self.cdc_retained = Gauge(
            "lockgate_cdc_retained_wal_bytes",
            "WAL a change source's replication slot holds back",
            ["dataset"],
            registry=r,
        )
        self.cdc_usable = Gauge(
            "lockgate_cdc_slot_usable",
            "1 while the slot exists and wal_status is not lost, else 0",
            ["dataset"],
            registry=r,
        )

    def cdc(self, rows: list[dict[str, object]]) -> None:
        """Slot gauges from :func:`lockgate.api.cdc_status` rows."""
        for row in rows:
            name = str(row["dataset"])
            retained = row.get("retained_bytes")
            if isinstance(retained, int):
                self.cdc_retained.labels(name).set(retained)
            usable = bool(row.get("exists")) and row.get("wal_status") != "lost"
            self.cdc_usable.labels(name).set(1 if usable else 0)

    def __call__(self, e: ev.RunEvent) -> None:
        if isinstance(e, ev.RunFinished):
            self.runs.labels(e.project, e.status).inc()
            self.run_seconds.labels(e.project).observe(e.duration_s)
        elif isinstance(e, ev.StepFinished):
            self._step(e.result, e.at)
        elif isinstance(e, ev.CheckEvaluated) and e.status in ("fail", "warn"):
            self.check_failures.labels(e.dataset, e.severity).inc()
        elif isinstance(e, ev.GateBlockedEvent):
            self.blocked.labels(e.dataset).inc()

    def _step(self, r: StepResult, at: datetime) -> None:
        self.steps.labels(r.dataset, str(r.status)).inc()
        self.step_seconds.labels(r.dataset).observe(r.duration_s)
        counts = (r.rows_in, r.rows_out, r.rows_quarantined, r.rows_skipped)
        for kind, n in zip(_ROW_KINDS, counts, strict=True):
            if n:
                self.rows.labels(r.dataset, kind).inc(n)
        if str(r.status) == "success":
            self.last_success.labels(r.dataset).set(at.timestamp())
        cost = r.cost
        if cost.get("cpu_s"):
            self.cpu.labels(r.dataset).inc(cost["cpu_s"])
        if cost.get("peak_rss_bytes"):
            self.peak_rss.labels(r.dataset).set(cost["peak_rss_bytes"])
        for kind in ("read", "written"):
            if cost.get(f"bytes_{kind}"):
                self.io_bytes.labels(r.dataset, kind).inc(cost[f"bytes_{kind}"])

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


def push(metrics: RunMetrics, url: str, project: str) -> bool:
    """Push ``metrics`` to a Prometheus Pushgateway (job ``lockgate``, grouped by project).
    A failed push is logged (URL redacted) and returns False: it never fails the run."""
    import logging

    from prometheus_client import push_to_gateway

    from lockgate.redact import redact

    try:
        push_to_gateway(
            url, job="lockgate", registry=metrics.registry, grouping_key={"project": project},
            timeout=10,
        )  # fmt: skip
    except Exception as e:
        logging.getLogger(__name__).warning("pushgateway %s: %s", redact(url), redact(str(e)))
        return False
    return True
