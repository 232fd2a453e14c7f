"""Hostile inputs against a stream (in-memory broker, real Delta tables): what must hold
whatever producers send."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import BatchCounts, StreamRunner
from tests.streams.conftest import COLUMNS
from tests.streams.test_restart import ListConsumer


def _spec(**over: Any) -> StreamSpec:
    d: dict[str, Any] = {
        "name": "events",
        "source": {"type": "redis", "stream": "unused"},
        "columns": COLUMNS,
        "dedup": {"key": ["event_id"]},
        "sink": {"dataset": "events"},
        "batch": {"max_events": 100},
    }
    d.update(over)
    return StreamSpec.model_validate(d)


def _ev(event_id: str, ts: str) -> bytes:
    return json.dumps({"event_id": event_id, "user_id": 1, "amount": 1.0, "ts": ts}).encode()


def _run(tmp_path: Path, spec: StreamSpec, data: list[bytes], sizes: list[int]) -> BatchCounts:
    store = store_for("delta", tmp_path / "wh")
    with engine_for() as con:
        consumer = ListConsumer(data, sizes)
        return StreamRunner(spec, consumer, store, con).run(until_idle=True).counts


def test_one_event_from_the_far_future_does_not_make_every_later_event_late(
    tmp_path: Path,
) -> None:
    """A producer's clock (or a hostile one) sends year 9999: the event is published, but the
    watermark never passes the consumer's own clock, so the events after it are not all
    routed to the DLQ as late — nor after a restart (the watermark is in the commit)."""
    spec = _spec(event_time={"column": "ts", "allowed_lateness": "1h"})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    at = [(now + dt.timedelta(seconds=i)).isoformat() for i in range(3)]
    data = [_ev("future", "9999-12-31T00:00:00"), _ev("a", at[0]), _ev("b", at[1])]
    c = _run(tmp_path, spec, data, [1, 2])
    assert (c.published, c.dlq) == (3, 0)
    again = [*data, _ev("c", at[2])]
    c = _run(tmp_path, spec, again, [10])  # restarted: the committed watermark is read back
    assert (c.published, c.dlq) == (1, 0)
