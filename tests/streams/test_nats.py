"""End to end on a real NATS JetStream (durable pull consumer, one ack per batch)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.errors import LockgateError
from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.service import run_stream
from tests.conftest import require_service
from tests.streams.conftest import distinct_points, event, stream_def, write_project

REPO = Path(__file__).resolve().parents[2]


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


def test_nats_envelopes_carry_many_events_per_message(tmp_path: Path, nats_stream: str) -> None:
    subject = nats_stream.lower() + ".events"
    lines = [event(i) for i in range(40)] + [b"{bad", event(7)]
    envelopes = [b"\n".join(lines[k : k + 6]) + b"\n" for k in range(0, len(lines), 6)]
    asyncio.run(_setup(nats_stream, subject, envelopes))
    source = {
        "type": "nats",
        "stream": nats_stream,
        "subject": subject,
        "durable": "lg",
        "envelope": "ndjson",
    }
    root = write_project(tmp_path, [stream_def(source, batch={"max_events": 10})])
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.dlq, c.duplicates) == (42, 40, 1, 1)
    dlq = store_for("delta", root / "warehouse").read("events__dlq").to_pylist()
    assert [d["offset"] for d in dlq] == ["7:4"]  # envelope 7 (stream seq), line 4
    assert run_stream(load_project(root), "events", until_idle=True).counts.read == 0


def _run_cli(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lockgate", "stream", "run", "events", "--until-idle", "--debug"]
    return subprocess.run(
        [*cmd, "-p", str(root)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_nats_kill_9_at_every_point_of_the_first_batches(tmp_path: Path) -> None:
    """A consumer killed at each crash point (before/after each DLQ and sink commit, and
    between commit and ack) and run again: the table holds each valid event once, the DLQ
    each invalid one, no raw PII — JetStream re-delivers from the table's position at once
    (the durable is re-created there), not after ack_wait."""
    require_service("NATS", "127.0.0.1", 4222)
    payloads = [event(i) for i in range(12)] + [event(3), b"{oops", event(40, amount=-1.0)]
    payloads += [event(i) for i in range(12, 20)] + [event(15), b""]
    valid = sorted(f"e{i}" for i in range(20))

    def project(n: int) -> tuple[Path, str]:
        name = f"LGKILL_{uuid.uuid4().hex[:10].upper()}"
        subject = name.lower() + ".events"
        asyncio.run(_setup(name, subject, payloads))
        source = {"type": "nats", "stream": name, "subject": subject, "durable": "lg"}
        return write_project(tmp_path / f"p{n}", [stream_def(source)]), name

    root, name = project(0)
    log = tmp_path / "points.log"
    env = {**os.environ, "LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)}
    try:
        assert _run_cli(root, env).returncode == 0
    finally:
        asyncio.run(_delete(name))
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert any("committed, not acknowledged" in p for p in points)
    # every distinct point of the first 8, in the first batch and in a later one, and the
    # 8th; the restart runs in this process (it starts from the table and the stream only)
    picks = distinct_points(points, 8)
    assert {points[n - 1] for n in picks} == set(points[:8])
    for n in picks:
        root, name = project(n)
        try:
            env = {**os.environ, "LOCKGATE_CRASH_AT": str(n)}
            crashed = _run_cli(root, env)
            assert crashed.returncode == -9, (n, points[n - 1], crashed.stderr[-2000:])
            done = run_stream(load_project(root), "events", until_idle=True)
            assert done.counts.reconciles, (n, points[n - 1])
        finally:
            asyncio.run(_delete(name))
        store = store_for("delta", root / "warehouse")
        events = store.read("events")
        assert sorted(events.column("event_id").to_pylist()) == valid, (n, points[n - 1])
        assert store.read("events__dlq").num_rows == 3, (n, points[n - 1])
        assert not any("@" in e for e in events.column("email").to_pylist())


def test_a_recreated_nats_stream_is_refused_not_skipped(tmp_path: Path, nats_stream: str) -> None:
    """The stream deleted and recreated under the table: its sequences restart below the
    committed position. Read on from there, its first messages would be skipped without a
    trace; the consumer refuses instead."""
    subject = nats_stream.lower() + ".events"
    asyncio.run(_setup(nats_stream, subject, [event(i) for i in range(10)]))
    source = {"type": "nats", "stream": nats_stream, "subject": subject, "durable": "lg"}
    root = write_project(tmp_path, [stream_def(source)])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 10
    asyncio.run(_delete(nats_stream))
    asyncio.run(_setup(nats_stream, subject, [event(i) for i in range(10, 14)]))  # seqs 1..4
    with pytest.raises(LockgateError, match="recreated") as e:
        run_stream(load_project(root), "events", until_idle=True)
    assert "10" in str(e.value) and "4" in str(e.value)
