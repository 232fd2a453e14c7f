"""A message whose JSON strings hold bytes that are not UTF-8: Arrow's JSON reader does not
check them, so without a check the batch carries an invalid string column (a failed or
corrupt commit, the stream stuck on the same message). It goes to the DLQ, named; the rest
of the batch is published; counts reconcile."""

from __future__ import annotations

from pathlib import Path

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.service import run_stream
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def test_invalid_utf8_inside_a_json_string_goes_to_the_dlq(
    tmp_path: Path, redis_stream: str
) -> None:
    bad = event(1).replace(b'"ignored"', b'"x"').replace(b'"e1"', b'"e\xff\xfe1"')
    publish_redis(redis_stream, [event(0), bad, event(2)])
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (3, 2, 1)
    store = store_for("delta", root / "warehouse")
    assert sorted(store.read("events").column("event_id").to_pylist()) == ["e0", "e2"]
    (dlq,) = store.read("events__dlq").to_pylist()
    assert dlq["payload"] == bad and "UTF-8" in dlq["reason"]
