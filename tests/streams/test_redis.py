"""End to end on a real Redis stream: counts reconcile, bad events in the DLQ with reasons,
duplicates across batches skipped, PII masked, and a kill -9 between commit and
acknowledgement neither loses nor duplicates an event."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.service import run_stream
from tests.streams.conftest import (
    MASK_KEY,
    distinct_points,
    event,
    publish_redis,
    stream_def,
    write_project,
)

REPO = Path(__file__).resolve().parents[2]


def _payloads() -> tuple[list[bytes], set[str], int]:
    """Events with duplicates (across batches of 7), malformed and invalid ones; returns
    them, the distinct valid event ids and the number of invalid messages."""
    out = [event(i) for i in range(40)]
    out += [event(i) for i in (3, 10, 25)]  # duplicates, later batches
    out += [b"{oops", event(50, user_id="x"), b"", event(51, amount=-1.0)]
    out += [b'{"event_id": "huge", "p": "' + b"x" * 3_000_000 + b'"}']
    out += [event(i) for i in range(40, 45)]
    valid = {f"e{i}" for i in range(45)}
    return out, valid, 5


def _tables(root: Path) -> tuple[list[str], list[str], list[str]]:
    store = store_for("delta", root / "warehouse")
    events = store.read("events")
    dlq = store.read("events__dlq")
    return (
        events.column("event_id").to_pylist(),
        events.column("email").to_pylist(),
        dlq.column("reason").to_pylist(),
    )


def test_redis_end_to_end(tmp_path: Path, redis_stream: str) -> None:
    payloads, valid, invalid = _payloads()
    publish_redis(redis_stream, payloads)
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    report = run_stream(load_project(root), "events", until_idle=True)
    c = report.counts
    assert c.read == len(payloads)
    assert c.reconciles
    assert (c.published, c.dlq, c.duplicates) == (len(valid), invalid, 3)
    ids, emails, reasons = _tables(root)
    assert sorted(ids) == sorted(valid)
    assert not any("@" in e for e in emails)  # no raw PII
    expect = hashlib.sha256((MASK_KEY + "user0@example.com").encode()).hexdigest()
    assert emails[ids.index("e0")] == expect
    assert sum(r.startswith("parse:") for r in reasons) == 2
    assert "empty message" in reasons
    assert any(r.startswith("too large") for r in reasons)
    assert any(r.startswith("checks:") and "between" in r for r in reasons)
    # a second run finds nothing new: the group acknowledged everything
    again = run_stream(load_project(root), "events", until_idle=True)
    assert again.counts.read == 0


def _run_cli(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lockgate", "stream", "run", "events", "--until-idle"]
    return subprocess.run(
        [*cmd, "-p", str(root)], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def _restart(root: Path) -> None:
    """The run after a kill, in this process: what it starts from is on disk and in the
    consumer group (the killed process is gone), so a fresh interpreter adds nothing."""
    assert run_stream(load_project(root), "events", until_idle=True).counts.reconciles


def _crash_points(tmp_path: Path, stream: str, payloads: list[bytes]) -> list[str]:
    """Every crash point one clean run reaches (LOCKGATE_CRASH_AT beyond the last)."""
    publish_redis(stream, payloads)
    root = write_project(tmp_path / "probe", [stream_def({"type": "redis", "stream": stream})])
    log = tmp_path / "points.log"
    env = {**os.environ, "LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)}
    assert _run_cli(root, env).returncode == 0
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_kill_9_at_every_point_of_the_first_batches(tmp_path: Path, redis_stream: str) -> None:
    payloads, valid, invalid = _payloads()
    points = _crash_points(tmp_path, redis_stream + "-probe", payloads)
    assert any("committed, not acknowledged" in p for p in points)
    # the first batches (commit, commit, ack): every distinct point, in the first batch and
    # in a later one (points 7-12 repeat 4-6 on batches 3 and 4; the last is kept too)
    first = points[: min(len(points), 12)]
    picks = distinct_points(points, 12)
    assert {first[n - 1] for n in picks} == set(first)
    for n in picks:
        stream = f"{redis_stream}-{n}"
        publish_redis(stream, payloads)
        root = write_project(tmp_path / f"p{n}", [stream_def({"type": "redis", "stream": stream})])
        env = {**os.environ, "LOCKGATE_CRASH_AT": str(n)}
        crashed = _run_cli(root, env)
        assert crashed.returncode == -9, (n, first[n - 1], crashed.stderr[-2000:])
        _restart(root)
        ids, emails, reasons = _tables(root)
        assert sorted(ids) == sorted(valid), (n, first[n - 1])  # no loss, no duplicate
        assert len(reasons) == invalid, (n, first[n - 1], reasons)
        assert not any("@" in e for e in emails)


@pytest.mark.slow
def test_kill_9_around_the_deferred_dlq_commit(tmp_path: Path, redis_stream: str) -> None:
    """DLQ rows committed every 2 batches (logged until then): killed at every point of
    the DLQ's deferral — rows logged, sink committed with rows pending, the DLQ commit — and
    at the point after each, a restart ends with the table = the distinct valid events and
    the DLQ = the invalid messages, each exactly once."""
    payloads, valid, invalid = _payloads()
    over = {"sink": {"dataset": "events", "dlq_commit_every": 2}}
    probe = write_project(
        tmp_path / "probe",
        [stream_def({"type": "redis", "stream": redis_stream + "-probe"}, **over)],
    )
    publish_redis(redis_stream + "-probe", payloads)
    log = tmp_path / "points.log"
    env = {**os.environ, "LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)}
    assert _run_cli(probe, env).returncode == 0
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    deferred = [i for i, p in enumerate(points, 1) if "deferred DLQ" in p]
    assert deferred and any("DLQ rows logged" in p for p in points)
    # a deferred DLQ commit happens between batches, not only at the end
    assert deferred[0] < max(i for i, p in enumerate(points, 1) if "not acknowledged" in p)
    todo = sorted({n + k for n in deferred for k in (0, 1, 2)} | {deferred[0] - 3})
    for n in todo:
        stream = f"{redis_stream}-{n}"
        publish_redis(stream, payloads)
        root = write_project(
            tmp_path / f"p{n}", [stream_def({"type": "redis", "stream": stream}, **over)]
        )
        env = {**os.environ, "LOCKGATE_CRASH_AT": str(n)}
        crashed = _run_cli(root, env)
        assert crashed.returncode == -9, (n, points[n - 1], crashed.stderr[-2000:])
        _restart(root)
        ids, emails, reasons = _tables(root)
        assert sorted(ids) == sorted(valid), (n, points[n - 1])  # no loss, no duplicate
        assert len(reasons) == invalid, (n, points[n - 1], reasons)
        assert not any("@" in e for e in emails)


def test_a_stream_trimmed_below_the_committed_position(tmp_path: Path, redis_stream: str) -> None:
    """XTRIM removing entries the table already holds (and more than it: the whole stream)
    neither loses nor re-reads anything: the group is sought to the table's position."""
    import redis

    publish_redis(redis_stream, [event(i) for i in range(20)])
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 20
    client = redis.Redis()
    client.xtrim(redis_stream, maxlen=5, approximate=False)  # 15 committed entries gone
    publish_redis(redis_stream, [event(i) for i in range(20, 30)])
    again = run_stream(load_project(root), "events", until_idle=True)
    assert (again.counts.read, again.counts.published) == (10, 10)
    client.xtrim(redis_stream, maxlen=0, approximate=False)  # everything gone
    publish_redis(redis_stream, [event(i) for i in range(30, 33)])
    third = run_stream(load_project(root), "events", until_idle=True)
    client.close()
    assert (third.counts.read, third.counts.published) == (3, 3)
    ids = store_for("delta", root / "warehouse").read("events").column("event_id").to_pylist()
    assert sorted(ids) == sorted(f"e{i}" for i in range(33))


