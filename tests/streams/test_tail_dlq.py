"""A batch that went wholly to the DLQ at the end of the stream is not read as new (nor
counted as DLQ again) by the next run: nothing is reported twice."""

from __future__ import annotations

from pathlib import Path

from lockgate.project.loader import load_project
from lockgate.storage import DeltaStore
from lockgate.streams.service import run_stream
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def test_a_tail_batch_wholly_in_the_dlq_is_not_counted_again(
    tmp_path: Path, redis_stream: str
) -> None:
    publish_redis(redis_stream, [event(i) for i in range(7)] + [b"{bad", b"nope"])
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    project = load_project(root)
    first = run_stream(project, "events", until_idle=True)
    assert (first.counts.read, first.counts.published, first.counts.dlq) == (9, 7, 2)
    for _ in range(2):
        again = run_stream(project, "events", until_idle=True)
        assert again.counts.dlq == 0 and again.counts.read == again.counts.already_committed
    store = DeltaStore(project.warehouse_path)
    assert store.arrow_dataset("events__dlq").to_table().num_rows == 2


def test_a_tail_batch_wholly_late_is_not_counted_again(tmp_path: Path, redis_stream: str) -> None:
    new = [event(i, ts="2026-01-02T00:00:00") for i in range(7)]
    old = [event(100 + i, ts="2026-01-01T00:00:00") for i in range(3)]  # behind the watermark
    publish_redis(redis_stream, new + old)
    d = stream_def(
        {"type": "redis", "stream": redis_stream},
        event_time={"column": "ts", "allowed_lateness": "1m", "late": "events_late"},
    )
    project = load_project(write_project(tmp_path, [d]))
    first = run_stream(project, "events", until_idle=True)
    assert (first.counts.read, first.counts.published, first.counts.late) == (10, 7, 3)
    again = run_stream(project, "events", until_idle=True)
    assert again.counts.late == 0 and again.counts.read == again.counts.already_committed
    store = DeltaStore(project.warehouse_path)
    assert store.arrow_dataset("events_late").to_table().num_rows == 3
