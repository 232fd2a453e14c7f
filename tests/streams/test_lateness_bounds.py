"""Hostile ``allowed_lateness`` values: one so large the watermark would fall before year 1
(nothing is ever late, the stream keeps running), and negative or unrepresentable ones
(refused when the project loads, not a crash or a stream that sends everything to the DLQ)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.errors import ConfigError
from lockgate.project.loader import load_project
from lockgate.streams.service import run_stream
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def test_a_huge_allowed_lateness_means_nothing_is_late(tmp_path: Path, redis_stream: str) -> None:
    # batch 1 (7 events) sets the watermark; batch 2 has an event 2000 years older
    first = [event(i, ts="2026-01-01T12:00:00") for i in range(7)]
    later = [event(10, ts="0026-01-01T00:00:00"), event(11, ts="2026-01-01T12:01:00")]
    publish_redis(redis_stream, first + later)
    et = {"column": "ts", "allowed_lateness": "1000000d"}  # ~2738 years
    src = {"type": "redis", "stream": redis_stream}
    root = write_project(tmp_path, [stream_def(src, event_time=et)])
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (9, 9, 0)


@pytest.mark.parametrize("lateness", [-60, "99999999999d"])
def test_a_negative_or_unrepresentable_lateness_is_refused(
    tmp_path: Path, lateness: object
) -> None:
    et = {"column": "ts", "allowed_lateness": lateness}
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": "x"}, event_time=et)])
    with pytest.raises(ConfigError, match="allowed_lateness"):
        load_project(root)


def test_compacting_after_every_batch_keeps_the_watermark_and_positions(
    tmp_path: Path, redis_stream: str
) -> None:
    # sink.compact_every: 1 makes an optimize commit the sink's newest; a restart still
    # finds the watermark and the positions of the last lockgate commit
    src = {"type": "redis", "stream": redis_stream}
    et = {"column": "ts", "allowed_lateness": "5m"}
    d = stream_def(src, event_time=et, sink={"dataset": "events", "compact_every": 1})
    d["batch"] = {"max_events": 2, "max_latency": 0.2}
    root = write_project(tmp_path, [d])
    publish_redis(redis_stream, [event(i, ts=f"2026-01-01T12:3{i}:00") for i in range(6)])
    first = run_stream(load_project(root), "events", until_idle=True).counts
    assert first.reconciles and (first.read, first.published) == (6, 6)
    from deltalake import DeltaTable

    ops = [h.get("operation") for h in DeltaTable(str(root / "warehouse" / "events")).history()]
    assert "OPTIMIZE" in ops, ops  # the compaction did happen
    publish_redis(redis_stream, [event(20, ts="2026-01-01T12:10:00"), event(21)])
    again = run_stream(load_project(root), "events", until_idle=True).counts
    assert again.reconciles and (again.read, again.dlq, again.published) == (2, 2, 0)
