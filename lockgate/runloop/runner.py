"""The run loop driver: lock the project, run the selected steps in dependency order with
retries, skip the downstream of failed/blocked steps, record everything in the state store."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from lockgate.engine.session import clean_stale_work, open_session
from lockgate.errors import LockgateError
from lockgate.runloop import events as ev
from lockgate.runloop import identity
from lockgate.runloop.events import EventBus, Listener
from lockgate.runloop.results import RunResult, RunStatus, StepResult, StepStatus
from lockgate.runloop.step import (
    StepContext,
    batch_id_for,
    current_watermark,
    definition_hash,
    resolve_inputs,
    run_step,
)
from lockgate.runloop.trust import verify_published
from lockgate.state.errors import LeaseLost
from lockgate.storage.crashpoints import crashpoint

log = logging.getLogger(__name__)


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
                check=str(c.get("name")),
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
    elif r.status == StepStatus.BLOCKED:
        bus.emit(ev.GateBlockedEvent(run_id=run_id, dataset=d, reason=r.reason))
    bus.emit(ev.StepFinished(run_id=run_id, dataset=d, status=str(r.status), result=r))


def open_backends(project: Any) -> tuple[Any, Any]:
    from lockgate.state import StateStore
    from lockgate.storage import store_for

    store = store_for(project.config.store, project.warehouse_path, cache_tables=True)
    return StateStore.open(project.state_url), store


def execute(
    project: Any,
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    reporter: Reporter | None = None,
    now: datetime | None = None,
    args: dict[str, Any] | None = None,
    listeners: Sequence[Listener] = (),
) -> RunResult:
    """Run the selected datasets of ``project``; returns when every step has an outcome.

    Every listener receives the run's events (:mod:`lockgate.runloop.events`) as they happen;
    the progress ``reporter`` is one of them."""
    rep = reporter or Reporter()
    bus = EventBus([reporter_listener(rep), *listeners])
    names = project.select(list(select))
    state, store = open_backends(project)
    t0 = time.perf_counter()
    with state.lock(project.config.name) as lease:
        project_id = identity.resolve(
            state,
            project.warehouse_path,
            project.config.name,
            full_refresh=full_refresh,
            private=identity.private_store(project.state_url, project.root),
        )
        state.mark_stale_runs(project.config.name)
        run = state.start_run(
            project.config.name,
            selection=" ".join(select) or "*",
            args={"full_refresh": full_refresh, **(args or {})},
            min_seq=_min_run_seq(store, names),
            project_id=project_id,
        )
        crashpoint("run started")
        clean_stale_work(project.work_dir / "work", keep=run.run_id)
        bus.emit(ev.RunStarted(run_id=run.run_id, project=project.config.name, datasets=names))
        session = open_session(
            project.config.engine,
            project.work_dir / "work",
            run.run_id,
            memory_limit=project.config.memory_limit,
            threads=project.config.threads,
        )
        if session.SUPPORTS_PROGRESS and type(rep).watch is not Reporter.watch:  # shown: track
            session.enable_progress()
            rep.watch(session.progress)
        results: list[StepResult] = []
        error: str | None = None
        try:
            ctx = StepContext(
                project=project,
                session=session,
                store=store,
                state=state,
                run_id=run.run_id,
                run_seq=run.seq,
                full_refresh=full_refresh,
                now=now or datetime.now(UTC),
                report=lambda dataset, phase: bus.emit(
                    ev.StepPhase(run_id=run.run_id, dataset=dataset, phase=phase)
                ),
                lease=lease,
                project_id=project_id,
            )
            lost = _run_steps(ctx, project, names, bus, results)
        except BaseException as e:  # interrupted: record what we know, then re-raise
            error = f"{type(e).__name__}: {e}"
            state.finish_run(run.run_id, "interrupted", summary=_summary(results), error=error)
            raise
        finally:
            session.close()
        status = _run_status(results)
        if lost is None:
            lost = _lease_lost(lease)
        if lost is not None:  # another run owns the project now: this one did not finish
            status, error = RunStatus.INTERRUPTED, lost.message
            log.error("run %s interrupted: %s", run.run_id, lost.message)
        state.finish_run(run.run_id, str(status), summary=_summary(results), error=error)
    duration = time.perf_counter() - t0
    bus.emit(
        ev.RunFinished(
            run_id=run.run_id, project=project.config.name, status=str(status), duration_s=duration
        )
    )
    return RunResult(
        run_id=run.run_id,
        seq=run.seq,
        project=project.config.name,
        status=status,
        steps=results,
        duration_s=duration,
    )


def _run_steps(
    ctx: StepContext,
    project: Any,
    names: Sequence[str],
    bus: EventBus,
    results: list[StepResult],
) -> LeaseLost | None:
    """Run ``names`` in order into ``results``; stops at once, returning the error, when the
    run's lock lease is lost (nothing more may be committed then)."""
    bad: dict[str, str] = {}  # dataset → why its downstream is skipped
    for name in names:
        failed_up = [u for u in project.deps.get(name, ()) if u in bad]
        bus.emit(ev.StepStarted(run_id=ctx.run_id, dataset=name))
        if failed_up:
            r = StepResult(
                dataset=name,
                status=StepStatus.UPSTREAM_FAILED,
                reason=f"upstream '{failed_up[0]}' {bad[failed_up[0]]}",
            )
            _record_skipped(ctx.state, project, ctx.run_id, r)
        else:
            try:
                if ctx.lease is not None and ctx.lease.lost:
                    ctx.lease.check()  # do no work for a run that no longer owns the project
                r = _run_with_retries(ctx, project, name)
            except LeaseLost as e:
                partial = getattr(e, "step_result", None)
                if isinstance(partial, StepResult):
                    results.append(partial)
                    emit_step_outcome(bus, ctx.run_id, partial)
                return e
        if not r.ok:
            bad[name] = "blocked" if r.status == StepStatus.BLOCKED else "failed"
        results.append(r)
        emit_step_outcome(bus, ctx.run_id, r)
    return None


