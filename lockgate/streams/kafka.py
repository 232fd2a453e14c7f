"""Kafka consumer (confluent-kafka / librdkafka), one position per partition in the table.

A topic has many partitions, each with its own offsets, so the sink table holds one
application transaction per partition: ``stream:<name>:kafka:<topic>:<partition>`` with
version = the partition's *next* offset. A batch's commit carries the positions of every
partition it read — one Delta commit, all partitions together.

The table is the truth, never the group's committed offsets:

- at start (:meth:`KafkaConsumer.seek`) the runner passes the table's positions; on every
  assignment (the first and each rebalance) each assigned partition is sought to
  ``max(table, acknowledged)`` — a partition the table does not know starts at its
  earliest retained message (``latest`` would skip what arrives before a first commit);
- offsets are committed to Kafka only in :meth:`~KafkaConsumer.ack`, i.e. after the Delta
  commit (for lag dashboards; a crash between the two only makes them stale);
- a rebalance re-seeks assigned partitions: messages fetched before it and delivered again
  after it are skipped — by the runner when a commit already holds them
  (``already_committed``), by :meth:`~KafkaConsumer.fetch` when both copies land in one fetch
  (``redelivered``). Nothing is lost (a re-sought partition restarts at the table's
  position) and nothing is written twice (positions are compared before every write).

One stream has one consumer (the stream's lease); another member of the same group would
take partitions away, which this consumer survives (re-seek on assignment) but which splits
the topic between two writers of different tables — give each stream its own ``group``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lockgate._duration import parse_duration
from lockgate.errors import TransientError
from lockgate.redact import redact
from lockgate.streams.config import KafkaStreamSource
from lockgate.streams.sources import Batch, empty_batch

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)


class KafkaSourceError(TransientError):
    """The broker reported an error for the topic (not for one message)."""


def position_id(stream: str, topic: str, partition: int) -> str:
    """The application-transaction id of one partition's position.

    >>> position_id("events", "shop", 2)
    'stream:events:kafka:shop:2'
    """
    return f"stream:{stream}:kafka:{topic}:{partition}"


class KafkaConsumer:
    """A subscribed group member; partitions sought to the table's positions on assignment."""

    PARTITIONED = True

    def __init__(self, spec: KafkaStreamSource, stream: str) -> None:
        from confluent_kafka import Consumer

        self.spec = spec
        self.stream = stream
        session_ms = int(parse_duration(spec.session_timeout).total_seconds() * 1000)
        self.client: Consumer = Consumer(
            {
                "bootstrap.servers": spec.bootstrap,
                "group.id": spec.group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session_ms,
                "heartbeat.interval.ms": max(100, min(3000, session_ms // 4)),
                "logger": log,
            }
        )
        #: partition → next offset to read: the table's positions, then what was committed
        self.next: dict[int, int] = {}
        self.assigned: set[int] = set()
        self._subscribed = False
        self._joined = False  # an assignment came (possibly of no partition)

    def partitions(self) -> list[int]:
        md = self.client.list_topics(self.spec.topic, timeout=30)
        topic = md.topics.get(self.spec.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            return []  # not created yet: every partition starts with no position
        return sorted(topic.partitions)

    def position_id(self, partition: int) -> str:
        return position_id(self.stream, self.spec.topic, partition)

    def seek(self, committed: dict[int, int]) -> None:
        for p, seq in committed.items():
            if seq >= 0:
                self.next[p] = max(self.next.get(p, 0), seq + 1)
        if not self._subscribed:
            self.client.subscribe(
                [self.spec.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            self._subscribed = True

    def _on_assign(self, client: Consumer, parts: list[TopicPartition]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        for tp in parts:
            tp.offset = self.next.get(tp.partition, OFFSET_BEGINNING)
            if tp.offset >= 0:
                self._warn_expired(client, tp)
        self.assigned.update(tp.partition for tp in parts)
        self._joined = True
        log.info(
            "stream %s: assigned %s",
            self.stream,
            ", ".join(f"{tp.partition}@{tp.offset}" for tp in parts),
        )
        client.assign(parts)

    def _warn_expired(self, client: Consumer, tp: TopicPartition) -> None:
        """Say so when messages after the table's position are gone (retention): they were
        never read, so no count holds them — this warning is where they show."""
        try:
            low, _ = client.get_watermark_offsets(tp, timeout=5, cached=False)
        except Exception:
            return
        if low is not None and low > tp.offset:
            log.warning(
                "stream %s: topic %s partition %d: %d message(s) after the table's position "
                "%d expired before they were read (retention); resuming at %d",
                self.stream, self.spec.topic, tp.partition, low - tp.offset, tp.offset, low,
            )  # fmt: skip

    def _on_revoke(self, client: Consumer, parts: list[TopicPartition]) -> None:
        self.assigned.difference_update(tp.partition for tp in parts)
        log.info("stream %s: revoked %s", self.stream, [tp.partition for tp in parts])
        client.unassign()

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        """Up to ``max_events`` messages; empty only once caught up — joined the group and
        read to each assigned partition's end — or after ``JOIN_WAIT`` seconds without that
        (joining a group, or a partition's first fetch, takes longer than a batch's wait);
        :class:`KafkaSourceError` when no assignment came in that time."""
        deadline = time.monotonic() + max(self.JOIN_WAIT, wait_seconds)
        while True:
            msgs = self.client.consume(num_messages=max_events, timeout=max(wait_seconds, 0.01))
            if msgs:
                return self._batch(msgs)
            if self._joined and self._caught_up():
                return empty_batch()
            if time.monotonic() >= deadline:
                if not self._joined:  # silence would look like an idle topic
                    raise KafkaSourceError(
                        f"kafka topic {self.spec.topic!r}: no partition assignment from group "
                        f"{self.spec.group!r} within {self.JOIN_WAIT:.0f} s (brokers "
                        f"{redact(self.spec.bootstrap)}); {self._why_not_joined()}"
                    )
                return empty_batch()

    def _why_not_joined(self) -> str:
        """The likely cause, from one metadata request: no broker reachable, no such topic,
        or (both fine) another member holding the partitions."""
        try:
            meta = self.client.list_topics(self.spec.topic, timeout=5)
        except Exception as e:  # KafkaException: transport failure, all brokers down
            return f"no broker answered ({redact(str(e))}): is Kafka running at that address?"
        topic = meta.topics.get(self.spec.topic)
        if not meta.brokers:
            return "no broker answered: is Kafka running at that address?"
        if topic is None or topic.error is not None or not topic.partitions:
            return "the topic does not exist (create it, or enable auto-creation on the broker)"
        return "is another member holding the partitions?"

    #: seconds a fetch keeps waiting for the group's assignment / a partition's first data
    JOIN_WAIT = 30.0

    def _caught_up(self) -> bool:
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(self.spec.topic, p) for p in sorted(self.assigned)]
        for tp in self.client.position(tps) if tps else []:
            low, high = self.client.get_watermark_offsets(tp, timeout=5, cached=False)
            # nothing fetched yet: at the position it was sought to on assignment (the
            # table's; the start when it has none or retention removed it)
            at = tp.offset if tp.offset >= 0 else max(low, self.next.get(tp.partition, low))
            if at < high:
                return False
        return True

    def _batch(self, msgs: list[Message]) -> Batch:
        payloads: list[bytes] = []
        parts: list[int] = []
        offsets: list[int] = []
        top: dict[int, int] = {}
        repeats = 0
        for m in msgs:
            err = m.error()
            if err is not None:
                _raise_unless_harmless(err, self.spec.topic)
                continue
            p, o = m.partition() or 0, m.offset() or 0  # both set on a message without error
            if o <= top.get(p, -1):  # the same partition again after a re-seek
                repeats += 1
                continue
            top[p] = o
            value = m.value()
            payloads.append(value if value is not None else b"")
            parts.append(p)
            offsets.append(o)
        if not payloads:
            return Batch([], pa.array([], pa.string()), pa.array([], pa.int64()), None,
                         pa.array([], pa.int32()), repeats)  # fmt: skip
        labels = pa.array([f"{p}:{o}" for p, o in zip(parts, offsets, strict=True)])
        return Batch(
            payloads,
            labels,
            pa.array(offsets, pa.int64()),
            top,
            pa.array(parts, pa.int32()),
            repeats,
        )

    def ack(self, batch: Batch) -> None:
        """Commit the batch's offsets to the group (after its Delta commit)."""
        from confluent_kafka import KafkaException, TopicPartition

        top: dict[int, int] | None = batch.token
        if not top:
            return
        for p, o in top.items():
            self.next[p] = max(self.next.get(p, 0), o + 1)
        owned = [TopicPartition(self.spec.topic, p, o + 1) for p, o in top.items()]
        owned = [tp for tp in owned if tp.partition in self.assigned]
        if not owned:
            return
        try:
            self.client.commit(offsets=owned, asynchronous=True)
        except KafkaException as e:  # advisory only: the table holds the positions
            log.warning("stream %s: committing offsets to Kafka failed: %s", self.stream, e)

    def lag(self) -> int | None:
        from confluent_kafka import TopicPartition

        total = 0
        for p in sorted(self.assigned):
            tp = TopicPartition(self.spec.topic, p)
            _, high = self.client.get_watermark_offsets(tp, cached=True)  # from fetches
            if high is None or high < 0:
                _, high = self.client.get_watermark_offsets(tp, timeout=5, cached=False)
            if high is None or high < 0:
                return None
            total += max(0, high - self.next.get(p, 0))
        return total

    def close(self) -> None:
        self.client.close()


def _raise_unless_harmless(err: Any, topic: str) -> None:
    """End of partition is news, not an error; anything else stops the stream (retried)."""
    from confluent_kafka import KafkaError

    if err.code() == KafkaError._PARTITION_EOF:
        return
    raise KafkaSourceError(f"kafka topic {topic!r}: {redact(err.str())}")
