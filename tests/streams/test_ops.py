"""Streams as operations see them: runs/steps/check results in the state store (history
reads them like dataset runs), one consumer per stream (its lease), and streams running
under ``lockgate serve`` with metrics."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lockgate.errors import LockHeld
from lockgate.ops.metrics import RunMetrics
from lockgate.ops.stream_workers import StreamWorkers
from lockgate.project.loader import load_project
from lockgate.state import StateStore
from lockgate.streams.report import BatchDone
from lockgate.streams.service import run_stream, stream_lock_name
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def _payloads() -> list[bytes]:
    return [event(i) for i in range(20)] + [event(3), b"{bad", event(30, amount=-1.0)]


def test_a_stream_run_is_recorded_like_a_dataset_run(tmp_path: Path, redis_stream: str) -> None:
    publish_redis(redis_stream, _payloads())
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    project = load_project(root)
    report = run_stream(project, "events", until_idle=True)
    assert len(report.runs) == 1
    with StateStore.open(project.state_url) as state:
        detail = state.get_run(report.runs[0])
        assert detail is not None
        assert detail.run.status == "success" and detail.run.selection == "stream:events"
        (step,) = detail.steps
        assert step.dataset == "events"
        assert (step.rows_in, step.rows_out, step.rows_quarantined) == (23, 20, 2)
        assert step.skip_reasons == {"duplicate": 1} and step.rows_skipped == 1
        assert step.rows_in == 20 + 2 + 1  # published + quarantined (DLQ) + skipped
        (check,) = detail.checks[step.step_id]
        assert check.failing_rows == 1 and not check.passed
        history = state.check_history("streams_test", "events")
        assert [c.check_name for c in history] == [check.check_name]


def test_one_consumer_per_stream(tmp_path: Path, redis_stream: str) -> None:
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    project = load_project(root)
    with (
        StateStore.open(project.state_url) as state,
        state.lock(stream_lock_name("streams_test", "events")),
        pytest.raises(LockHeld),
    ):
        run_stream(project, "events", until_idle=True)
    # the project's own lock (a dataset run) does not stop a stream
    with StateStore.open(project.state_url) as state, state.lock("streams_test"):
        assert run_stream(project, "events", until_idle=True).counts.read == 0


@pytest.mark.slow
def test_streams_run_under_serve_with_metrics(tmp_path: Path, redis_stream: str) -> None:
    publish_redis(redis_stream, _payloads())
    src = {"type": "redis", "stream": redis_stream}
    root = write_project(tmp_path, [stream_def(src, record_every="1h")])
    project = load_project(root)
    metrics = RunMetrics()
    workers = StreamWorkers(project, metrics)
    done = threading.Event()
    seen = {"read": 0}

    def listen(name: str, b: BatchDone) -> None:
        seen["read"] += b.counts.read
        if seen["read"] >= 23:
            done.set()

    workers.listeners.append(listen)
    workers.start()
    try:
        assert done.wait(120), workers.health()
    finally:
        workers.stop()
    health = workers.health()["events"]
    assert health["events"] == 23 and health["last_error"] is None
    text = metrics.exposition().decode()
    assert 'lockgate_stream_events_total{kind="published",stream="events"} 20.0' in text
    assert 'lockgate_stream_events_total{kind="dlq",stream="events"} 2.0' in text
    assert "lockgate_stream_batch_seconds_bucket" in text
    assert "lockgate_stream_lag_messages" in text
    # stopping wrote the segment (record_every is an hour)
    with StateStore.open(project.state_url) as state:
        runs = state.list_runs("streams_test")
        assert [r.selection for r in runs] == ["stream:events"]
        assert runs[0].summary is not None and runs[0].summary["read"] == 23
