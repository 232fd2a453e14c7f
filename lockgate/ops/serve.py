"""``lockgate serve``: the long-running scheduler with ``/healthz`` and ``/metrics``.

Every ``poll`` seconds it fires the due schedule ticks (:class:`~lockgate.ops.schedule.Scheduler`:
each run holds the project lease; state survives ``kill -9``), evaluates the freshness SLAs
(metrics and alerts) and serves, on ``port``:

- ``GET /healthz`` → ``200`` JSON: ``{"status": "ok", "project", "ticks", "last_tick_at",
  "fired"}``;
- ``GET /metrics`` → Prometheus text (:class:`~lockgate.ops.metrics.RunMetrics`, and the
  streams' ``lockgate_stream_*``).

The project's streams (``serve: true``, the default) run in threads beside the scheduler
(:class:`~lockgate.ops.stream_workers.StreamWorkers`), each under its own lease.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from lockgate.ops.alerts import Alerter, routes
from lockgate.ops.clock import Clock, system_clock
from lockgate.ops.freshness import evaluate
from lockgate.ops.metrics import RunMetrics
from lockgate.ops.schedule import Fired, Scheduler
from lockgate.ops.stream_workers import StreamWorkers

if TYPE_CHECKING:
    from lockgate.lineage.model import LineageGraph
    from lockgate.project import Project
    from lockgate.state import StateStore
    from lockgate.storage.base import TableStore

log = logging.getLogger(__name__)


@dataclass
class Service:
    """The scheduler, its listeners and its health, without the HTTP server (testable)."""

    project: Project
    state: StateStore
    store: TableStore
    clock: Clock = system_clock
    metrics: RunMetrics = field(default_factory=RunMetrics)
    ticks: int = 0
    last_tick_at: datetime | None = None
    last_error: str | None = None
    last_prune_at: datetime | None = None

    def __post_init__(self) -> None:
        cfg = self.project.config
        self.alerter = Alerter(
            cfg.name,
            self.state,
            cfg.alerts,
            lineage=self._lineage,
            routes=routes(self.project),
            clock=self.clock,
        )
        self.scheduler = Scheduler(
            self.project, self.state, clock=self.clock, listeners=[self.metrics, self.alerter]
        )
        self.streams = StreamWorkers(self.project, self.metrics)

    def _lineage(self) -> LineageGraph:
        from lockgate.lineage import project_lineage

        return project_lineage(self.project, warehouse=False)

    def tick(self) -> list[Fired]:
        """One pass: fire due schedules, then evaluate freshness."""
        fired = self.scheduler.tick()
        for f in fired:
            self.metrics.schedule_fired.labels(f.schedule, f.status).inc()
        now = self.clock()
        results = evaluate(self.project, self.store, now)
        for r in results:
            if r.age_s is not None:
                self.metrics.freshness_lag.labels(r.dataset).set(r.age_s)
        self.alerter.freshness(results)
        self._retention(now)
        self._cdc_metrics()
        nxt = self.scheduler.next_due()
        if nxt is not None:
            self.metrics.schedule_next.set(nxt.timestamp())
        self.ticks += 1
        self.last_tick_at = now
        return fired

    def _retention(self, now: datetime) -> None:
        """Prune run history once a day when ``retention:`` is configured."""
        retention = self.project.config.retention
        if retention is None:
            return
        if self.last_prune_at is not None and now - self.last_prune_at < timedelta(days=1):
            return
        from lockgate.state.retention import prune

        res = prune(self.state, self.project.config.name, days=retention.days, now=now)
        self.last_prune_at = now
        log.info("retention: deleted %d runs older than %s", res.runs, res.cutoff)

    def _cdc_metrics(self) -> None:
        """Replication-slot gauges of the change sources (a server that is down is logged:
        the gauge says 0 only when the slot itself is gone)."""
        from lockgate.api import cdc_status
        from lockgate.sources import source_class

        if not any(
            source_class(str(getattr(spec.source, "type", ""))).SUPPORTS_CDC
            for spec in self.project.datasets.values()
            if spec.source is not None
        ):
            return
        try:
            self.metrics.cdc(cdc_status(self.project))
        except Exception as e:  # the source may be unreachable right now
            log.warning("change data capture status unavailable: %s", e)

    def health(self) -> dict[str, object]:
        return {
            "status": "ok" if self.last_error is None else "degraded",
            "project": self.project.config.name,
            "ticks": self.ticks,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "fired": len(self.scheduler.fired),
            "last_error": self.last_error,
            "streams": self.streams.health(),
        }


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                body, ctype = json.dumps(service.health()).encode(), "application/json"
            elif self.path == "/metrics":
                from prometheus_client import CONTENT_TYPE_LATEST

                body, ctype = service.metrics.exposition(), CONTENT_TYPE_LATEST
            else:
                self.send_error(404, "try /healthz or /metrics")
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http: " + format, *args)

    return Handler


@dataclass
class Server:
    """:class:`Service` in a loop, plus its HTTP endpoints; :meth:`stop` from any thread."""

    service: Service
    host: str = "127.0.0.1"
    port: int = 0
    poll_s: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.http = ThreadingHTTPServer((self.host, self.port), _handler(self.service))
        self.port = self.http.server_address[1]

    def serve_forever(self) -> None:
        t = threading.Thread(target=self.http.serve_forever, name="lockgate-http", daemon=True)
        t.start()
        self.service.streams.start()
        try:
            while not self._stop.is_set():
                self._tick()
                self._stop.wait(self._wait_s())
        finally:
            self.service.streams.stop()
            self.http.shutdown()
            self.http.server_close()

    def _tick(self) -> None:
        from lockgate.errors import LockgateError

        try:
            self.service.tick()
            self.service.last_error = None
        except LockgateError as e:  # the state store is down, a table unreadable: retry
            self.service.last_error = e.message
            log.error("serve: %s", e.message)
        except Exception as e:  # a bug must not stop the scheduler: the tick stays due
            self.service.last_error = f"{type(e).__name__}: {e}"
            log.exception("serve: unexpected error in a scheduler pass")

    def _wait_s(self) -> float:
        """Seconds to the next pass: ``poll_s``, or less when a schedule's next tick comes
        sooner — a run then starts right at its tick (tick-to-start is the pass's cost, not
        up to ``--poll``)."""
        sched = self.service.scheduler
        try:
            nxt = sched.next_due()
            now = sched.clock()
        except Exception:  # a clock file being rewritten: the usual pace
            return self.poll_s
        if nxt is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, (nxt - now).total_seconds() + 0.001))

    def stop(self) -> None:
        self._stop.set()


def check_schedules(project: Project) -> None:
    """Every schedule's selection names known datasets (ConfigError naming the schedule)."""
    from lockgate.errors import ConfigError, Problem

    problems: list[Problem] = []
    for s in project.config.schedules:
        try:
            project.select(list(s.select))
        except ConfigError as e:
            for p in e.problems:
                msg = f"schedule '{s.name}': select: {p.message}"
                problems.append(Problem(msg, file="lockgate.yaml", hint=p.hint))
    if problems:
        raise ConfigError(problems)


def open_service(project: Project, clock: Clock) -> Service:
    """The project's service on its own state store and warehouse."""
    from lockgate.runloop.runner import open_backends

    check_schedules(project)
    state, store = open_backends(project)
    return Service(project, state, store, clock=clock)
