"""End to end on a real NATS JetStream (durable pull consumer, one ack per batch)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.service import run_stream
from tests.conftest import require_service
from tests.streams.conftest import event, stream_def, write_project


async def _setup(name: str, subject: str, payloads: list[bytes]) -> None:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[subject])
    for p in payloads:
        await js.publish(subject, p)
    await nc.close()


async def _delete(name: str) -> None:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    await nc.jetstream().delete_stream(name)
    await nc.close()


@pytest.fixture
def nats_stream() -> Iterator[str]:
    require_service("NATS", "127.0.0.1", 4222)
    name = "LGTEST_" + uuid.uuid4().hex[:12].upper()
    yield name
    asyncio.run(_delete(name))


def test_nats_end_to_end(tmp_path: Path, nats_stream: str) -> None:
    subject = nats_stream.lower() + ".events"
    payloads = [event(i) for i in range(30)] + [b"{bad", event(5)] + [event(30, amount=-2.0)]
    asyncio.run(_setup(nats_stream, subject, payloads))
    source = {"type": "nats", "stream": nats_stream, "subject": subject, "durable": "lg"}
    root = write_project(tmp_path, [stream_def(source)])
    report = run_stream(load_project(root), "events", until_idle=True)
    c = report.counts
    assert (c.read, c.published, c.dlq, c.duplicates) == (33, 30, 2, 1)
    assert c.reconciles
    store = store_for("delta", root / "warehouse")
    assert sorted(store.read("events").column("event_id").to_pylist()) == sorted(
        f"e{i}" for i in range(30)
    )
    assert store.read("events__dlq").num_rows == 2
    # everything was acknowledged: a second run reads nothing
    assert run_stream(load_project(root), "events", until_idle=True).counts.read == 0