@pytest.mark.slow
def test_kill_9_after_the_deferred_dlq_commit_then_two_restarts(
    tmp_path: Path, redis_stream: str
) -> None:
    """Killed (kill -9) right after a deferred DLQ commit landed, before its log files are
    removed; then two restarts changing nothing: each DLQ row once, the log emptied."""
    payloads, valid, invalid = _payloads()
    over = {"sink": {"dataset": "events", "dlq_commit_every": 2}}
    publish_redis(redis_stream, payloads)
    root = write_project(
        tmp_path / "p", [stream_def({"type": "redis", "stream": redis_stream}, **over)]
    )
    probe = write_project(
        tmp_path / "probe",
        [stream_def({"type": "redis", "stream": redis_stream + "-probe"}, **over)],
    )
    publish_redis(redis_stream + "-probe", payloads)
    log = tmp_path / "points.log"
    env = {**os.environ, "LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)}
    assert _run_cli(probe, env).returncode == 0
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    n = next(i for i, p in enumerate(points, 1) if p.startswith("events__dlq: committed"))
    crashed = _run_cli(root, {**os.environ, "LOCKGATE_CRASH_AT": str(n)})
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    logdir = root / "warehouse" / ".lockgate_streams" / "events" / "dlq"
    assert list(logdir.glob("*.arrow"))  # the DLQ commit landed, its log files did not go
    for _ in range(2):
        _restart(root)
        ids, emails, reasons = _tables(root)
        assert sorted(ids) == sorted(valid)
        assert len(reasons) == invalid, reasons
        assert not any("@" in e for e in emails)
    assert not list(logdir.iterdir())


def test_a_recreated_redis_stream_with_lower_ids_is_refused_not_skipped(
    tmp_path: Path, redis_stream: str
) -> None:
    """The stream deleted and recreated with explicit ids below the position the table holds
    (ids restart): read on from that position its entries would be skipped without a trace
    (the group's cursor is set past them); the consumer refuses instead. New entries with
    the usual time-based ids are above the position and read as ever."""
    import redis

    from lockgate.errors import LockgateError

    publish_redis(redis_stream, [event(i) for i in range(10)])
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 10
    client = redis.Redis()
    client.delete(redis_stream)
    for i in range(4):
        client.xadd(redis_stream, {"data": event(10 + i)}, id=f"1-{i + 1}")
    with pytest.raises(LockgateError, match="recreated"):
        run_stream(load_project(root), "events", until_idle=True)
    client.delete(redis_stream)
    publish_redis(redis_stream, [event(i) for i in range(20, 23)])  # time-based ids again
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 3
    client.close()


@pytest.mark.slow
def test_kill_9_between_the_read_ahead_and_its_commit(tmp_path: Path, redis_stream: str) -> None:
    """The I/O thread fetched and parsed the next batch (Redis moved the group past it:
    NOACK) while this one committed: killed there — and at the point after — a restart
    reads it again from the table's position; nothing lost, nothing twice."""
    payloads, valid, invalid = _payloads()
    points = _crash_points(tmp_path, redis_stream + "-probe", payloads)
    ahead = [i for i, p in enumerate(points, 1) if "read ahead, not processed" in p]
    assert len(ahead) >= 3  # one per batch
    todo = sorted({n + k for n in ahead[:3] for k in (0, 1)} | {ahead[-1]})
    for n in todo:
        stream = f"{redis_stream}-{n}"
        publish_redis(stream, payloads)
        root = write_project(tmp_path / f"p{n}", [stream_def({"type": "redis", "stream": stream})])
        env = {**os.environ, "LOCKGATE_CRASH_AT": str(n)}
        crashed = _run_cli(root, env)
        assert crashed.returncode == -9, (n, points[n - 1], crashed.stderr[-2000:])
        env.pop("LOCKGATE_CRASH_AT")
        done = _run_cli(root, env)
        assert done.returncode == 0, done.stderr[-2000:]
        ids, emails, reasons = _tables(root)
        assert sorted(ids) == sorted(valid), (n, points[n - 1])  # no loss, no duplicate
        assert len(reasons) == invalid, (n, points[n - 1], reasons)
        assert not any("@" in e for e in emails)


def test_the_lua_read_gives_what_xreadgroup_gives(redis_stream: str) -> None:
    """The script's reshaped reply and the plain XREADGROUP reply decode to the same batch:
    payloads (our field; b"" when an entry lacks it), ids and seqs — also when scripting is
    refused (the consumer falls back to XREADGROUP)."""
    import redis

    from lockgate.streams.config import RedisStreamSource
    from lockgate.streams.sources import RedisConsumer

    client = redis.Redis()
    client.xadd(redis_stream, {"data": event(1)})
    client.xadd(redis_stream, {"other": b"x", "data": b"{oops"})
    client.xadd(redis_stream, {"other": b"no data field"})
    client.xadd(redis_stream, {"data": b"two words \n and a newline"})
    client.close()

    def read(script: bool, refused: bool = False) -> tuple[list[bytes], list[str], list[int]]:
        c = RedisConsumer(RedisStreamSource(type="redis", stream=redis_stream))
        try:
            if not script:
                c._script = None
            elif refused:

                def refuse(**_: object) -> None:
                    raise redis.ResponseError("ERR unknown command 'EVALSHA'")

                c._script = refuse
            c.seek({0: -1})
            b = c.fetch(10, 0.05)
            assert not len(c.fetch(10, 0.05))
            return list(b.payloads), b.offsets.to_pylist(), b.seqs.to_pylist()
        finally:
            c.close()

    plain = read(script=False)
    assert plain[0] == [event(1), b"{oops", b"", b"two words \n and a newline"]
    assert read(script=True) == plain
    assert read(script=True, refused=True) == plain
