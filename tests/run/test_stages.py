"""A step is the tuple ``lockgate.runloop.step.STAGES`` run in order over a typed state; a
blocked gate is the step's outcome, not an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.runloop import step as step_mod
from lockgate.runloop.context import Stage, StepContext, StepState
from lockgate.runloop.results import StepStatus
from lockgate.runloop.step import STAGES
from lockgate.state import StateStore
from tests.run.helpers import csv_source, make_project, sql


def _recording(stages: tuple[Stage, ...], seen: list[str]) -> tuple[Stage, ...]:
    def wrap(stage: Stage) -> Stage:
        def recorded(ctx: StepContext, state: StepState) -> None:
            seen.append(f"{state.name}:{stage.__name__}")
            stage(ctx, state)

        return recorded

    return tuple(wrap(s) for s in stages)


def _project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "p",
        [
            csv_source("raw", "data/raw.csv"),
            sql("big", "select * from raw", checks=[{"type": "row_count", "min": 10}]),
        ],
        files={"data/raw.csv": "id\n1\n2\n"},
        config={"defaults": {"gate": "block"}},
    )


def test_run_step_runs_the_stages_tuple_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("raw", "data/raw.csv")],
        files={"data/raw.csv": "id\n1\n2\n"},
    )
    seen: list[str] = []
    extra: list[int] = []

    def count_rows(ctx: StepContext, state: StepState) -> None:  # a stage from outside
        extra.append(state.result.rows_out)

    monkeypatch.setattr(step_mod, "STAGES", (*_recording(STAGES, seen), count_rows))
    res = lockgate.run(root)
    assert res.step("raw").status == StepStatus.SUCCESS
    assert seen == [f"raw:{s.__name__}" for s in STAGES]
    assert extra == [2]  # ran after publish, with what it published

    seen.clear()
    again = lockgate.run(root)  # the same batch: resolve ends the step, up to date
    assert again.step("raw").status == StepStatus.NOOP
    assert seen == ["raw:resolve"] and extra == [2]


def test_a_blocked_gate_is_the_step_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    seen: list[str] = []
    monkeypatch.setattr(step_mod, "STAGES", _recording(STAGES, seen))
    res = lockgate.run(root)
    big = res.step("big")
    assert big.status == StepStatus.BLOCKED
    assert big.reason.startswith("quality gate blocked dataset 'big'")
    assert big.hint and "lockgate show big" in big.hint
    assert big.error and big.error.startswith(big.reason)
    assert big.rows_in == 2 and big.rows_out == 0 and big.batch_id
    assert [c["name"] for c in big.checks] == ["row_count"] and big.scores
    names = [s.__name__ for s in STAGES]
    assert [x.split(":")[1] for x in seen if x.startswith("big:")] == names[
        : names.index("gate") + 1
    ]
    # recorded like before: the attempt as a terminal error, the step blocked, no version
    state = StateStore.open(lockgate.load_project(root).state_url)
    (st,) = state.dataset_steps(res.project, "big")
    assert (st.status, st.output_version, st.rows_in) == ("blocked", None, 2)
