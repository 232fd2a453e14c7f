"""Run events: every listener sees every event in order; a failing listener is dropped
without changing what the others receive."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import lockgate
from lockgate.runloop.events import EventBus, RunEvent, StepFinished, StepStarted


def test_failing_listener_is_dropped_and_others_keep_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RunEvent] = []
    calls = 0

    def broken(event: RunEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("listener bug")

    bus = EventBus([broken, seen.append])
    first = StepStarted(run_id="r", dataset="a")
    second = StepFinished(run_id="r", dataset="a", status="success", result=None)
    with caplog.at_level(logging.WARNING, logger="lockgate.runloop.events"):
        bus.emit(first)
        bus.emit(second)
    assert seen == [first, second]
    assert calls == 1
    assert "listener bug" in caplog.text or "failed on StepStarted" in caplog.text


def test_events_are_frozen_values() -> None:
    e = StepStarted(run_id="r", dataset="a")
    with pytest.raises(AttributeError):
        e.dataset = "b"  # type: ignore[misc]
    assert e.at.tzinfo is not None


def test_a_run_emits_its_story_to_every_listener(tmp_path: Path) -> None:
    """A listener from outside the package sees, in order: the run start, each step's start,
    phases, checks, quarantine, publish or block, its end, and the run's end."""
    from lockgate.runloop import events as ev
    from tests.run.helpers import csv_source, make_project, sql

    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw",
                "data/raw.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE"},
                checks=[{"type": "between", "column": "amount", "min": 0}],
            ),
            sql(
                "big",
                "select * from raw where amount > 5",
                checks=[{"type": "row_count", "min": 10}],  # blocks: 1 row
            ),
            sql("after_big", "select count(*) as n from big"),
        ],
        files={"data/raw.csv": "id,amount\n1,3\n2,-1\n3,9\nx,2\n"},
    )
    seen: list[ev.RunEvent] = []

    def broken(e: ev.RunEvent) -> None:
        raise RuntimeError("a listener bug must not change the run")

    res = lockgate.run(root, listeners=[seen.append, broken])
    assert [s.status for s in res.steps] == ["success", "blocked", "upstream_failed"]
    kinds = [(type(e).__name__, getattr(e, "dataset", None)) for e in seen]
    assert kinds[0] == ("RunStarted", None) and kinds[-1] == ("RunFinished", None)
    assert {e.run_id for e in seen} == {res.run_id}
    raw = [k for k, d in kinds if d == "raw"]
    assert raw[0] == "StepStarted" and raw[-1] == "StepFinished"
    assert "StepPhase" in raw and "CheckEvaluated" in raw
    assert raw.index("Quarantined") < raw.index("Published") < raw.index("StepFinished")
    (q,) = [e for e in seen if isinstance(e, ev.Quarantined)]
    assert (q.dataset, q.rows) == ("raw", 2)  # -1 fails the range, 'x' is not a BIGINT
    (pub,) = [e for e in seen if isinstance(e, ev.Published)]
    assert (pub.dataset, pub.rows, pub.version) == ("raw", 2, 0)
    (blocked,) = [e for e in seen if isinstance(e, ev.GateBlockedEvent)]
    assert blocked.dataset == "big" and "row_count" in blocked.reason
    checks = {(e.dataset, e.check): e.status for e in seen if isinstance(e, ev.CheckEvaluated)}
    assert checks[("big", "row_count")] == "fail"
    finished = {e.dataset: e.status for e in seen if isinstance(e, ev.StepFinished)}
    assert finished == {"raw": "success", "big": "blocked", "after_big": "upstream_failed"}
    assert isinstance(seen[-1], ev.RunFinished) and seen[-1].status == str(res.status)