def _lease_lost(lease: Any) -> LeaseLost | None:
    try:
        lease.check()
    except LeaseLost as e:
        return e
    return None


def _min_run_seq(store: Any, names: Sequence[str]) -> int:
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


def _run_with_retries(ctx: StepContext, project: Any, name: str) -> StepResult:
    spec = project.datasets[name]
    retries = project.config.defaults.retries
    backoff = project.config.defaults.retry_backoff_seconds
    step_id = ctx.state.start_step(ctx.run_id, project.config.name, name, input_versions={})
    attempt = 0
    while True:
        attempt += 1
        started = datetime.now(UTC)
        try:
            r = run_step(ctx, spec)
            r.attempts = attempt
            # a blocked gate is the step's outcome; its attempt is recorded as an error
            ok = r.status != StepStatus.BLOCKED
            ctx.state.record_attempt(
                step_id,
                attempt,
                "success" if ok else "error",
                None if ok else r.error,
                False,
                started,
                datetime.now(UTC),
            )
            _record_step(ctx, project, step_id, r)
            return r
        except LeaseLost as e:  # never retried: the run stops (see _run_steps)
            ctx.state.record_attempt(
                step_id, attempt, "error", str(e), False, started, datetime.now(UTC)
            )
            r = StepResult(
                dataset=name,
                status=StepStatus.FAILED,
                reason=e.message,
                error=str(e),
                hint=e.hint,
                attempts=attempt,
            )
            _record_step(ctx, project, step_id, r)
            e.step_result = r  # type: ignore[attr-defined]
            raise
        except LockgateError as e:
            log.debug("step %s attempt %d failed", name, attempt, exc_info=True)
            transient = e.transient
            ctx.state.record_attempt(
                step_id, attempt, "error", str(e), transient, started, datetime.now(UTC)
            )
            if transient and attempt <= retries:
                delay = backoff * (2 ** (attempt - 1))
                log.warning(
                    "step %s attempt %d failed (%s); retrying in %.1fs", name, attempt, e, delay
                )
                time.sleep(delay)
                continue
            r = StepResult(
                dataset=name,
                status=StepStatus.FAILED,
                reason=e.message,
                error=str(e),
                hint=e.hint,
                attempts=attempt,
            )
            _record_step(ctx, project, step_id, r)
            return r
        except Exception as e:  # a bug or an unexpected library error: fail this step only
            log.debug("step %s attempt %d failed unexpectedly", name, attempt, exc_info=True)
            msg = f"dataset '{name}' failed with an unexpected {type(e).__name__}: " + " ".join(
                str(e).split()
            )
            ctx.state.record_attempt(
                step_id, attempt, "error", msg, False, started, datetime.now(UTC)
            )
            r = StepResult(
                dataset=name,
                status=StepStatus.FAILED,
                reason=msg,
                error=msg,
                hint="run with --debug for the traceback",
                attempts=attempt,
            )
            _record_step(ctx, project, step_id, r)
            return r


