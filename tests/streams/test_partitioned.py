"""Partitioned sources without a broker: a fake consumer with partitions (the runner's side
of Kafka), and the Kafka consumer's batch building from fake messages."""

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
from tests.streams.conftest import COLUMNS, dlq_rows, event


class PartitionedConsumer:
    """Delivers the given batches of ``(partition, offset, payload)`` in order, each batch
    only from what is after the sought positions (as a broker would after a seek)."""

    PARTITIONED = True

    def __init__(self, batches: Sequence[Sequence[tuple[int, int, bytes]]]) -> None:
        self.batches, self.n, self.committed = list(batches), 0, {}  # type: ignore[var-annotated]

    def partitions(self) -> list[int]:
        return [0, 1, 2]

    def position_id(self, partition: int) -> str:
        return f"stream:events:fake:{partition}"

    def seek(self, committed: dict[int, int]) -> None:
        self.committed = dict(committed)

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        while self.n < len(self.batches):
            msgs = [m for m in self.batches[self.n] if m[1] > self.committed.get(m[0], -1)]
            self.n += 1
            if msgs:
                return Batch(
                    [m[2] for m in msgs],
                    pa.array([f"{p}:{o}" for p, o, _ in msgs]),
                    pa.array([o for _, o, _ in msgs], pa.int64()),
                    None,
                    pa.array([p for p, _, _ in msgs], pa.int32()),
                )
        return empty_batch()

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
            "checks": [{"type": "between", "column": "amount", "min": 0}],
            "sink": {"dataset": "events", **sink},
        }
    )


BATCHES: list[list[tuple[int, int, bytes]]] = [
    [(0, 0, event(0)), (1, 0, event(1)), (2, 0, event(2)), (0, 1, event(3))],
    [(1, 1, b"{bad"), (2, 1, b"[1]")],  # wholly to the DLQ: positions still move
    [(0, 2, event(4)), (2, 2, event(2)), (1, 2, event(5, amount=-1.0))],
]


def test_each_partition_has_its_position_in_the_table(tmp_path: Path) -> None:
    store = store_for("delta", tmp_path / "wh")
    with engine_for() as con:
        report = StreamRunner(_spec(), PartitionedConsumer(BATCHES), store, con).run(
            until_idle=True
        )
    c = report.counts
    assert c.reconciles and (c.read, c.published, c.dlq, c.duplicates) == (9, 5, 3, 1)
    positions = {p: store.txn_version("events", f"stream:events:fake:{p}") for p in range(3)}
    assert positions == {0: 3, 1: 3, 2: 3}  # next offsets, the DLQ-only batch included
    snap = store.snapshot("events")
    assert snap is not None and snap.txn_version == 2  # a commit counter: 0, 1, 2
    # a restart: the fake broker redelivers everything; the table's positions skip it all
    with engine_for() as con:
        again = StreamRunner(_spec(), PartitionedConsumer(BATCHES), store, con)
        assert again.done == {0: 2, 1: 2, 2: 2}
        assert again.run(until_idle=True).counts.read == 0  # sought past everything


def test_a_crash_between_dlq_and_sink_commits_writes_each_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition positions filter rows per table: the DLQ (committed) is not written again,
    the sink (not committed) gets the batch; other partitions' rows are not skipped. (The
    DLQ committed before the sink: ``dlq_commit_every: 1``.)"""
    store = store_for("delta", tmp_path / "wh")
    real = store.publish
    batches = [[(0, 0, event(0)), (1, 0, b"{bad"), (2, 0, event(2))]]

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events":
            raise RuntimeError("crash before the sink commit")
        return real(name, *a, **k)

    with engine_for() as con:
        monkeypatch.setattr(store, "publish", failing)
        with pytest.raises(RuntimeError, match="crash before the sink commit"):
            StreamRunner(_spec(dlq_commit_every=1), PartitionedConsumer(batches), store, con).run(
                until_idle=True
            )
        monkeypatch.setattr(store, "publish", real)
        assert store.read("events__dlq").num_rows == 1
        runner = StreamRunner(_spec(dlq_commit_every=1), PartitionedConsumer(batches), store, con)
        assert runner.done == {} and runner.dlq_done == {0: 0, 1: 0, 2: 0}
        c = runner.run(until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (3, 2, 1)
    assert store.read("events__dlq").num_rows == 1  # not twice
    assert sorted(store.read("events").column("event_id").to_pylist()) == ["e0", "e2"]


def test_a_crash_after_sink_commits_before_the_deferred_dlq_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DLQ rows of two batches are buffered (logged) after their sink commits; the DLQ
    commit fails: a restart commits exactly the logged rows of the batches the sink holds,
    once, and the source is sought past them (nothing is read again)."""
    store = store_for("delta", tmp_path / "wh")
    real = store.publish

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events__dlq":
            raise RuntimeError("crash before the DLQ commit")
        return real(name, *a, **k)

    spec = _spec(dlq_commit_every=5)
    with engine_for() as con:
        monkeypatch.setattr(store, "publish", failing)
        with pytest.raises(RuntimeError, match="crash before the DLQ commit"):
            StreamRunner(spec, PartitionedConsumer(BATCHES), store, con).run(until_idle=True)
        monkeypatch.setattr(store, "publish", real)
        assert not dlq_rows(store)  # the sink has all three batches
        assert sorted(store.read("events").column("event_id").to_pylist()) == [
            "e0", "e1", "e2", "e3", "e4"
        ]  # fmt: skip
        runner = StreamRunner(spec, PartitionedConsumer(BATCHES), store, con)
        assert runner.dlq_done == runner.done == {0: 2, 1: 2, 2: 2}  # recovered at start
        c = runner.run(until_idle=True).counts
        assert c.read == 0
        again = StreamRunner(spec, PartitionedConsumer(BATCHES), store, con)
        assert again.run(until_idle=True).counts.read == 0
    dlq = store.read("events__dlq")
    assert sorted(dlq.column("offset").to_pylist()) == ["1:1", "1:2", "2:1"]  # each once
    assert sorted(store.read("events").column("event_id").to_pylist()) == [
        "e0", "e1", "e2", "e3", "e4"
    ]  # fmt: skip


