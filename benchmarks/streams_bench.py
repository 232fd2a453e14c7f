"""Streams (#14) throughput: the pipeline alone (parse → dedup → checks → mask → commit, from
an in-memory consumer) and end to end from a real Redis stream (XREADGROUP COUNT batches).

    .venv/bin/python benchmarks/streams_bench.py --events 1000000 --batch 50000

Prints events/s and batch latency percentiles; 1% duplicates, 0.1% malformed messages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.storage.base import CommitTag, TableStore, TableWrite
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import StreamReport, StreamRunner
from lockgate.streams.sources import (
    Batch,
    NatsConsumer,
    RedisConsumer,
    StreamConsumer,
    empty_batch,
)

PREFETCH = True
COLUMNS = {"event_id": "VARCHAR", "user_id": "BIGINT", "email": "VARCHAR", "amount": "DOUBLE"}


def payloads(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        if i % 1000 == 999:
            out.append(b"{malformed")
            continue
        j = i - 1 if i % 100 == 50 else i  # 1% duplicates of the previous event
        e = {"event_id": f"e{j}", "user_id": j, "email": f"u{j}@example.com", "amount": j % 997}
        out.append(json.dumps(e).encode())
    return out


class ListConsumer:
    """An in-memory broker: measures the pipeline without the network."""

    def __init__(self, data: Sequence[bytes]) -> None:
        self.data, self.pos = data, 0

    PARTITIONED = False

    def partitions(self) -> list[int]:
        return [0]

    def position_id(self, partition: int) -> str:
        raise NotImplementedError

    def seek(self, committed: dict[int, int]) -> None:
        self.pos = max(committed.get(0, -1), 0)  # seq i + 1 is message i

    def fetch(self, max_events: int, wait_seconds: float) -> Batch:
        start, self.pos = self.pos, min(self.pos + max_events, len(self.data))
        if start == self.pos:
            return empty_batch()
        seqs = pa.array(range(start + 1, self.pos + 1), pa.int64())
        return Batch(self.data[start : self.pos], seqs.cast(pa.string()), seqs)

    def ack(self, batch: Batch) -> None:
        pass

    def lag(self) -> int | None:
        return len(self.data) - self.pos

    def close(self) -> None:
        pass


#: ``--enrich``: a reference dataset of this many users (ids 0..n-1), joined on user_id
CUSTOMERS = 100_000


def spec(source: dict[str, object], batch: int, *, enrich: bool = False) -> StreamSpec:
    extra: dict[str, object] = {}
    if enrich:  # every event's user_id below CUSTOMERS matches; the rest are kept unmatched
        extra["enrich"] = [
            {"dataset": "customers", "on": "user_id", "columns": ["country", "segment"]}
        ]
    return StreamSpec.model_validate(
        {
            **extra,
            "name": "bench",
            "source": source,
            "columns": COLUMNS,
            "dedup": {"key": ["event_id"], "window": "10m"},
            "mask": {"email": "hash"},
            "checks": [{"type": "between", "column": "amount", "min": 0, "max": 1000}],
            "sink": {"dataset": "bench"},
            "batch": {"max_events": batch, "max_latency": 0.5, "prefetch": PREFETCH},
        }
    )


def run(s: StreamSpec, consumer: StreamConsumer) -> tuple[StreamReport, float]:
    """The report and the CPU seconds of this process (all threads) during the run."""
    with tempfile.TemporaryDirectory() as wh, engine_for() as con:
        store = store_for("delta", Path(wh))
        if s.enrich:
            customers(store)
        runner = StreamRunner(s, consumer, store, con)
        cpu = time.process_time()
        try:
            report = runner.run(until_idle=True)
        finally:
            consumer.close()
        return report, time.process_time() - cpu


def customers(store: TableStore) -> None:
    """The ``--enrich`` reference table: ``CUSTOMERS`` users with a country and a segment."""
    n = CUSTOMERS
    ids = pa.array(range(n), pa.int64())
    countries = pa.array(["DE", "FR", "NL", "PL", "SE", "IT", "ES"]).take(
        pa.array([i % 7 for i in range(n)])
    )
    segments = pa.array(["retail", "pro", "vip"]).take(pa.array([i % 3 for i in range(n)]))
    t = pa.table({"user_id": ids, "country": countries, "segment": segments})
    store.publish(
        "customers", t.to_reader(), write=TableWrite("overwrite"), tag=CommitTag("bench", 1, "1")
    )


def show(label: str, result: tuple[StreamReport, float]) -> None:
    r, cpu = result
    lat = sorted(r.batch_seconds)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    # fetch wait + processing: the first batch's wait is the group join / connection
    cyc = sorted(f + b for f, b in zip(r.fetch_seconds[1:], r.batch_seconds[1:], strict=True))
    c99 = cyc[min(len(cyc) - 1, int(len(cyc) * 0.99))] if cyc else 0.0
    late = sorted(r.latency_seconds[1:]) or [0.0]
    l99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    c = r.counts
    print(
        f"{label}: {c.read} events in {r.seconds:.2f} s = {r.events_per_second:,.0f} events/s; "
        f"{c.read / cpu:,.0f} events per CPU-second (process, all threads); "
        f"{c.read / max(r.seconds - r.fetch_seconds[0], 1e-9):,.0f} events/s once the first "
        f"batch came (no connect/group join); "
        f"{r.batches} batches, latency p50 {statistics.median(lat) * 1000:.0f} ms "
        f"p99 {p99 * 1000:.0f} ms (with the fetch: p99 {c99 * 1000:.0f} ms; from fetched to "
        f"committed, parse ahead included: p50 {statistics.median(late) * 1000:.0f} "
        f"p99 {l99 * 1000:.0f} ms); "
        f"published {c.published}, dlq {c.dlq}, "
        f"duplicates {c.duplicates}, reconciles {c.reconciles}"
    )
    print("  phases (s):", ", ".join(f"{k} {v:.2f}" for k, v in r.phases.items()))
    slow = sorted(range(len(r.batch_seconds)), key=r.batch_seconds.__getitem__)[-3:][::-1]
    print(
        "  slowest batches (#: processing ms):",
        ", ".join(f"#{i + 1}: {r.batch_seconds[i] * 1000:.0f}" for i in slow),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--nats", action="store_true", help="also NATS JetStream, NDJSON envelopes")
    ap.add_argument("--envelope", type=int, default=500, help="events per NATS envelope")
    ap.add_argument("--kafka", action="store_true", help="also Kafka (librdkafka mock cluster)")
    ap.add_argument("--partitions", type=int, default=4, help="(mock cluster: always 4)")
    ap.add_argument("--no-prefetch", action="store_true", help="batch.prefetch: false")
    ap.add_argument(
        "--enrich", action="store_true", help="also enrich from a 100k-row customers table"
    )
    a = ap.parse_args()
    global PREFETCH
    PREFETCH = not a.no_prefetch
    os.environ.setdefault("LOCKGATE_MASK_KEY", "bench-key")
    data = payloads(a.events)
    show(
        "pipeline (in-memory source)",
        run(spec({"type": "redis", "stream": "x"}, a.batch, enrich=a.enrich), ListConsumer(data)),
    )
    if a.nats:
        nats_bench(data, a.batch, a.envelope)
    if a.kafka:  # the mock cluster keeps ~50k messages a partition: older ones expire
        kafka_bench(data[:200_000], a.batch, a.partitions)
    if a.skip_redis:
        return
    import redis

    name = "lg-bench-" + uuid.uuid4().hex[:8]
    client = redis.Redis()
    try:
        t0 = time.perf_counter()
        for k in range(0, len(data), 10_000):
            pipe = client.pipeline(transaction=False)
            for p in data[k : k + 10_000]:
                pipe.xadd(name, {"data": p})
            pipe.execute()
        print(f"(published {len(data)} to Redis in {time.perf_counter() - t0:.1f} s)")
        s = spec({"type": "redis", "stream": name}, a.batch, enrich=a.enrich)
        assert s.source.type == "redis"
        show("end to end from Redis Streams", run(s, RedisConsumer(s.source)))
    finally:
        client.delete(name)
        client.close()


def nats_bench(data: list[bytes], batch: int, per_envelope: int) -> None:
    import asyncio

    import nats

    name = "LGBENCH_" + uuid.uuid4().hex[:8].upper()
    subject = name.lower() + ".events"

    async def publish() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[subject])
        for k in range(0, len(data), per_envelope):
            await js.publish(subject, b"\n".join(data[k : k + per_envelope]))
        await nc.close()

    async def delete() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()

    t0 = time.perf_counter()
    asyncio.run(publish())
    print(
        f"(published {len(data)} to NATS in {per_envelope}-event envelopes in "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    try:
        src: dict[str, object] = {
            "type": "nats",
            "stream": name,
            "subject": subject,
            "envelope": "ndjson",
        }
        s = spec(src, batch)
        assert s.source.type == "nats"
        show(
            f"end to end from NATS JetStream ({per_envelope}-event envelopes)",
            run(s, NatsConsumer(s.source)),
        )
    finally:
        asyncio.run(delete())


_MOCK = """
import sys
from confluent_kafka import Producer
p = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "x", "log_level": 3})
b = p.list_topics(timeout=10).brokers.values()
print(",".join(f"{x.host}:{x.port}" for x in b), flush=True)
sys.stdin.read()  # the cluster lives until the benchmark closes our stdin
"""


def kafka_bench(data: list[bytes], batch: int, partitions: int) -> None:
    """A 3-broker librdkafka mock cluster in a child process (its CPU is not ours, like
    Redis's); the topic gets the mock's default 4 partitions on first produce."""
    import subprocess
    import sys

    from confluent_kafka import Producer

    from lockgate.streams.kafka import KafkaConsumer

    mock = subprocess.Popen(
        [sys.executable, "-c", _MOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert mock.stdout is not None
        bootstrap = mock.stdout.readline().strip()
        topic = "lg-bench-" + uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "log_level": 3})
        for i, p in enumerate(data):
            while True:
                try:
                    producer.produce(topic, value=p, key=str(i % 97).encode())
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(120)
        del producer
        print(f"(published {len(data)} to Kafka (mock) in {time.perf_counter() - t0:.1f} s)")
        src: dict[str, object] = {"type": "kafka", "bootstrap": bootstrap, "topic": topic}
        s = spec(src, batch)
        assert s.source.type == "kafka"
        show(
            f"end to end from Kafka ({partitions} partitions)",
            run(s, KafkaConsumer(s.source, s.name)),
        )
    finally:
        assert mock.stdin is not None
        mock.stdin.close()
        mock.wait(60)


if __name__ == "__main__":
    main()
