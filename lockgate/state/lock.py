"""The project lock: a lease row in ``lockgate_locks``, renewed by a heartbeat thread.

One run per project at a time. Acquiring is a compare-and-set that is safe on SQLite and
PostgreSQL under concurrency:

1. ``INSERT … ON CONFLICT DO NOTHING`` — wins if nobody holds the lock;
2. otherwise read the row; if its lease expired, or its holder ran on *this* host and that
   process is gone, ``UPDATE … WHERE holder = <the holder we read> AND (expires_at < now |
   pid = <the dead pid>)`` — exactly one concurrent taker sees one row updated;
3. otherwise raise :class:`LockHeld` naming the holder.

A live holder renews its lease every ``ttl/3`` seconds. If a renewal finds the row gone or
owned by someone else, the lease is *lost*: :attr:`Lease.lost` becomes true (and an error is
logged) so the run loop can stop before it commits anything.

Lease times come from the clocks of the processes involved (SQLite has no server clock):
hosts sharing a PostgreSQL state store should run NTP; ``ttl_s`` must exceed the skew.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lockgate.state.errors import LeaseLost, LockHeld
from lockgate.state.records import LockInfo, RunStatus
from lockgate.state.tables import locks, runs

log = logging.getLogger(__name__)

HOST = socket.gethostname()

Begin = Callable[[], AbstractContextManager[Connection]]


def now_utc() -> datetime:
    return datetime.now(UTC)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid runs on this host (zombies count as dead)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # "pid (comm) state …": comm may contain spaces/parens, so split at the last ')'
            state = f.read().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def lock_info(conn: Connection, project: str) -> LockInfo | None:
    row = conn.execute(sa.select(locks).where(locks.c.project == project)).mappings().first()
    if row is None:
        return None
    return LockInfo(
        project=row["project"],
        holder=row["holder"],
        pid=row["pid"],
        host=row["host"],
        acquired_at=row["acquired_at"],
        expires_at=row["expires_at"],
        heartbeat_at=row["heartbeat_at"],
    )


def _insert_ignore(conn: Connection, values: dict[str, Any]) -> bool:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(locks).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(locks).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: drivers need not report a rowcount for INSERT
    return conn.execute(stmt.returning(locks.c.holder)).first() is not None


def _held_message(conn: Connection, info: LockInfo, now: datetime) -> LockHeld:
    run = conn.execute(
        sa.select(runs.c.run_id, runs.c.started_at)
        .where(
            runs.c.project == info.project,
            runs.c.status == RunStatus.RUNNING.value,
            runs.c.pid == info.pid,
            runs.c.host == info.host,
        )
        .order_by(runs.c.seq.desc())
        .limit(1)
    ).first()
    who = f"pid {info.pid} on host {info.host!r}"
    if run is not None:
        since = f"run {run.run_id[:12]} started {run.started_at:%Y-%m-%d %H:%M:%S} UTC"
    else:
        since = f"lock taken {info.acquired_at:%Y-%m-%d %H:%M:%S} UTC, no run started yet"
    left = max(0.0, (info.expires_at - now).total_seconds())
    expires = f"{info.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    return LockHeld(
        f"project {info.project!r} is locked by another lockgate run: {who} ({since}); "
        f"its lease expires at {expires} (in {left:.0f} s) unless renewed",
        hint="wait for that run to finish. If that process is dead, its lock is taken over "
        f"automatically once the lease expires (at {expires}), or at once from the same host",
    )


def try_acquire(conn: Connection, project: str, holder: str, ttl_s: float) -> datetime:
    """Take the lock in the current transaction or raise :class:`LockHeld`.
    Returns the lease expiry."""
    pid = os.getpid()
    for _ in range(5):  # a concurrent release/takeover between our statements: look again
        now = now_utc()
        expires = now + timedelta(seconds=ttl_s)
        values = {
            "project": project,
            "holder": holder,
            "pid": pid,
            "host": HOST,
            "acquired_at": now,
            "expires_at": expires,
            "heartbeat_at": now,
        }
        if _insert_ignore(conn, values):
            return expires
        info = lock_info(conn, project)
        if info is None:
            continue
        if info.expires_at < now:
            why = f"its lease expired at {info.expires_at:%H:%M:%S} UTC"
            cond = locks.c.expires_at < now
        elif info.host == HOST and not pid_alive(info.pid):
            why = f"process {info.pid} on this host is gone"
            cond = locks.c.pid == info.pid
        else:
            raise _held_message(conn, info, now)
        stmt = (
            sa.update(locks)
            .where(locks.c.project == project, locks.c.holder == info.holder, cond)
            .values(**{k: v for k, v in values.items() if k != "project"})
        )
        if conn.execute(stmt).rowcount == 1:
            log.warning(
                "took over the lock of project %r from pid %s on host %r: %s",
                project,
                info.pid,
                info.host,
                why,
            )
            return expires
    info = lock_info(conn, project)
    if info is not None:
        raise _held_message(conn, info, now_utc())
    raise LockHeld(
        f"could not acquire the lock of project {project!r}: it changed hands repeatedly"
    )


class Lease:
    """A held project lock. Use as a context manager (``StateStore.lock``) or call
    :meth:`release`. Check :attr:`lost` (or call :meth:`check`) before committing."""

    def __init__(self, begin: Begin, project: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self._begin = begin
        self.project = project
        self.ttl_s = float(ttl_s)
        self.holder = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = HOST
        self.acquired_at = now_utc()
        self._expires_at = self.acquired_at
        self._lost = False
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- state ------------------------------------------------------------------------
    @property
    def expires_at(self) -> datetime:
        """When the lease runs out unless renewed (as of the last successful renewal)."""
        return self._expires_at

    @property
    def lost(self) -> bool:
        """True once another process took the lock over, or while our lease is past its
        expiry because renewals failed (then anyone may take it). Do not commit when true."""
        return self._lost or now_utc() >= self._expires_at

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is still ours, *as the state store says
        now*: call it right before committing anything.

        It renews the lease (one compare-and-set on the lock row), so a process that was paused
        past its expiry and whose lock another run took over finds out here — not at the next
        heartbeat. When the store cannot be reached, the local expiry decides (see
        :attr:`lost`)."""
        if not self._lost and not self._released:
            try:
                self.renew()
            except Exception as e:  # unreachable store: fall back to the local expiry
                log.warning("could not verify the lock lease of project %r: %s", self.project, e)
        if self._lost:
            raise LeaseLost(
                f"lost the lock of project {self.project!r}: it was taken over by another "
                "run while this run held it (this one was paused or cut off past its lease's "
                "expiry); stopping before committing anything more",
                hint="the other run owns the project now; run again once it has finished. "
                "If runs are paused for long (swap, suspended VM), raise the lock ttl",
            )
        if self.lost:
            raise LeaseLost(
                f"the lock lease of project {self.project!r} expired at "
                f"{self._expires_at:%H:%M:%S} UTC and could not be renewed: stopping before "
                "committing anything more",
                hint="a renewal of the lease failed for longer than its ttl: check the state "
                "store's availability, or raise the lock ttl",
            )

    # --- lifecycle --------------------------------------------------------------------
    def _acquire(self) -> None:
        with self._begin() as conn:
            self._expires_at = try_acquire(conn, self.project, self.holder, self.ttl_s)
        self.acquired_at = now_utc()
        self._thread = threading.Thread(
            target=self._heartbeat, name=f"lockgate-lease-{self.project}", daemon=True
        )
        self._thread.start()

    def renew(self) -> bool:
        """Extend the lease once; False (and :attr:`lost` set) if someone else holds it."""
        now = now_utc()
        expires = now + timedelta(seconds=self.ttl_s)
        with self._begin() as conn:
            n = conn.execute(
                sa.update(locks)
                .where(locks.c.project == self.project, locks.c.holder == self.holder)
                .values(heartbeat_at=now, expires_at=expires)
            ).rowcount
        if n == 1:
            self._expires_at = expires
            return True
        self._lost = True
        log.error(
            "lost the lock of project %r: another process took it over after our lease "
            "expired; this run must not commit anything more",
            self.project,
        )
        return False

    def _heartbeat(self) -> None:
        interval = self.ttl_s / 3.0
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception as e:  # keep trying: a blip must not end the run
                log.warning("could not renew the lock lease of project %r: %s", self.project, e)

    def release(self) -> None:
        """Stop the heartbeat and delete our lock row (if it is still ours)."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(5.0, self.ttl_s))
        try:
            with self._begin() as conn:
                conn.execute(
                    sa.delete(locks).where(
                        locks.c.project == self.project, locks.c.holder == self.holder
                    )
                )
        except Exception as e:
            log.warning(
                "could not release the lock of project %r (it expires by itself at %s): %s",
                self.project,
                self._expires_at,
                e,
            )

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"Lease(project={self.project!r}, holder={self.holder[:8]}, "
            f"expires_at={self._expires_at.isoformat()}, lost={self._lost})"
        )


def acquire(begin: Begin, project: str, ttl_s: float = 30.0) -> Lease:
    """Acquire the lock of ``project`` (raises :class:`LockHeld`) and start its heartbeat."""
    lease = Lease(begin, project, ttl_s)
    lease._acquire()
    log.debug("acquired the lock of project %r (holder %s)", project, lease.holder)
    return lease
