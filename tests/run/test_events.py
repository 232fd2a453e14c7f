"""Run events: every listener sees every event in order; a failing listener is dropped
without changing what the others receive."""

from __future__ import annotations

import logging

import pytest

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
