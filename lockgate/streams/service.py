"""Run a project's stream by name (what ``lockgate stream run NAME`` and ``lockgate serve``
call): under the stream's lease, recorded in the state store, with metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from lockgate._duration import parse_duration
from lockgate._suggest import did_you_mean
from lockgate.engine import engine_for
from lockgate.errors import UsageError
from lockgate.project.project import Project
from lockgate.state.errors import LeaseLost
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.record import StreamMetrics, StreamRecorder
from lockgate.streams.report import BatchDone, StreamReport
from lockgate.streams.runner import StreamRunner
from lockgate.streams.sources import consumer_for

if TYPE_CHECKING:
    from lockgate.state import StateStore
    from lockgate.state.lock import Lease
    from lockgate.storage.base import TableStore
    from lockgate.streams.health import StreamWatch

log = logging.getLogger(__name__)


def stream_lock_name(project: str, stream: str) -> str:
    """The lease a running stream holds: one consumer per stream (two would race to commit
    the same positions); dataset runs hold the project's own lease and never write a
    stream's tables (the loader rejects a sink named like a dataset)."""
    return f"{project}/stream:{stream}"


def get_stream(project: Project, name: str) -> StreamSpec:
    spec = project.streams.get(name)
    if spec is None:
        known = sorted(project.streams)
        raise UsageError(
            f"no stream named {name!r} (streams: {', '.join(known) or 'none'})",
            hint=did_you_mean(name, known),
        )
    return spec


def run_stream(
    project: Project,
    name: str,
    *,
    until_idle: bool = False,
    max_seconds: float | None = None,
    on_batch: Callable[[BatchDone], None] | None = None,
    stop: threading.Event | None = None,
    metrics: StreamMetrics | None = None,
    state: StateStore | None = None,
) -> StreamReport:
    """Consume stream ``name`` of ``project`` until idle / ``max_seconds`` / ``stop``
    (default: forever). Holds the stream's lease (:class:`~lockgate.errors.LockHeld` when
    another consumer runs it), records a run + step every ``record_every`` and at the end,
    and stops before a commit if the lease was lost."""
    from lockgate.state import StateStore

    spec = get_stream(project, name)
    own_state = state is None
    st = StateStore.open(project.state_url) if state is None else state
    try:
        with st.lock(stream_lock_name(project.config.name, name)) as lease:
            return _run_locked(
                project, spec, st, lease, until_idle, max_seconds, on_batch, stop, metrics
            )
    finally:
        if own_state:
            st.close()


def _run_locked(
    project: Project,
    spec: StreamSpec,
    state: StateStore,
    lease: Lease,
    until_idle: bool,
    max_seconds: float | None,
    on_batch: Callable[[BatchDone], None] | None,
    stop: threading.Event | None,
    metrics: StreamMetrics | None,
) -> StreamReport:
    et = spec.event_time
    recorder = StreamRecorder(
        state,
        project.config.name,
        spec.name,
        spec.sink.dataset,
        late_table=et.late if et is not None and et.late != "dlq" else None,
        every_s=parse_duration(spec.record_every).total_seconds(),
    )

    store = store_for(project.config.store, project.warehouse_path)
    upkeep = _Upkeep(project, spec, state, store, metrics)

    def done(b: BatchDone) -> None:
        recorder.batch(b.counts, b.checks, b.offset)
        if metrics is not None:
            metrics.batch(spec.name, b.counts, b.seconds, b.commit_seconds, b.lag)
        upkeep.after(b)
        if on_batch is not None:
            on_batch(b)

    def guard() -> None:
        if lease.lost:
            lease.check()  # raises LeaseLost naming the stream's lease (or renews it)
            if lease.lost:  # pragma: no cover - check() raised
                raise LeaseLost(f"stream {spec.name!r}: lost its lease")

    consumer = consumer_for(spec)
    try:
        with engine_for(project.config.engine) as con:
            runner = StreamRunner(spec, consumer, store, con)
            runner.guard = guard
            try:
                report = runner.run(
                    until_idle=until_idle, max_seconds=max_seconds, on_batch=done, stop=stop
                )
            except BaseException as e:
                recorder.flush("failed", error=f"{type(e).__name__}: {e}")
                raise
            recorder.flush()
            report.runs = list(recorder.runs)
            report.compaction_errors = upkeep.compaction_errors
            return report
    finally:
        consumer.close()


class _Upkeep:
    """Between batches: health alerts (lag, DLQ ratio; :mod:`lockgate.streams.health`) and,
    every ``sink.compact_every`` batches, compaction of the stream's tables (a commit a
    second is 86,400 small files a day; :mod:`lockgate.optimize`). A compaction that fails
    does not stop the stream: it is logged, counted (``compaction_errors``, the metric
    ``lockgate_stream_compaction_errors``) and tried again at the next interval."""

    def __init__(
        self,
        project: Project,
        spec: StreamSpec,
        state: StateStore,
        store: TableStore,
        metrics: StreamMetrics | None = None,
    ) -> None:
        from lockgate.optimize import stream_tables

        self.spec, self.store, self.batches, self.metrics = spec, store, 0, metrics
        self.watch: StreamWatch | None = None
        if spec.alerts is not None and project.config.alerts:
            from lockgate.ops.alerts import Alerter
            from lockgate.streams.health import StreamWatch

            alerter = Alerter(project.config.name, state, project.config.alerts)
            self.watch = StreamWatch(spec.name, spec.alerts, alerter)
        self.tables = stream_tables(spec)
        self.compactions = 0
        self.compaction_errors = 0
        self.last_compaction_error: str | None = None

    def after(self, b: BatchDone) -> None:
        if self.watch is not None:
            self.watch.observe(b.counts.read, b.counts.dlq, b.lag)
        self.batches += 1
        every = self.spec.sink.compact_every
        if every and self.batches % every == 0:
            self.compact()

    def compact(self) -> None:
        from lockgate.optimize import DEFAULT_MIN_FILES, compact_table
        from lockgate.storage.delta import DeltaStore

        if not isinstance(self.store, DeltaStore):
            return
        least = max(2, min(self.spec.sink.compact_every, DEFAULT_MIN_FILES))
        for table in self.tables:
            try:
                if not self.store.exists(table):
                    continue
                c = compact_table(self.store, table, min_files=least)
            except LeaseLost:
                raise
            except Exception as e:  # the stream goes on; tried again at the next interval
                self.store.forget(table)  # a kept table object may be half-way: reopen it
                self.compaction_errors += 1
                self.last_compaction_error = f"{table}: {type(e).__name__}: {e}"
                log.warning(
                    "stream %s: compaction of %s failed (the stream goes on; tried again in "
                    "%d batches): %s: %s",
                    self.spec.name,
                    table,
                    self.spec.sink.compact_every,
                    type(e).__name__,
                    e,
                )
                if self.metrics is not None:
                    self.metrics.compaction_errors.labels(self.spec.name).inc()
                continue
            if c.version is not None:
                self.compactions += 1
                log.info(
                    "stream %s: compacted %s (%d files into %d)",
                    self.spec.name,
                    table,
                    c.files_removed,
                    c.files_added,
                )
