"""``lockgate run`` drains change sources; ``--follow`` keeps going until stopped (the loop
itself, with fake runs: no server, no timing)."""

from __future__ import annotations

import threading

from lockgate.runloop.follow import drain
from lockgate.runloop.results import RunResult, RunStatus, StepResult, StepStatus


def _result(more: bool, ok: bool = True) -> RunResult:
    step = StepResult("d", StepStatus.SUCCESS if ok else StepStatus.FAILED, more_available=more)
    status = RunStatus.SUCCESS if ok else RunStatus.FAILED
    return RunResult(run_id="r", seq=1, project="p", status=status, steps=[step], duration_s=0)


def test_drain_runs_again_while_a_step_has_more_and_refreshes_once() -> None:
    script = iter([True, True, False])
    calls: list[bool] = []

    def run_once(refresh: bool) -> RunResult:
        calls.append(refresh)
        return _result(next(script))

    assert len(drain(run_once, full_refresh=True)) == 3
    assert calls == [True, False, False]


def test_a_failed_run_stops_the_drain() -> None:
    assert len(drain(lambda _: _result(True, ok=False))) == 1


def test_follow_keeps_running_until_stopped() -> None:
    stop = threading.Event()
    seen: list[RunResult] = []

    def on_run(r: RunResult) -> None:
        seen.append(r)
        if len(seen) == 5:
            stop.set()

    out = drain(lambda _: _result(False), follow=True, wait_seconds=0, stop=stop, on_run=on_run)
    assert len(out) == 5
