"""The I/O thread parses the next batch while the runner commits the one before (read
ahead): the same tables and counts as parsing in the runner's thread, also for messages only
the engine's json_valid pass can judge (run on the I/O thread's own cursor) and for a batch
the table already holds in part (a redelivery after a restart)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import StreamReport, StreamRunner
from lockgate.streams.sources import Batch, empty_batch
from tests.streams.conftest import COLUMNS, event

DATA = [event(i) for i in range(30)]
DATA[4] = b"{oops"
DATA[9] = b'{"event_id": "a"} {"event_id": "b"}'  # braced, two objects: json_valid says no
DATA[11] = event(3)  # a duplicate
DATA[17] = event(17, amount=-1.0)  # fails the check
DATA[23] = b'{"event_id": "c"}}'
VALID = sorted({f"e{i}" for i in range(30)} - {"e4", "e9", "e11", "e17", "e23"})


class FromStart:
    """Delivers ``size`` messages a fetch from ``start`` whatever the table's position (a
    broker redelivering what was committed, as after a crash between commit and ack)."""

    def __init__(self, data: Sequence[bytes], size: int, start: int = 0) -> None:
        self.data, self.size, self.pos = data, size, start

    PARTITIONED = False

    def partitions(self) -> list[int]:
        return [0]

    def position_id(self, partition: int) -> str:
        raise NotImplementedError

    def seek(self, committed: dict[int, int]) -> None:
        pass

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        start, self.pos = self.pos, min(self.pos + self.size, len(self.data))
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


def _spec(prefetch: bool) -> StreamSpec:
    d: dict[str, Any] = {
        "name": "events",
        "source": {"type": "redis", "stream": "unused"},
        "columns": COLUMNS,
        "dedup": {"key": ["event_id"]},
        "mask": {"email": "hash"},
        "checks": [{"type": "between", "column": "amount", "min": 0}],
        "sink": {"dataset": "events", "dlq_commit_every": 3},
        "batch": {"max_events": 6, "prefetch": prefetch},
    }
    return StreamSpec.model_validate(d)


def _run(wh: Path, consumer: FromStart, prefetch: bool) -> StreamReport:
    with engine_for() as con:
        runner = StreamRunner(_spec(prefetch), consumer, store_for("delta", wh), con)
        return runner.run(until_idle=True)


@pytest.mark.parametrize("prefetch", [True, False])
def test_read_ahead_gives_what_parsing_in_the_runner_gives(tmp_path: Path, prefetch: bool) -> None:
    # the first run stops after 12 messages; the second is delivered all 30 from the start
    first = _run(tmp_path, FromStart(DATA[:12], 5), prefetch)
    assert first.counts.reconciles and first.counts.read == 12
    again = _run(tmp_path, FromStart(DATA, 5), prefetch)
    c = again.counts
    assert c.reconciles and c.read == 30 and c.already_committed == 12
    assert (c.published, c.dlq, c.duplicates) == (len(VALID) - 9, 2, 0)
    store = store_for("delta", tmp_path)
    assert sorted(store.read("events").column("event_id").to_pylist()) == VALID
    dlq = store.read("events__dlq")
    assert sorted(dlq.column("seq").to_pylist()) == [5, 10, 18, 24]  # each once
    if prefetch:
        assert again.phases.get("parse (read ahead)", 0) > 0
    assert len(again.latency_seconds) == again.batches
