"""A consumer paused past its lease (GC, swap, SIGSTOP) while another takes the stream over:
the stale one's commits are refused (fenced), it stops without acknowledging, and the
tables end = the distinct valid events, the DLQ = the invalid ones, each exactly once.

Consumer A is the CLI in a subprocess that stops itself (SIGSTOP) at a named point
(``LOCKGATE_STOP_AT``); its lease is then expired in the state store (where it lives), B
(in this process) takes the stream over, and A is resumed (SIGCONT) from B's ``on_batch``
— every step sequenced by signals, ``waitpid`` and callbacks, none by sleeping."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.report import BatchDone
from lockgate.streams.service import run_stream, stream_lock_name
from tests.streams.conftest import event, publish_redis, stream_def, write_project

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


#: the CLI with a stream lease of ``sys.argv[1]`` seconds (the default is 30 s)
_SHORT_LEASE = """
import sys
from lockgate.state.store import StateStore
ttl = float(sys.argv.pop(1))
_lock = StateStore.lock
StateStore.lock = lambda self, project, ttl_s=30.0: _lock(self, project, ttl)
from lockgate.cli.app import main
main()
"""


def _start_stopped(
    root: Path, stop_at: str, log: Path, *args: str, ttl: float | None = None
) -> subprocess.Popen[str]:
    """The CLI consuming the stream, stopped (by itself) at the first point named ``stop_at``."""
    env = {**os.environ, "LOCKGATE_STOP_AT": stop_at, "LOCKGATE_CRASH_LOG": str(log)}
    env.pop("LOCKGATE_CRASH_AT", None)
    run = ["-m", "lockgate"] if ttl is None else ["-c", _SHORT_LEASE, str(ttl)]
    cmd = [sys.executable, *run, "stream", "run", "events", *(args or ["--until-idle"])]
    proc = subprocess.Popen(
        [*cmd, "-p", str(root)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):  # pragma: no cover - it ended before the point
        raise AssertionError(f"consumer A never reached {stop_at!r}: status {status}")
    return proc


def _expire_lease(root: Path) -> None:
    """A's lease runs out while it is stopped (its heartbeat is stopped with it)."""
    from lockgate.state.tables import locks

    project = load_project(root)
    engine = sa.create_engine(project.state_url)
    name = stream_lock_name(project.config.name, "events")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with engine.begin() as conn:
        n = conn.execute(
            sa.update(locks).where(locks.c.project == name).values(expires_at=past)
        ).rowcount
    engine.dispose()
    assert n == 1


def _resume(proc: subprocess.Popen[str]) -> tuple[int, str]:
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _tables(root: Path) -> tuple[list[str], list[bytes]]:
    store = store_for("delta", root / "warehouse")
    return (
        store.read("events").column("event_id").to_pylist(),
        store.read("events__dlq").column("payload").to_pylist(),
    )


def _with_batch(root: Path, **batch: Any) -> Any:
    project = load_project(root)
    spec = project.streams["events"]
    project.streams["events"] = spec.model_copy(
        update={"batch": spec.batch.model_copy(update=batch)}
    )
    return project


def test_a_stale_consumer_cannot_commit_after_a_takeover(tmp_path: Path, redis_stream: str) -> None:
    """A read a batch and stopped right before its sink commit (after its lease check); B
    took over with smaller batches and committed the first. A's stale commit (it would
    write events B already holds) is refused; B then commits the rest."""
    first = [event(i) for i in range(6)] + [event(90, amount=-1.0)]  # one invalid
    second = [event(i) for i in range(6, 12)] + [b"{bad"]
    publish_redis(redis_stream, first)
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    a = _start_stopped(root, "DLQ rows logged", tmp_path / "a.log")
    _expire_lease(root)
    publish_redis(redis_stream, second)
    ended: list[tuple[int, str]] = []

    def after_first(b: BatchDone) -> None:
        if not ended:
            ended.append(_resume(a))  # A resumes while B holds the stream

    report = run_stream(
        _with_batch(root, max_events=3), "events", until_idle=True, on_batch=after_first
    )
    ids, payloads = _tables(root)
    code, err = ended[0]
    assert sorted(ids) == sorted(f"e{i}" for i in range(12))  # nothing twice, nothing lost
    assert code != 0 and "fenced" in err, err[-3000:]
    assert report.counts.reconciles
    assert sorted(ids) == sorted(f"e{i}" for i in range(12))  # nothing twice, nothing lost
    assert sorted(payloads) == sorted([first[-1], second[-1]])


