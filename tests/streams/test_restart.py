"""Restart after a failure between the commits of one batch (DLQ and late table committed,
sink not), when the broker then delivers a *bigger* batch starting at the same position:
nothing is written twice, nothing is lost. In-memory broker, real Delta tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import StreamRunner
from lockgate.streams.sources import Batch, empty_batch
from tests.streams.conftest import COLUMNS, event


class ListConsumer:
    """Delivers ``sizes[i]`` messages on the i-th fetch, from the position sought; then
    nothing (the rest has not arrived yet)."""

    def __init__(self, data: Sequence[bytes], sizes: Sequence[int]) -> None:
        self.data, self.sizes, self.pos, self.n = data, list(sizes), 0, 0

    PARTITIONED = False

    def partitions(self) -> list[int]:
        return [0]

    def position_id(self, partition: int) -> str:
        raise NotImplementedError

    def seek(self, committed: dict[int, int]) -> None:
        self.pos = max(committed.get(0, -1), 0)

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        size = self.sizes[self.n] if self.n < len(self.sizes) else 0
        self.n += 1
        start, self.pos = self.pos, min(self.pos + size, len(self.data))
        if start == self.pos:
            return empty_batch()
        seqs = pa.array(range(start + 1, self.pos + 1), pa.int64())
        return Batch(self.data[start : self.pos], seqs.cast(pa.string()), seqs)

    def ack(self, batch: Batch) -> None:
        pass

    def lag(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def _spec(**sink: Any) -> StreamSpec:
    return StreamSpec.model_validate(
        {
            "name": "events",
            "source": {"type": "redis", "stream": "unused"},
            "columns": COLUMNS,
            "dedup": {"key": ["event_id"]},
            "mask": {"email": "hash"},
            "checks": [{"type": "between", "column": "amount", "min": 0}],
            "event_time": {"column": "ts", "late": "events_late"},
            "sink": {"dataset": "events", **sink},
            "batch": {"max_events": 100},
        }
    )


def _ts(m: int) -> str:
    return f"2026-01-01T12:{m:02d}:00"


def test_late_and_dlq_rows_are_not_written_twice_after_a_partial_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = [event(i, ts=_ts(30 + i)) for i in range(3)]  # batch 1 (committed)
    data += [event(10, ts=_ts(1)), b"{bad", event(11, ts=_ts(40))]  # batch 2: late, bad, ok
    data += [event(12, ts=_ts(41)), event(13, ts=_ts(2))]  # only in the bigger batch 2'
    store = store_for("delta", tmp_path / "wh")
    real = store.publish

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events" and store.exists("events__dlq"):
            raise RuntimeError("crash before the sink commit")
        return real(name, *a, **k)

    with engine_for() as con:
        spec = _spec(dlq_commit_every=1)  # the DLQ committed before the sink
        StreamRunner(spec, ListConsumer(data, [3]), store, con).run(until_idle=True)
        monkeypatch.setattr(store, "publish", failing)
        with pytest.raises(RuntimeError, match="crash before the sink commit"):
            StreamRunner(spec, ListConsumer(data, [3]), store, con).run(until_idle=True)
        assert store.read("events_late").num_rows == 1 and store.read("events__dlq").num_rows == 1
        monkeypatch.setattr(store, "publish", real)
        report = StreamRunner(spec, ListConsumer(data, [10]), store, con).run(until_idle=True)
    c = report.counts
    assert c.reconciles and (c.read, c.published, c.late, c.dlq) == (5, 2, 2, 1)
    assert sorted(store.read("events").column("event_id").to_pylist()) == sorted(
        ["e0", "e1", "e2", "e11", "e12"]
    )
    assert sorted(store.read("events_late").column("event_id").to_pylist()) == ["e10", "e13"]
    assert store.read("events__dlq").num_rows == 1
