"""The project lock lease, on SQLite and PostgreSQL, with real threads and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import lockgate
from lockgate.errors import LockHeld
from lockgate.state import LeaseLost, StateStore
from lockgate.state import tables as t
from lockgate.state.lock import HOST

CHILD = """
import sys, time
from lockgate.state import StateStore
store = StateStore.open(sys.argv[1])
lease = store.lock("p", ttl_s=float(sys.argv[2]))
run = store.start_run("p")
print("locked", flush=True)
deadline = time.monotonic() + 30
while not lease.lost and time.monotonic() < deadline:
    time.sleep(0.05)
print("lost" if lease.lost else "timeout", flush=True)
"""


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _spawn(procs: list[subprocess.Popen[str]], url: str, ttl: float) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(ttl)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(lockgate.__file__).parents[1])},
    )
    procs.append(p)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "locked"
    return p


def _wait_until(cond: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``cond`` (a generous timeout: a safety net on a busy machine, never a race)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _lease_expired(store: StateStore) -> bool:
    info = store.lock_info("p")
    return info is None or datetime.now(UTC) > info.expires_at


def _foreign_lock(store: StateStore, expires_in: float, host: str = "other-host") -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(t.locks).values(
                project="p",
                holder="f" * 32,
                pid=4242,
                host=host,
                acquired_at=now,
                expires_at=now + timedelta(seconds=expires_in),
                heartbeat_at=now,
            )
        )


def test_second_acquirer_is_refused_until_release(store: StateStore, state_url: str) -> None:
    other = StateStore.open(state_url)
    try:
        with store.lock("p", ttl_s=30) as lease:
            run = store.start_run("p")
            assert not lease.lost
            info = store.lock_info("p")
            assert info is not None and (info.holder, info.pid) == (lease.holder, os.getpid())
            with pytest.raises(LockHeld) as ei:
                other.lock("p")
            msg = str(ei.value)
            assert f"pid {os.getpid()}" in msg and HOST in msg
            assert run.run_id[:12] in msg and "expires at" in msg
            assert "taken over" in msg  # the hint about dead holders
            assert ei.value.exit_code == 3
            with other.lock("another-project", ttl_s=30):  # locks are per project
                pass
        assert store.lock_info("p") is None
        with other.lock("p", ttl_s=30) as lease2:
            assert not lease2.lost
    finally:
        other.close()


def _expire_lock(store: StateStore) -> None:
    """The lease's time runs out (no waiting: its expiry is moved into the past)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.locks).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_takeover_after_expiry(store: StateStore) -> None:
    _foreign_lock(store, expires_in=3600)
    with pytest.raises(LockHeld, match="other-host"):
        store.lock("p")
    _expire_lock(store)
    with store.lock("p", ttl_s=30) as lease:
        info = store.lock_info("p")
        assert info is not None and info.holder == lease.holder and info.host == HOST


def test_heartbeat_keeps_a_live_lease(store: StateStore) -> None:
    with store.lock("p", ttl_s=1.2) as lease:
        first = lease.expires_at

        def renewed() -> bool:
            info = store.lock_info("p")
            return info is not None and info.expires_at > first

        assert _wait_until(renewed)  # the heartbeat thread moved the expiry forward
        info = store.lock_info("p")
        assert info is not None and info.holder == lease.holder
        lease.check()  # still ours (check renews it once more)
        with pytest.raises(LockHeld):
            store.lock("p")


def test_check_sees_a_takeover_before_the_next_heartbeat(store: StateStore) -> None:
    """A holder paused past its expiry whose lock another run took over must learn it at
    ``check()`` (right before a commit), not up to ttl/3 later from its heartbeat."""
    with store.lock("p", ttl_s=3600) as lease:  # the heartbeat would not run for 20 minutes
        lease.check()
        _expire_lock(store)
        other = store.lock("p", ttl_s=30)  # the takeover
        try:
            assert not lease._lost  # the heartbeat has not noticed
            with pytest.raises(LeaseLost, match="taken over by another run"):
                lease.check()
            assert lease.lost
        finally:
            other.release()


def test_check_renews_a_lease_nobody_took(store: StateStore) -> None:
    """Past its expiry but still the row's holder (nobody took over): check() renews it."""
    with store.lock("p", ttl_s=3600) as lease:
        _expire_lock(store)
        lease._expires_at = datetime.now(UTC) - timedelta(seconds=1)
        assert lease.lost
        lease.check()
        assert not lease.lost
        info = store.lock_info("p")
        assert info is not None and info.holder == lease.holder
        assert info.expires_at > datetime.now(UTC)


def test_lease_lost_when_taken_over(store: StateStore) -> None:
    lease = store.lock("p", ttl_s=0.9)
    try:
        with store.engine.begin() as conn:  # someone else took it over
            conn.execute(sa.update(t.locks).where(t.locks.c.project == "p").values(holder="x" * 32))
        assert _wait_until(lambda: lease.lost)
        with pytest.raises(LeaseLost, match="lost"):
            lease.check()
    finally:
        lease.release()
    info = store.lock_info("p")
    assert info is not None and info.holder == "x" * 32  # release leaves others' lock alone


def test_dead_holder_on_this_host_is_taken_over_at_once(
    store: StateStore, state_url: str, child: list[subprocess.Popen[str]]
) -> None:
    proc = _spawn(child, state_url, ttl=60)
    with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
        store.lock("p")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with store.lock("p", ttl_s=30) as lease:  # lease still had ~60 s to go
        info = store.lock_info("p")
        assert info is not None and info.holder == lease.holder
        assert store.mark_stale_runs("p") == [store.list_runs("p")[0].run_id]


def test_paused_holder_loses_its_lease(
    store: StateStore, state_url: str, child: list[subprocess.Popen[str]]
) -> None:
    proc = _spawn(child, state_url, ttl=1.0)
    proc.send_signal(signal.SIGSTOP)  # alive but silent: its lease runs out
    try:
        assert _wait_until(lambda: _lease_expired(store))
        lease = store.lock("p", ttl_s=30)
    finally:
        proc.send_signal(signal.SIGCONT)
    with lease:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "lost"
        assert not lease.lost


def test_concurrent_acquirers_exactly_one_wins(state_url: str) -> None:
    n = 6
    stores = [StateStore.open(state_url) for _ in range(3)]
    barrier = threading.Barrier(n)
    done = threading.Barrier(n)
    outcomes: list[str] = []
    guard = threading.Lock()

    def contender(i: int) -> None:
        store = stores[i % len(stores)]
        barrier.wait()
        try:
            lease = store.lock("p", ttl_s=30)
        except LockHeld:
            with guard:
                outcomes.append("held")
            done.wait()
            return
        except BaseException as e:
            with guard:
                outcomes.append(f"error: {e!r}")
            done.wait()
            return
        with guard:
            outcomes.append("won")
        done.wait()  # keep holding until everybody has tried
        lease.release()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    for s in stores:
        s.close()
    assert sorted(outcomes) == ["held"] * (n - 1) + ["won"]


def test_invalid_ttl(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.lock("p", ttl_s=0)