def _record_step(ctx: StepContext, project: Any, step_id: Any, r: StepResult) -> None:
    crashpoint(f"{r.dataset}: {r.status}, not recorded")
    pname = project.config.name
    st = ctx.state
    if r.checks:
        st.record_check_results(step_id, ctx.run_id, pname, r.dataset, r.checks)
    if r.scores:
        st.record_scores(ctx.run_id, pname, r.dataset, r.scores)
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
    )


def _record_skipped(state: Any, project: Any, run_id: str, r: StepResult) -> None:
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


def _summary(results: list[StepResult]) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# dry run


def plan(
    project: Any, *, select: Sequence[str] = (), full_refresh: bool = False
) -> list[StepResult]:
    """What ``execute`` would do, and why, without reading data or taking the lock."""
    names = project.select(list(select))
    state, store = open_backends(project)
    ctx = StepContext(
        project=project,
        session=None,  # type: ignore[arg-type]
        store=store,
        state=state,
        run_id="dry-run",
        run_seq=0,
        full_refresh=full_refresh,
        project_id=identity.resolve(
            state,
            project.warehouse_path,
            project.config.name,
            full_refresh=full_refresh,
            write=False,
            private=identity.private_store(project.state_url, project.root),
        ),
    )
    will_run: set[str] = set()
    out: list[StepResult] = []
    for name in names:
        spec = project.datasets[name]
        ups = [u for u in project.deps.get(name, ()) if u in will_run]
        r = StepResult(dataset=name, status=StepStatus.PLANNED)
        try:
            if not full_refresh:
                verify_published(ctx, name, repair=False)
            last = store.last_commit(name)
        except LockgateError as e:
            r.status, r.reason, r.hint = StepStatus.FAILED, e.message, e.hint
            out.append(r)
            continue
        if full_refresh:
            r.reason = "--full-refresh: rebuild from all input data"
        elif ups:
            r.reason = f"upstream '{ups[0]}' will publish a new version"
        elif last is None:
            r.reason = "never published"
        else:
            try:
                inputs = resolve_inputs(ctx, spec)
            except LockgateError as e:
                r.status, r.reason = StepStatus.FAILED, e.message
                out.append(r)
                continue
            wm = current_watermark(ctx, spec)
            from lockgate.runloop import incremental

            lowest = incremental.min_cursor(spec.incremental, wm) if spec.incremental else None
            bid = batch_id_for(definition_hash(ctx, spec), inputs)
            r.inputs = inputs
            if bid == last.batch_id:
                r.status = StepStatus.NOOP
                r.reason = f"inputs and definition unchanged since version {last.version}"
            else:
                r.reason = "inputs or definition changed since version " + str(last.version)
                if spec.incremental is not None and wm is not None:
                    r.reason += f"; incremental from {spec.incremental.cursor} >= {lowest}"
        if r.status == StepStatus.PLANNED:
            will_run.add(name)
        out.append(r)
    return out
