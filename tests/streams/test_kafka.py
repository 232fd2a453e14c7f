"""End to end on Kafka: librdkafka's mock cluster (``test.mock.num.brokers``), started in
this process and reached over TCP by the consumers (also by killed subprocesses).

Skipped when confluent-kafka cannot be imported, unless LOCKGATE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.kafka import position_id
from lockgate.streams.service import run_stream
from tests.conftest import REQUIRE_SERVICES
from tests.streams.conftest import event, stream_def, write_project

REPO = Path(__file__).resolve().parents[2]
#: the mock cluster creates a topic on first produce with this many partitions
PARTITIONS = 4


@pytest.fixture(scope="module")
def kafka() -> Iterator[str]:
    """Bootstrap servers of a 3-broker mock cluster living as long as this module's tests."""
    try:
        from confluent_kafka import Producer
    except ImportError as e:
        msg = f"confluent-kafka cannot be imported ({e}); install the 'streams' extra"
        if REQUIRE_SERVICES:
            pytest.fail(msg + " (LOCKGATE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(msg)
    owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "unused", "log_level": 3})
    brokers = owner.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    del owner  # the cluster ends with the client that made it


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for key, value in records:
        p.produce(topic, value=value, key=key)
    assert p.flush(30) == 0


def source(bootstrap: str, topic: str) -> dict[str, Any]:
    return {
        "type": "kafka",
        "bootstrap": bootstrap,
        "topic": topic,
        "group": "lg-" + topic,
        "session_timeout": "3s",  # a killed member's partitions come back quickly
    }


def workload(seed: int) -> tuple[list[tuple[bytes, bytes]], list[str], int]:
    """60 valid events over the partitions with out-of-order event times, 20 duplicates
    (some under another key: another partition), 6 invalid ones. Returns the records,
    the distinct valid event ids and the number of invalid messages."""
    rng = random.Random(seed)
    records: list[tuple[bytes, bytes]] = []
    for i in range(60):
        ts = f"2026-01-01T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        records.append((f"k{i}".encode(), event(i, ts=ts)))
    dups = [records[rng.randrange(60)] for _ in range(20)]
    dups = [(k if n % 2 else b"other" + k, v) for n, (k, v) in enumerate(dups)]
    bad = [
        b"{oops",
        b"",
        b"[1, 2",
        event(100, amount=-1.0),  # fails the check
        event(101, amount=-5.0),
        b'"just a string"',
    ]
    records += dups + [(f"bad{i}".encode(), v) for i, v in enumerate(bad)]
    rng.shuffle(records)
    return records, sorted(f"e{i}" for i in range(60)), len(bad)


def kafka_stream(bootstrap: str, topic: str, **over: Any) -> dict[str, Any]:
    d = stream_def(
        source(bootstrap, topic),
        event_time={"column": "ts", "allowed_lateness": "2d"},
        batch={"max_events": 9, "max_latency": 0.2},
    )
    d.update(over)
    return d


def test_kafka_end_to_end_one_position_per_partition(tmp_path: Path, kafka: str) -> None:
    topic = "lg-" + uuid.uuid4().hex[:10]
    records, valid, n_bad = workload(1)
    produce(kafka, topic, records)
    root = write_project(tmp_path, [kafka_stream(kafka, topic)])
    report = run_stream(load_project(root), "events", until_idle=True)
    c = report.counts
    assert c.reconciles and c.read == len(records)
    assert (c.published, c.dlq, c.duplicates) == (60, n_bad, 20)
    store = store_for("delta", root / "warehouse")
    events = store.read("events")
    assert sorted(events.column("event_id").to_pylist()) == valid
    assert not any("@" in e for e in events.column("email").to_pylist())
    dlq = store.read("events__dlq")
    assert dlq.num_rows == n_bad
    # every partition's position (next offset) is in the table, and equals the group's
    from confluent_kafka import Consumer, TopicPartition

    ends = {}
    probe = Consumer({"bootstrap.servers": kafka, "group.id": "lg-" + topic, "log_level": 3})
    try:
        for p in range(PARTITIONS):
            ends[p] = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        committed = probe.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
    finally:
        probe.close()
    assert sum(ends.values()) == len(records) and sum(1 for v in ends.values() if v) >= 3
    for p, end in ends.items():
        if end:
            assert store.txn_version("events", position_id("events", topic, p)) == end, p
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == {
        p: e for p, e in ends.items() if e
    }
    # offsets of DLQ rows name their partition
    assert all(":" in o for o in dlq.column("offset").to_pylist())
    # nothing new: a second run reads nothing; more events: only they are read
    assert run_stream(load_project(root), "events", until_idle=True).counts.read == 0
    produce(kafka, topic, [(b"k1", event(1)), (b"k200", event(200))])
    again = run_stream(load_project(root), "events", until_idle=True).counts
    assert (again.read, again.published, again.duplicates) == (2, 1, 1)