def test_a_crash_before_the_sink_commit_ignores_the_logged_dlq_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DLQ rows logged for a batch whose sink commit did not land are not committed at
    start (the batch is read again and logs them again): each DLQ row once."""
    store = store_for("delta", tmp_path / "wh")
    real = store.publish
    calls = {"events": 0}

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "events":
            calls["events"] += 1
            if calls["events"] == 2:  # the second batch (all bad) is logged, not committed
                raise RuntimeError("crash before the sink commit")
        return real(name, *a, **k)

    spec = _spec(dlq_commit_every=5)
    with engine_for() as con:
        monkeypatch.setattr(store, "publish", failing)
        with pytest.raises(RuntimeError, match="crash before the sink commit"):
            StreamRunner(spec, PartitionedConsumer(BATCHES), store, con).run(until_idle=True)
        monkeypatch.setattr(store, "publish", real)
        runner = StreamRunner(spec, PartitionedConsumer(BATCHES), store, con)
        assert not dlq_rows(store)  # nothing recovered: the sink lacks batch 2
        c = runner.run(until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (5, 1, 3)
    dlq = store.read("events__dlq")
    assert sorted(dlq.column("offset").to_pylist()) == ["1:1", "1:2", "2:1"]


class _Msg:
    def __init__(self, p: int, o: int, v: bytes | None, err: Any = None) -> None:
        self.p, self.o, self.v, self.err = p, o, v, err

    def error(self) -> Any:
        return self.err

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def value(self) -> bytes | None:
        return self.v


def test_kafka_batch_drops_and_counts_redeliveries_within_a_fetch() -> None:
    pytest.importorskip("confluent_kafka", reason="confluent-kafka not installed")
    from confluent_kafka import KafkaError

    from lockgate.streams.kafka import KafkaConsumer, KafkaSourceError

    eof = KafkaError(KafkaError._PARTITION_EOF)
    msgs = [
        _Msg(0, 5, b"a"),
        _Msg(1, 9, None),  # a tombstone: an empty message (the DLQ says so)
        _Msg(0, 6, b"b"),
        _Msg(0, 0, None, eof),  # end of partition: news, not a message
        _Msg(0, 5, b"a"),  # re-sought after a rebalance: the same offsets again
        _Msg(0, 6, b"b"),
        _Msg(0, 7, b"c"),
    ]
    consumer = object.__new__(KafkaConsumer)  # no client: only the batch building
    consumer.spec = type("S", (), {"topic": "shop"})()
    batch = consumer._batch(msgs)  # type: ignore[arg-type]
    assert list(batch.payloads) == [b"a", b"", b"b", b"c"]
    assert batch.seqs.to_pylist() == [5, 9, 6, 7]
    assert batch.partitions is not None and batch.partitions.to_pylist() == [0, 1, 0, 0]
    assert batch.offsets.to_pylist() == ["0:5", "1:9", "0:6", "0:7"]
    assert batch.redelivered == 2 and batch.token == {0: 7, 1: 9}
    broken = [_Msg(0, 0, None, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))]
    with pytest.raises(KafkaSourceError, match="kafka topic 'shop'"):
        consumer._batch(broken)  # type: ignore[arg-type]