def test_a_stale_consumer_does_not_drop_the_dlq_log_of_the_new_one(
    tmp_path: Path, redis_stream: str
) -> None:
    """A committed a batch and stopped in its deferred DLQ commit (after its lease check);
    B took over, committed A's logged DLQ rows, then a batch of its own whose DLQ rows are
    logged, not yet committed. A resumes: its DLQ commit is refused and it leaves B's log
    alone, so after B is killed a restart still commits B's DLQ rows."""
    over = {"sink": {"dataset": "events", "dlq_commit_every": 100}}
    first = [event(i) for i in range(5)] + [event(90, amount=-1.0), b"{bad1"]
    second = [event(i) for i in range(5, 10)] + [event(91, amount=-2.0), b"{bad2"]
    publish_redis(redis_stream, first)
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream}, **over)])
    a = _start_stopped(root, "deferred DLQ rows not committed", tmp_path / "a.log")
    _expire_lease(root)
    publish_redis(redis_stream, second)
    ended: list[tuple[int, str]] = []

    def killed_after_first(b: BatchDone) -> None:
        ended.append(_resume(a))
        raise KeyboardInterrupt("B killed before its deferred DLQ commit")

    with pytest.raises(KeyboardInterrupt):
        run_stream(load_project(root), "events", until_idle=True, on_batch=killed_after_first)
    code, err = ended[0]
    report = run_stream(load_project(root), "events", until_idle=True)
    ids, payloads = _tables(root)
    assert sorted(payloads) == sorted([*first[-2:], *second[-2:]])
    assert code != 0 and "fenced" in err, err[-3000:]
    assert report.counts.reconciles
    assert sorted(ids) == sorted(f"e{i}" for i in range(10))
    assert sorted(payloads) == sorted([*first[-2:], *second[-2:]])


def _group_cursor(stream: str) -> bytes:
    import redis

    client = redis.Redis()
    try:
        (group,) = client.xinfo_groups(stream)
        return bytes(group["last-delivered-id"])
    finally:
        client.close()


def test_a_consumer_past_its_lease_reads_nothing_more(tmp_path: Path, redis_stream: str) -> None:
    """A (not ``--until-idle``) committed a batch and stopped; its lease (2 s) ran out and B
    took the stream over. Resumed, A must not read from the broker again: the group's cursor
    is shared, and what a fenced consumer reads B is never delivered (B would commit past
    it: lost). A stops at its next fetch with the lease lost; the cursor stays where B left
    it, and B's next run reads the new events."""
    publish_redis(redis_stream, [event(i) for i in range(5)])
    root = write_project(tmp_path, [stream_def({"type": "redis", "stream": redis_stream})])
    a = _start_stopped(
        root, "committed, not acknowledged", tmp_path / "a.log", "--max-seconds", "600", ttl=2.0
    )
    # A's own clock must pass its lease's expiry (as after a real pause): wait for the
    # deadline (A is stopped, nothing races), then B takes over
    from lockgate.state.tables import locks

    project = load_project(root)
    engine = sa.create_engine(project.state_url)
    with engine.connect() as conn:
        (expires,) = conn.execute(sa.select(locks.c.expires_at)).one()
    engine.dispose()
    expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)
    wait = (expires - dt.datetime.now(dt.UTC)).total_seconds() + 0.5
    if wait > 0:
        import time

        time.sleep(wait)
    assert run_stream(project, "events", until_idle=True).counts.read == 0
    cursor = _group_cursor(redis_stream)
    publish_redis(redis_stream, [event(i) for i in range(5, 9)])
    code, err = _resume(a)
    assert code != 0 and "lease" in err, err[-3000:]
    assert _group_cursor(redis_stream) == cursor  # A read nothing
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 4
    ids, _ = _tables(root)
    assert sorted(ids) == sorted(f"e{i}" for i in range(9))