def test_a_restart_with_nothing_new_is_caught_up_before_any_fetch(
    tmp_path: Path, kafka: str
) -> None:
    """After a restart sought to the table's positions at each partition's end, the consumer
    is caught up once assigned, before any message is fetched (position() is unset then):
    an idle restart ends at once, not after JOIN_WAIT."""
    from lockgate.streams.config import KafkaStreamSource
    from lockgate.streams.kafka import KafkaConsumer

    topic = "lg-" + uuid.uuid4().hex[:10]
    produce(kafka, topic, [(f"k{i}".encode(), event(i)) for i in range(30)])
    root = write_project(tmp_path, [kafka_stream(kafka, topic)])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 30
    store = store_for("delta", root / "warehouse")
    ends = _ends(kafka, topic)
    spec = KafkaStreamSource(**source(kafka, topic))
    consumer = KafkaConsumer(spec, "events")
    try:
        consumer.seek({p: v - 1 for p, v in _positions(store, topic).items()})  # last read
        for _ in range(600):  # poll until the group assigned the partitions (bounded)
            assert not consumer.client.consume(num_messages=1, timeout=0.2)  # nothing new
            if consumer._joined:
                break
        assert consumer._joined and consumer.assigned == set(range(PARTITIONS))
        assert consumer._caught_up()
        produce(kafka, topic, [(b"k99", event(99))])  # one more: no longer caught up
        assert not consumer._caught_up()
    finally:
        consumer.close()
    assert sum(ends.values()) == 30


