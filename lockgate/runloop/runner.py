"""The run loop driver: lock the project, run the selected steps in dependency order with
retries, skip the downstream of failed/blocked steps, record everything in the state store."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lockgate._duration import parse_seconds
from lockgate.engine.workdir import clean_stale_work
from lockgate.errors import LockgateError, UsageError
from lockgate.pii import reads_personal, scrub_engine_error
from lockgate.runloop import events as ev
from lockgate.runloop import identity
from lockgate.runloop.context import CommitTurn
from lockgate.runloop.deadline import deadline
from lockgate.runloop.events import EventBus, Listener
from lockgate.runloop.parallel import run_steps
from lockgate.runloop.plan import Plan, PlannedStep, plan, thaw
from lockgate.runloop.results import RunResult, RunStatus, StepResult, StepStatus
from lockgate.runloop.step import StepContext, run_step
from lockgate.state.errors import LeaseLost
from lockgate.state.store import StateStore
from lockgate.storage.crashpoints import crashpoint

if TYPE_CHECKING:
    from lockgate.engine.session import Session
    from lockgate.project import Project
    from lockgate.state import StateStore
    from lockgate.state.lock import Lease
    from lockgate.state.records import RunRecord
    from lockgate.storage.base import TableStore

log = logging.getLogger(__name__)

#: the turn (see :class:`~lockgate.runloop.context.CommitTurn`) of starting a run
START_TURN = "__start__"


class Reporter:
    """Progress for a person: the CLI's bar. It is one listener of the run's events
    (:func:`reporter_listener`), plus :meth:`watch` for the running query's progress."""

    def run_started(self, run_id: str, datasets: Sequence[str]) -> None: ...
    def step_started(self, dataset: str) -> None: ...
    def step_phase(self, dataset: str, phase: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def watch(self, progress: Callable[[], float | None]) -> None:
        """Receive a function giving the running query's percent done (None when idle)."""


def reporter_listener(rep: Reporter) -> Listener:
    """A :class:`Reporter` as a listener of run events."""

    def listen(e: ev.RunEvent) -> None:
        if isinstance(e, ev.RunStarted):
            rep.run_started(e.run_id, e.datasets)
        elif isinstance(e, ev.StepStarted):
            rep.step_started(e.dataset)
        elif isinstance(e, ev.StepPhase):
            rep.step_phase(e.dataset, e.phase)
        elif isinstance(e, ev.StepFinished):
            rep.step_finished(e.result)

    return listen


def emit_step_outcome(bus: EventBus, run_id: str, r: StepResult) -> None:
    """What a finished step did, as events: each check, drift, quarantined rows, the
    publish or the block, then :class:`~lockgate.runloop.events.StepFinished`."""
    d = r.dataset
    for c in r.checks:
        status = (
            "pass"
            if c.get("passed", True)
            else ("fail" if c.get("severity") == "error" else "warn")
        )
        bus.emit(
            ev.CheckEvaluated(
                run_id=run_id,
                dataset=d,
                # a partitioned step checks each interval: one incident per bad interval
                check=str(c.get("name")) + (f"@{c['interval']}" if c.get("interval") else ""),
                status=status,
                severity=str(c.get("severity")),
                observed=c.get("observed"),
                failing_rows=n if isinstance(n := c.get("failing_rows"), int) else None,
            )
        )
    if r.drift:
        bus.emit(ev.SchemaDrifted(run_id=run_id, dataset=d, drift=r.drift))
    if r.rows_quarantined:
        q = ev.Quarantined(
            run_id=run_id, dataset=d, rows=r.rows_quarantined, version=r.quarantine_version
        )
        bus.emit(q)
    if r.status == StepStatus.SUCCESS:
        bus.emit(
            ev.Published(
                run_id=run_id,
                dataset=d,
                version=r.output_version,
                rows=r.rows_out,
                batch_id=r.batch_id,
            )
        )
    elif r.status == StepStatus.BLOCKED and r.intervals:  # every due interval blocked
        for i in r.intervals:
            why = f"interval {i.get('interval')} blocked: {i.get('reason')}"
            label = str(i.get("interval"))
            bus.emit(ev.GateBlockedEvent(run_id=run_id, dataset=d, reason=why, interval=label))
    elif r.status == StepStatus.BLOCKED:
        bus.emit(ev.GateBlockedEvent(run_id=run_id, dataset=d, reason=r.reason))
    if r.status == StepStatus.SUCCESS:  # a partitioned step: some intervals blocked
        for i in r.intervals:
            if i.get("status") == "blocked":
                why = f"interval {i.get('interval')} blocked: {i.get('reason')}"
                label = str(i.get("interval"))
                bus.emit(ev.GateBlockedEvent(run_id=run_id, dataset=d, reason=why, interval=label))
    bus.emit(ev.StepFinished(run_id=run_id, dataset=d, status=str(r.status), result=r))


def open_backends(project: Project) -> tuple[StateStore, TableStore]:
    from lockgate.state import StateStore
    from lockgate.storage import store_for

    store = store_for(project.config.store, project.warehouse_path, cache_tables=True)
    return StateStore.open(project.state_url), store


class _Sessions:
    """The run's engine session, opened on first use (a run whose steps are all up to date
    never imports DuckDB), and a cursor session of it for each worker thread."""

    def __init__(self, open_main: Callable[[], Session], parallel: bool) -> None:
        self._open_main = open_main
        self._main: Session | None = None
        self._parallel = parallel
        self._local = threading.local()
        self._lock = threading.Lock()
        self._workers: list[Session] = []
        self._progress = False

    @property
    def opened(self) -> bool:
        return self._main is not None

    @property
    def main(self) -> Session:
        with self._lock:
            if self._main is None:
                self._main = self._open_main()
                if self._progress:
                    self._main.enable_progress()
            return self._main

    def current(self) -> Session:
        """The calling thread's session (the run's own when steps run one at a time)."""
        if not self._parallel:
            return self.main
        ses: Session | None = getattr(self._local, "session", None)
        if ses is None:
            main = self.main
            with self._lock:
                ses = main.cursor(f"lg_w{len(self._workers) + 1}")
                self._workers.append(ses)
            if self._progress:
                ses.enable_progress()
            self._local.session = ses
        return ses

    def enable_progress(self) -> None:
        self._progress = True

    def progress(self) -> float | None:
        """Percent done of a query running now, in any thread."""
        with self._lock:
            sessions = [*([self._main] if self._main is not None else []), *self._workers]
        for ses in sessions:
            pct = ses.progress()
            if pct is not None:
                return pct
        return None

    def interrupt(self) -> None:
        """Abort the queries the worker threads run (the run was interrupted)."""
        for ses in self._workers:
            with contextlib.suppress(Exception):
                ses.interrupt()

    def close(self) -> None:
        for ses in self._workers:
            ses.close()
        if self._main is not None:
            self._main.close()


def default_workers() -> int:
    """Steps run at once by default: one per core."""
    return max(1, os.cpu_count() or 1)


def run(
    project: Project,
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    now: datetime | None = None,
    reporter: Reporter | None = None,
    listeners: Sequence[Listener] = (),
    max_workers: int | None = None,
    args: Mapping[str, object] | None = None,
) -> RunResult:
    """Plan the selected datasets of ``project`` and execute the plan."""
    p = plan(project, select=select, full_refresh=full_refresh, now=now)
    return execute(p, reporter=reporter, listeners=listeners, max_workers=max_workers, args=args)


def execute(
    plan: Plan,
    *,
    reporter: Reporter | None = None,
    listeners: Sequence[Listener] = (),
    max_workers: int | None = None,
    args: Mapping[str, object] | None = None,
    lease: Lease | None = None,
    turn: CommitTurn | None = None,
    intervals: Mapping[str, Sequence[tuple[int, int]]] | None = None,
) -> RunResult:
    """Run ``plan``; returns when every step has an outcome (in plan order).

    A backfill runs its chunks as runs under its own ``lease`` of the project lock (taken
    once), ``turn`` ordering their starts and commits, ``intervals`` naming each partitioned
    dataset's intervals of the chunk. Independent steps run at the same time, at most
    ``max_workers`` (default: one per core; 1: one after another in plan order). Every
    listener receives the run's events (:mod:`lockgate.runloop.events`) as they happen; the
    progress ``reporter`` is one of them. The plan is not made again: each step resolves its
    inputs when it starts, under the project lock (:mod:`lockgate.runloop.plan`)."""
    workers, project = _workers(max_workers), plan.project
    rep = reporter or Reporter()
    bus = EventBus(
        [reporter_listener(rep), ev.log_event, *listeners, *_configured_listeners(project)]
    )
    state, store = open_backends(project)
    t0 = time.perf_counter()
    held = contextlib.nullcontext(lease) if lease is not None else None
    with held or state.lock(project.config.name) as lease:
        run, project_id = _start_in_turn(plan, state, store, args, held is None, turn)
        bus.emit(ev.RunStarted(run_id=run.run_id, project=project.config.name, datasets=plan.names))
        sessions = _open_sessions(project, run.run_id, workers, rep)
        ctx = StepContext(
            project=project,
            sessions=sessions,
            store=store,
            state=state,
            run_id=run.run_id,
            run_seq=run.seq,
            full_refresh=plan.full_refresh,
            now=plan.now or datetime.now(UTC),
            report=_phase_reporter(bus, run.run_id),
            lease=lease,
            project_id=project_id,
            intervals=intervals,
            turn=turn,
            planned_sources={} if intervals or turn else _planned_sources(plan),
        )
        done: dict[str, StepResult] = {}
        with _interruption_recorded(ctx, plan, done), contextlib.closing(sessions):
            lost = _run_plan(ctx, plan, bus, sessions, done, workers)
        results = _in_order(plan, done)
        status = _finish_run(state, run.run_id, lease, lost, results)
    duration = time.perf_counter() - t0
    name = project.config.name
    bus.emit(
        ev.RunFinished(run_id=run.run_id, project=name, status=str(status), duration_s=duration)
    )
    return RunResult(run.run_id, run.seq, name, status, results, duration)


#: a plan older than this (kept by a caller, or a backfill's) has its sources asked anew
PLAN_FINGERPRINT_TTL_S = 60.0


def _planned_sources(plan: Plan) -> dict[str, object]:
    """The source fingerprints ``plan`` took just before (not the per-run pins of sources
    without one): a database source's fingerprint is a query, asked once per run, not by the
    plan and then again by the step. Reusing it is safe: a source that changed since the
    plan is read by the next run (a step that reads records the older fingerprint, so the
    next run reads from its watermark again and skips what it holds)."""
    age = (datetime.now(UTC) - plan.created_at).total_seconds()
    if plan.full_refresh or not 0 <= age <= PLAN_FINGERPRINT_TTL_S:
        return {}
    out: dict[str, object] = {}
    for step in plan.steps:
        fp = thaw(step.inputs.get("source")) if step.kind == "source" else None
        if isinstance(fp, dict) and "run" not in fp and not step.intervals:
            out[step.dataset] = fp
    return out


def _start_in_turn(
    plan: Plan,
    state: StateStore,
    store: TableStore,
    args: Mapping[str, object] | None,
    clean: bool,
    turn: CommitTurn | None,
) -> tuple[RunRecord, str | None]:
    """The run's record (and project id); a backfill chunk waits for its turn to start, so
    run records (and seqs) follow the chunks' order."""
    if turn is not None:
        turn.wait(START_TURN)
    try:
        return _start_run(plan, state, store, args, clean=clean)
    finally:
        if turn is not None:
            turn.release(START_TURN)


@contextlib.contextmanager
def _interruption_recorded(
    ctx: StepContext, plan: Plan, done: dict[str, StepResult]
) -> Iterator[None]:
    """An interrupted run (any exception out of its steps) is recorded ``interrupted`` with
    what is known, then the interruption goes on up."""
    try:
        yield
    except BaseException as e:
        why = f"{type(e).__name__}: {e}"
        summary = _summary(_in_order(plan, done))
        ctx.state.finish_run(ctx.run_id, "interrupted", summary=summary, error=why)
        raise


def _workers(max_workers: int | None) -> int:
    workers = default_workers() if max_workers is None else max_workers
    if workers < 1:
        raise UsageError(f"max_workers must be at least 1 (got {workers})")
    return workers


def _phase_reporter(bus: EventBus, run_id: str) -> Callable[[str, str], None]:
    def report(dataset: str, phase: str) -> None:
        bus.emit(ev.StepPhase(run_id=run_id, dataset=dataset, phase=phase))

    return report


def _start_run(
    plan: Plan,
    state: StateStore,
    store: TableStore,
    args: Mapping[str, object] | None,
    *,
    clean: bool = True,
) -> tuple[RunRecord, str | None]:
    """Under the lock: the project's identity, then a new run record."""
    project = plan.project
    project_id = identity.resolve(
        state,
        project.warehouse_path,
        project.config.name,
        full_refresh=plan.full_refresh,
        private=identity.private_store(project.state_url, project.root),
    )
    state.mark_stale_runs(project.config.name)
    run = state.start_run(
        project.config.name,
        selection=" ".join(plan.select) or "*",
        args={"full_refresh": plan.full_refresh, **(args or {})},
        min_seq=_min_run_seq(store, plan.names),
        project_id=project_id,
    )
    crashpoint("run started")
    if clean:  # (a backfill's chunks run side by side: it cleans once, before them)
        clean_stale_work(project.work_dir / "work", keep=run.run_id)
    return run, project_id


def _configured_listeners(project: Project) -> list[Listener]:
    """Listeners lockgate.yaml asks for (``openlineage:``); the lineage package (sqlglot's
    lineage, OpenLineage) is imported only then, not at every start-up."""
    if project.config.openlineage is None:
        return []
    from lockgate.lineage.listeners import configured_listeners

    return configured_listeners(project)


def _open_sessions(project: Project, run_id: str, workers: int, rep: Reporter) -> _Sessions:
    """The run's engine session (and its workers' cursors), opened when a step first needs
    one; progress tracked when shown."""
    from lockgate.engine.base import engine_class

    sessions = _Sessions(lambda: _open_session(project, run_id), parallel=workers > 1)
    shown = type(rep).watch is not Reporter.watch
    if shown and engine_class(project.config.engine).SUPPORTS_PROGRESS:
        sessions.enable_progress()
        rep.watch(sessions.progress)
    return sessions


def _open_session(project: Project, run_id: str) -> Session:
    from lockgate.engine.session import open_session

    return open_session(
        project.config.engine,
        project.work_dir / "work",
        run_id,
        memory_limit=project.config.memory_limit,
        threads=project.config.threads,
    )


def _finish_run(
    state: StateStore, run_id: str, lease: Lease, lost: LeaseLost | None, results: list[StepResult]
) -> RunStatus:
    status, error = _run_status(results), None
    if lost is None:
        lost = _lease_lost(lease)
    if lost is not None:  # another run owns the project now: this one did not finish
        status, error = RunStatus.INTERRUPTED, lost.message
        log.error("run %s interrupted: %s", run_id, lost.message)
    state.finish_run(run_id, str(status), summary=_summary(results), error=error)
    return status


def _in_order(plan: Plan, done: dict[str, StepResult]) -> list[StepResult]:
    return [done[n] for n in plan.names if n in done]


def _run_plan(
    ctx: StepContext,
    plan: Plan,
    bus: EventBus,
    sessions: _Sessions,
    done: dict[str, StepResult],
    workers: int,
) -> LeaseLost | None:
    """Run the plan's steps into ``done``; stops starting steps, returning the error, when
    the run's lock lease is lost (nothing more may be committed then)."""
    project = plan.project

    def run_one(step: PlannedStep) -> StepResult:
        # a worker's context shares the run's `verified` set (replace() keeps the object)
        step_ctx = ctx  # ctx.session is the calling (worker) thread's own
        bus.emit(ev.StepStarted(run_id=ctx.run_id, dataset=step.dataset))
        try:
            if ctx.lease is not None and ctx.lease.lost:
                ctx.lease.check()  # do no work for a run that no longer owns the project
            return _run_with_retries(step_ctx, project, step)
        finally:
            if ctx.turn is not None:  # the next chunk of a backfill may commit now
                ctx.turn.release(step.dataset)

    def skip(step: PlannedStep, why: str) -> StepResult:
        bus.emit(ev.StepStarted(run_id=ctx.run_id, dataset=step.dataset))
        r = StepResult(dataset=step.dataset, status=StepStatus.UPSTREAM_FAILED, reason=why)
        _record_skipped(ctx.state, project, ctx.run_id, r)
        if ctx.turn is not None:
            ctx.turn.release(step.dataset)
        return r

    return run_steps(
        plan.steps,
        done,
        run=run_one,
        skip=skip,
        done=lambda r: emit_step_outcome(bus, ctx.run_id, r),
        max_workers=workers,
        interrupt=sessions.interrupt,
    )


def _lease_lost(lease: Lease) -> LeaseLost | None:
    try:
        lease.check()
    except LeaseLost as e:
        return e
    return None


def _min_run_seq(store: TableStore, names: Sequence[str]) -> int:
    """One more than the highest Delta transaction version the run's tables hold.

    A publish is skipped when its table's transaction is already at the run's seq or beyond;
    a state store that is new (deleted, or a fresh database) next to an existing warehouse
    would otherwise hand out seqs the tables treat as published, and every batch would be
    silently dropped."""
    from lockgate.storage.base import APP_ID_PREFIX, QUARANTINE_SUFFIX

    highest = 0
    for name in names:
        for table in (name, name + QUARANTINE_SUFFIX):
            try:
                done = store.txn_version(table, APP_ID_PREFIX + table)
            except LockgateError as e:  # a damaged table fails its own step, not the run
                log.debug("cannot read the transactions of table %s: %s", table, e)
                continue
            if done is not None:
                highest = max(highest, int(done))
    return highest + 1


def _run_with_retries(ctx: StepContext, project: Project, planned: PlannedStep) -> StepResult:
    name = planned.dataset
    spec = project.datasets[name]
    retries = project.config.defaults.retries
    backoff = project.config.defaults.retry_backoff_seconds
    if spec.retry is not None:  # the dataset's own policy
        retries, backoff = spec.retry.retries, spec.retry.backoff_seconds
    timeout = None if spec.timeout is None else parse_seconds(spec.timeout)
    step_id = ctx.state.start_step(ctx.run_id, project.config.name, name, input_versions={})
    sensed: dict[str, object] | None = None
    if spec.sensors:  # wait for them first (a timeout fails the step: nothing ran)
        from lockgate.ops.sensors import wait_for_sensors

        try:
            sensed = wait_for_sensors(ctx, spec, _last_sensor_tokens(ctx, name))
        except LockgateError as e:
            r = _error_result(name, e, 0, StepStatus.FAILED)
            _record_step(ctx, project, step_id, r)
            return r
    attempt = 0
    while True:
        attempt += 1
        attempted = functools.partial(_attempted, ctx, step_id, attempt, datetime.now(UTC))

        try:
            with deadline(ctx.session if timeout is not None else None, timeout, name):
                r = run_step(ctx, spec)
            r.attempts = attempt
            if sensed is not None:  # what the sensors saw: the next run waits for newer
                r.inputs["sensors"] = sensed
            _note_stale_pins(planned, r)
            if r.status == StepStatus.BLOCKED:  # the step's outcome; recorded as an error
                attempted("error", r.error)
            else:
                attempted("success", None)
        except LeaseLost as e:  # never retried: the run stops (see runloop.parallel)
            attempted("error", str(e))
            r = _error_result(name, e, attempt, StepStatus.FAILED)
            _record_step(ctx, project, step_id, r)
            e.step_result = r  # type: ignore[attr-defined]
            raise
        except LockgateError as e:
            _scrub_personal(project, name, e)
            log.debug("step %s attempt %d failed", name, attempt, exc_info=True)
            attempted("error", str(e), e.transient)
            if e.transient and attempt <= retries:
                delay = backoff * (2 ** (attempt - 1))
                log.warning(
                    "step %s attempt %d failed (%s); retrying in %.1fs", name, attempt, e, delay
                )
                time.sleep(delay)
                continue
            r = _error_result(name, e, attempt, StepStatus.FAILED)
        except Exception as e:  # a bug or an unexpected library error: fail this step only
            log.debug("step %s attempt %d failed unexpectedly", name, attempt, exc_info=True)
            r = _unexpected_result(project, name, e, attempt)
            attempted("error", r.error)
        _record_step(ctx, project, step_id, r)
        return r


def _last_sensor_tokens(ctx: StepContext, name: str) -> dict[str, object]:
    """The sensor tokens the dataset's last published (or up-to-date) step recorded."""
    steps = ctx.state.dataset_steps(ctx.project.name, name, limit=20, project_id=ctx.project_id)
    for step in steps:
        if str(step.status) in ("success", "noop"):
            got = (step.input_versions or {}).get("sensors")
            return dict(got) if isinstance(got, dict) else {}
    return {}


def _attempted(
    ctx: StepContext,
    step_id: int,
    attempt: int,
    started: datetime,
    status: str,
    error: str | None,
    transient: bool = False,
) -> None:
    ctx.state.record_attempt(step_id, attempt, status, error, transient, started, datetime.now(UTC))


def _scrub_personal(project: Project, name: str, e: LockgateError) -> None:
    """A step reading personal columns: the values its engine error quotes are masked before
    the error is recorded, logged, shown or alerted on (:mod:`lockgate.pii`)."""
    if not reads_personal(project, name):
        return
    message = scrub_engine_error(e.message) or ""
    if message != e.message:
        e.message = message
        e.args = (message, *e.args[1:])


def _error_result(name: str, e: LockgateError, attempt: int, status: StepStatus) -> StepResult:
    return StepResult(
        dataset=name,
        status=status,
        reason=e.message,
        error=str(e),
        hint=e.hint,
        attempts=attempt,
    )


def _unexpected_result(project: Project, name: str, e: Exception, attempt: int) -> StepResult:
    msg = f"dataset '{name}' failed with an unexpected {type(e).__name__}: " + " ".join(
        str(e).split()
    )
    if reads_personal(project, name):  # an engine error quoting a personal value
        msg = scrub_engine_error(msg) or ""
    return StepResult(
        dataset=name,
        status=StepStatus.FAILED,
        reason=msg,
        error=msg,
        hint="run with --debug for the traceback",
        attempts=attempt,
    )


def _note_stale_pins(planned: PlannedStep, r: StepResult) -> None:
    """Log a firm pin of the plan that execution found moved (something was published or
    a source file changed between planning and running): the step used what it read."""
    for key, pinned in planned.firm_inputs().items():
        if isinstance(pinned, dict) and pinned.get("run") == "plan":
            continue  # a source without a fingerprint: pinned per run, read anew by each
        if key in r.inputs and r.inputs[key] != pinned:
            log.warning(
                "dataset %s: the plan pinned input %r at %s, the run read %s (it changed "
                "after planning)",
                r.dataset,
                key,
                _brief(pinned),
                _brief(r.inputs[key]),
            )


def _brief(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _record_step(ctx: StepContext, project: Project, step_id: int, r: StepResult) -> None:
    crashpoint(f"{r.dataset}: {r.status}, not recorded")
    pname = project.config.name
    st = ctx.state
    if r.checks:
        st.record_check_results(step_id, ctx.run_id, pname, r.dataset, r.checks)
    if r.scores:
        st.record_scores(ctx.run_id, pname, r.dataset, r.scores)
    if (
        r.status == StepStatus.SUCCESS
        and r.rows_out
        and isinstance(r.inputs.get("definition"), str)
    ):
        _keep_definition(ctx, project, r.dataset, str(r.inputs["definition"]))
    if r.status == StepStatus.SUCCESS and project.datasets[r.dataset].partition is not None:
        from lockgate.state import intervals as done

        if ctx.full_refresh:
            done.clear_done(st, pname, r.dataset)
        from lockgate.runloop.stages.resolve import content_hash

        definition = content_hash(project, project.datasets[r.dataset])
        done.add_done(st, pname, r.dataset, r.done_intervals, definition)
    if r.status == StepStatus.SUCCESS:
        kind = r.watermark_type
        if r.watermark is not None and kind:
            st.set_watermark(pname, r.dataset, r.watermark, kind, ctx.run_id)
        cols = r.columns
        if cols:
            r.schema_version = st.record_schema(
                pname,
                r.dataset,
                [{"name": c, "type": t} for c, t in cols.items()],
                r.drift,
                ctx.run_id,
            )
    st.finish_step(
        step_id,
        status=str(r.status),
        reason=r.reason,
        rows_in=r.rows_in,
        rows_out=r.rows_out,
        rows_quarantined=r.rows_quarantined,
        rows_skipped=r.rows_skipped,
        skip_reasons=r.skip_reasons,
        output_version=r.output_version,
        quarantine_version=r.quarantine_version,
        watermark=r.watermark,
        schema_version=r.schema_version,
        batch_id=r.batch_id,
        message="; ".join(r.warnings) or r.error,
        attempts=r.attempts,
        input_versions=r.inputs,
        cost=_with_bytes(ctx, r) or None,
    )


def _with_bytes(ctx: StepContext, r: StepResult) -> dict[str, float]:
    """``r.cost`` with the bytes of the step's pinned input tables and of the files its
    commit added (only for a step that ran: an up-to-date one read and wrote nothing)."""
    if r.status != StepStatus.SUCCESS or not r.cost:
        return r.cost
    read = 0
    for up, version in r.inputs.items():
        if isinstance(version, int) and up not in ("definition",):
            with contextlib.suppress(LockgateError, OSError):
                read += _size(ctx.store.scan(up, version).files)
    r.cost["bytes_read"] = read
    v = r.output_version
    if v is not None and r.rows_out:
        with contextlib.suppress(LockgateError, OSError):
            added = ctx.store.added_files(r.dataset, v - 1, v) if v > 0 else []
            if v == 0:
                added = list(ctx.store.scan(r.dataset, 0).files)
            r.cost["bytes_written"] = _size(added)
    return r.cost


def _size(files: Sequence[str]) -> int:
    return sum(os.path.getsize(f.removeprefix("file://")) for f in files)


def _keep_definition(ctx: StepContext, project: Project, name: str, def_hash: str) -> None:
    """The definition a publishing step ran, by its hash (once): ``lockgate replay`` rebuilds
    from the definition as recorded, not as it is now."""
    from lockgate.runloop.stages.resolve import definition_body
    from lockgate.state.intervals import save_definition

    spec = project.datasets[name].model_copy(update={"write": project.effective_write(name)})
    body = definition_body(ctx, spec)
    save_definition(ctx.state, project.config.name, name, def_hash, body)


def _record_skipped(state: StateStore, project: Project, run_id: str, r: StepResult) -> None:
    step_id = state.start_step(run_id, project.config.name, r.dataset, input_versions={})
    state.finish_step(
        step_id,
        status=str(r.status),
        reason=r.reason,
        rows_in=0,
        rows_out=0,
        rows_quarantined=0,
        output_version=None,
        quarantine_version=None,
        watermark=None,
        schema_version=None,
        batch_id=None,
        message=r.reason,
        attempts=0,
        input_versions={},
    )


def _run_status(results: list[StepResult]) -> RunStatus:
    if all(r.ok for r in results):
        return RunStatus.SUCCESS
    if any(r.status == StepStatus.SUCCESS for r in results):
        return RunStatus.PARTIAL
    if any(r.status == StepStatus.BLOCKED for r in results) and not any(
        r.status == StepStatus.FAILED for r in results
    ):
        return RunStatus.BLOCKED
    return RunStatus.FAILED


def _summary(results: list[StepResult]) -> dict[str, object]:
    return {
        "steps": len(results),
        "by_status": {
            s: sum(1 for r in results if r.status == s) for s in {str(r.status) for r in results}
        },
        "rows_out": sum(r.rows_out for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "rows_skipped": sum(r.rows_skipped for r in results),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
