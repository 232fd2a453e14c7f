"""A broker that delivers old messages again, after newer ones (JetStream after ``ack_wait``
on a slow batch): the batch's position is its largest sequence, each message is processed
once, nothing newer is skipped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.runner import StreamRunner
from lockgate.streams.sources import Batch, empty_batch, in_stream_order
from tests.streams.conftest import event
from tests.streams.test_dedup_semantics import _spec


def _msg(seq: int) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(sequence=SimpleNamespace(stream=seq)))


def test_jetstream_messages_are_put_in_stream_order_once() -> None:
    msgs = [_msg(s) for s in (21, 22, 11, 12, 22, 23)]
    out, again = in_stream_order(msgs)
    assert [m.metadata.sequence.stream for m in out] == [11, 12, 21, 22, 23]
    assert again == 1 and out[-1] is msgs[5]  # the ack token: the newest message
    ordered = [_msg(s) for s in (1, 2, 3)]
    assert in_stream_order(ordered) == (ordered, 0)


class SeqConsumer:
    """Delivers the given batches of seqs (payload = event of that seq), as a broker
    redelivering old messages would (no dedup key: only positions protect)."""

    PARTITIONED = False

    def __init__(self, batches: Sequence[Sequence[int]]) -> None:
        self.batches, self.n = list(batches), 0

    def partitions(self) -> list[int]:
        return [0]

    def position_id(self, partition: int) -> str:
        raise NotImplementedError

    def seek(self, committed: dict[int, int]) -> None:
        pass

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        if self.n >= len(self.batches):
            return empty_batch()
        seqs = list(self.batches[self.n])
        self.n += 1
        return Batch([event(s) for s in seqs], pa.array([str(s) for s in seqs]), pa.array(seqs))

    def ack(self, batch: Batch) -> None:
        pass

    def lag(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def test_old_messages_after_new_ones_neither_hide_nor_duplicate_them(tmp_path: Path) -> None:
    """Before: the batch [4, 5, 2, 3] was tagged with seq 3 (its last), which the sink
    already held — the commit was skipped and events 4 and 5 were lost."""
    store = store_for("delta", tmp_path)
    spec = _spec(dedup=None)
    with engine_for() as con:
        c = (
            StreamRunner(spec, SeqConsumer([[1, 2, 3], [4, 5, 2, 3], [6]]), store, con)
            .run(until_idle=True)
            .counts
        )
    assert c.reconciles and (c.read, c.published, c.already_committed) == (8, 6, 2)
    ids = sorted(store.read("events").column("event_id").to_pylist())
    assert ids == [f"e{i}" for i in range(1, 7)]
    assert store.snapshot("events").txn_version == 6  # type: ignore[union-attr]