def test_kafka_table_position_wins_over_the_group_offsets(tmp_path: Path, kafka: str) -> None:
    """The group's offsets moved past what the table holds (another tool committed them):
    the stream still starts at the table's position, losing nothing."""
    from confluent_kafka import Consumer, TopicPartition

    topic = "lg-" + uuid.uuid4().hex[:10]
    produce(kafka, topic, [(f"k{i}".encode(), event(i)) for i in range(40)])
    rogue = Consumer({"bootstrap.servers": kafka, "group.id": "lg-" + topic, "log_level": 3})
    try:
        ends = [
            rogue.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        ]
        tps = [TopicPartition(topic, p, e) for p, e in enumerate(ends) if e]
        rogue.commit(offsets=tps, asynchronous=False)
    finally:
        rogue.close()
    root = write_project(tmp_path, [kafka_stream(kafka, topic)])
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert (c.read, c.published) == (40, 40)


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition → end offset, for partitions holding messages."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe", "log_level": 3})
    try:
        ends = {
            p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        probe.close()
    return {p: e for p, e in ends.items() if e}


def _positions(store: Any, topic: str) -> dict[int, int]:
    out = {}
    for p in range(PARTITIONS):
        v = store.txn_version("events", position_id("events", topic, p))
        if v is not None:
            out[p] = v
    return out


_CMD = [sys.executable, "-m", "lockgate", "stream", "run", "events", "--until-idle"]


def _run_cli(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_CMD, "--debug", "-p", str(root)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_kafka_kill_9_at_several_points(tmp_path: Path, kafka: str) -> None:
    """A consumer killed (kill -9, from inside: LOCKGATE_CRASH_AT) at several crash points —
    twice in a row on the same table — then run to the end: the table holds each distinct
    valid event once, the DLQ each invalid message once, no raw e-mail address; the
    positions of all partitions equal the topic's ends."""
    topic0 = "lg-" + uuid.uuid4().hex[:10]
    records, valid, n_bad = workload(7)
    produce(kafka, topic0, records)
    root0 = write_project(tmp_path / "p0", [kafka_stream(kafka, topic0)])
    log = tmp_path / "points.log"
    env = {**os.environ, "LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)}
    first = _run_cli(root0, env)
    assert first.returncode == 0, first.stderr[-2000:]
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert any("committed, not acknowledged" in p for p in points)
    assert any("events__dlq" in p for p in points) and any("events:" in p for p in points)
    # batch boundaries vary from run to run (what a fetch returns): early points only
    picks = [n for n in (2, 4, 5, 10, 14) if n <= len(points) * 0.6]
    assert len(picks) >= 4, points
    for n in picks:
        topic = f"{topic0}-{n}"
        produce(kafka, topic, records)
        root = write_project(tmp_path / f"p{n}", [kafka_stream(kafka, topic)])
        crashed = _run_cli(root, {**os.environ, "LOCKGATE_CRASH_AT": str(n)})
        assert crashed.returncode == -9, (n, points[n - 1], crashed.stderr[-2000:])
        # killed again at the restart's third point (if that much is left to do)
        again = _run_cli(root, {**os.environ, "LOCKGATE_CRASH_AT": "3"})
        assert again.returncode in (-9, 0), (n, again.stderr[-2000:])
        # the last run in this process: it starts from the table and the group only
        done = run_stream(load_project(root), "events", until_idle=True)
        assert done.counts.reconciles, (n, points[n - 1])
        store = store_for("delta", root / "warehouse")
        # every partition's position is the topic's end: nothing would be delivered again
        assert _positions(store, topic) == _ends(kafka, topic), (n, points[n - 1])
        events = store.read("events")
        assert sorted(events.column("event_id").to_pylist()) == valid, (n, points[n - 1])
        dlq = store.read("events__dlq")
        assert dlq.num_rows == n_bad, (n, points[n - 1], dlq.column("reason").to_pylist())
        assert len(set(dlq.column("offset").to_pylist())) == n_bad
        assert not any("@" in e for e in events.column("email").to_pylist())


def test_kafka_rebalance_neither_loses_nor_duplicates(
    tmp_path: Path, kafka: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another member joins the group while the stream runs (partitions revoked, a subset
    assigned back), more events arrive, the member leaves (all partitions assigned again,
    each sought to the table's position): every event is in the table exactly once."""
    import logging
    import threading

    from confluent_kafka import Consumer

    caplog.set_level(logging.INFO, logger="lockgate.streams.kafka")
    topic = "lg-" + uuid.uuid4().hex[:10]
    produce(kafka, topic, [(f"k{i}".encode(), event(i)) for i in range(200)])
    root = write_project(tmp_path, [kafka_stream(kafka, topic, batch={"max_events": 25})])
    published = {"n": 0}
    cond = threading.Condition()
    stop = threading.Event()

    def on_batch(b: Any) -> None:
        with cond:
            published["n"] += b.counts.published
            cond.notify_all()

    def wait_for(pred: Any) -> None:
        with cond:
            assert cond.wait_for(pred, timeout=180), published

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["report"] = run_stream(
                load_project(root), "events", on_batch=on_batch, stop=stop
            )
        except BaseException as e:  # surfaced by the assertion below
            result["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_for(lambda: published["n"] > 0)
        intruder = Consumer(
            {"bootstrap.servers": kafka, "group.id": "lg-" + topic, "log_level": 3,
             "enable.auto.commit": False, "session.timeout.ms": 3000}
        )  # fmt: skip
        got: list[Any] = []
        intruder.subscribe([topic], on_assign=lambda c, parts: got.extend(parts))
        for _ in range(600):  # poll until the group gave it partitions (bounded)
            intruder.poll(0.2)
            if got:
                break
        assert got, "the second member never got partitions"
        produce(kafka, topic, [(f"k{i}".encode(), event(i)) for i in range(200, 300)])
        intruder.close()  # leaves: its partitions go back to the stream
        wait_for(lambda: published["n"] >= 300 or "error" in result)
    finally:
        stop.set()
        worker.join(300)
    assert "error" not in result, result.get("error")
    ids = store_for("delta", root / "warehouse").read("events").column("event_id").to_pylist()
    assert sorted(ids) == sorted(f"e{i}" for i in range(300))  # all, once each
    assert result["report"].counts.reconciles
    messages = [r.getMessage() for r in caplog.records]
    assert sum("revoked" in m for m in messages) >= 2  # the join and the leave
    assert sum("assigned" in m for m in messages) >= 3


def test_no_assignment_is_an_error_not_an_idle_topic(
    kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Brokers that never answer: the fetch does not pass for "nothing to read"."""
    import socket

    from lockgate.streams.config import KafkaStreamSource
    from lockgate.streams.kafka import KafkaConsumer, KafkaSourceError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = KafkaStreamSource(type="kafka", bootstrap=f"127.0.0.1:{port}", topic="t", group="g")
    consumer = KafkaConsumer(spec, "events")
    monkeypatch.setattr(KafkaConsumer, "JOIN_WAIT", 0.3)
    try:
        consumer.seek({})
        with pytest.raises(KafkaSourceError, match="no partition assignment from group 'g'") as e:
            consumer.fetch(10, 0.1)
        assert "is Kafka running at that address?" in str(e.value)  # not "another member"
    finally:
        consumer.close()
