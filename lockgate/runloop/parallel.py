"""Run a plan's steps in dependency order, independent ones at the same time.

A step starts once every upstream step of the plan has an outcome; at most ``max_workers``
run at once, each in a thread of its own. A step whose upstream failed, was blocked or was
skipped is not run: ``skip`` records why. When a step finds the project lock lost
(:class:`~lockgate.state.errors.LeaseLost`), no further step starts; the steps already running
finish (each checks the lock again before it publishes) and the error is returned.

With ``max_workers=1`` the steps run one after another in plan order, in the calling thread.
Outcomes are handed to ``done`` in the calling thread, as steps finish; the run's results are
listed in plan order by the caller, whatever the order of completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from lockgate.runloop.plan import PlannedStep
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.state.errors import LeaseLost

RunStep = Callable[[PlannedStep], StepResult]  # may raise LeaseLost
SkipStep = Callable[[PlannedStep, str], StepResult]  # (step, why: "upstream 'x' failed")
Done = Callable[[StepResult], None]


class _Dag:
    """Which steps wait, which may start, and why a step is skipped."""

    def __init__(self, steps: Sequence[PlannedStep], results: dict[str, StepResult]) -> None:
        self.pending = list(steps)
        self.results = results
        self.bad: dict[str, str] = {}  # dataset → why its downstream is skipped

    def settle(self, r: StepResult) -> None:
        self.results[r.dataset] = r
        if not r.ok:
            self.bad[r.dataset] = "blocked" if r.status == StepStatus.BLOCKED else "failed"

    def skip_reason(self, step: PlannedStep) -> str | None:
        failed = [u for u in step.depends_on if u in self.bad]
        return f"upstream '{failed[0]}' {self.bad[failed[0]]}" if failed else None

    def take_ready(self) -> PlannedStep | None:
        """The first waiting step (in plan order) whose upstream steps all have an outcome."""
        for step in self.pending:
            if all(u in self.results for u in (*step.depends_on, *step.after)):
                self.pending.remove(step)
                return step
        return None


def run_steps(
    steps: Sequence[PlannedStep],
    results: dict[str, StepResult],
    *,
    run: RunStep,
    skip: SkipStep,
    done: Done,
    max_workers: int = 1,
    interrupt: Callable[[], None] = lambda: None,
) -> LeaseLost | None:
    """Run ``steps`` (in topological order) into ``results`` (dataset → outcome); returns
    the error that stopped the run when the project lock was lost. ``interrupt`` is called
    when the calling thread is interrupted (Ctrl-C) while steps run in other threads."""
    dag = _Dag(steps, results)
    if max_workers <= 1:
        return _sequential(dag, run, skip, done)
    return _concurrent(dag, run, skip, done, max_workers, interrupt)


def _settled(dag: _Dag, r: StepResult, done: Done) -> None:
    dag.settle(r)
    done(r)


def _lost(dag: _Dag, e: LeaseLost, done: Done) -> LeaseLost:
    partial = getattr(e, "step_result", None)
    if isinstance(partial, StepResult):
        _settled(dag, partial, done)
    return e


def _sequential(dag: _Dag, run: RunStep, skip: SkipStep, done: Done) -> LeaseLost | None:
    while (step := dag.take_ready()) is not None:
        why = dag.skip_reason(step)
        if why is not None:
            _settled(dag, skip(step, why), done)
            continue
        try:
            r = run(step)
        except LeaseLost as e:
            return _lost(dag, e, done)
        _settled(dag, r, done)
    return None


def _concurrent(
    dag: _Dag,
    run: RunStep,
    skip: SkipStep,
    done: Done,
    max_workers: int,
    interrupt: Callable[[], None],
) -> LeaseLost | None:
    lost: LeaseLost | None = None
    running: dict[Future[StepResult], PlannedStep] = {}
    order = {id(s): i for i, s in enumerate(dag.pending)}
    with ThreadPoolExecutor(max_workers, thread_name_prefix="lockgate-step") as pool:
        try:
            while True:
                while lost is None and len(running) < max_workers:
                    step = dag.take_ready()
                    if step is None:
                        break
                    why = dag.skip_reason(step)
                    if why is not None:
                        _settled(dag, skip(step, why), done)
                    else:
                        running[pool.submit(run, step)] = step
                if not running:
                    return lost
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: order[id(running[f])]):
                    running.pop(fut)
                    try:
                        _settled(dag, fut.result(), done)
                    except LeaseLost as e:
                        first = _lost(dag, e, done)
                        lost = lost or first
        except BaseException:  # Ctrl-C (or a bug): stop the running steps, then re-raise
            interrupt()
            raise
