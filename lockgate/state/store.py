"""The state store: runs, steps, attempts, check results, scores, watermarks, schema
versions, profiles and the project lock, in SQLite (default) or PostgreSQL.

Typical use by the run loop::

    store = StateStore.open("sqlite:////abs/project/.lockgate/state.db")
    with store.lock("shop") as lease:
        store.mark_stale_runs("shop")
        run = store.start_run("shop", selection="orders+", args={"full_refresh": False})
        step = store.start_step(run.run_id, "shop", "orders", input_versions={"raw": 3})
        ...  # publish with run.seq as the Delta txn version, after lease.check()
        store.finish_step(step, status="success", rows_in=10, rows_out=10, output_version=4)
        store.finish_run(run.run_id, "success", summary={"published": 1})

Conventions:

* Reads return frozen dataclasses from :mod:`lockgate.state.records`; timestamps are
  timezone-aware UTC.
* Every write is its own short transaction; methods are thread-safe (one engine, pooled
  connections), so the lock heartbeat thread and the run loop can share a store.
* ``RunRecord.seq`` increases strictly across all runs in the database and is never reused:
  it is the Delta application-transaction version that makes a re-publish a no-op.
* Connection problems raise :class:`~lockgate.errors.StateStoreError` (transient) with the
  URL's password masked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, RowMapping

from lockgate.errors import UsageError
from lockgate.state import history
from lockgate.state import records as rec
from lockgate.state import tables as t
from lockgate.state._convert import (
    as_mapping,
    duration,
    finite_float,
    from_row,
    normalise_schema,
    schema_fingerprint,
    status_value,
    text_or_none,
    watermark_text,
)
from lockgate.state.engine import READ_ONLY, create_state_engine, db_errors, mask_url, parse_url
from lockgate.state.lock import HOST, Lease, acquire, lock_info, now_utc, pid_alive
from lockgate.state.migrations import migrate
from lockgate.state.projects import (
    ProjectRecord,
    get_project,
    published_anything,
    register_project,
)
from lockgate.state.records import (
    LockInfo,
    ProfileRecord,
    RunRecord,
    RunStatus,
    StepStatus,
    Watermark,
)

log = logging.getLogger(__name__)


class StateStore:
    """Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self._url = url
        # steps of a run write from several threads: SQLite takes one writer at a time, and
        # a writer queued on this lock starts as soon as the other commits, where one queued
        # on SQLite's busy handler sleeps in steps of up to 100 ms
        self._write_lock = threading.RLock() if url.get_backend_name() == "sqlite" else None

    # --- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, url: str) -> StateStore:
        """Connect to ``url`` (``sqlite:////abs/path.db``, ``postgresql://…``,
        ``postgresql+psycopg://…``), create/upgrade the schema, and return the store.

        Raises :class:`StateStoreError` (transient) when the database cannot be reached and
        :class:`~lockgate.state.errors.StateSchemaError` (terminal) for an unsupported URL
        or a database written by a newer lockgate.
        """
        u = parse_url(url)
        engine = create_state_engine(u)
        try:
            with db_errors(u, "opening and migrating the state store"):
                applied = migrate(engine, mask_url(u))
        except BaseException:
            engine.dispose()
            raise
        if applied:
            log.info("state store %s: applied migrations %s", mask_url(u), ", ".join(applied))
        return cls(engine, u)

    @property
    def url(self) -> str:
        """The URL with the password masked (safe to show)."""
        return mask_url(self._url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, one thread at a time)."""
        with (
            self._write_lock or contextlib.nullcontext(),
            db_errors(self._url, "writing"),
            self.engine.begin() as conn,
        ):
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            db_errors(self._url, "reading"),
            self.engine.connect().execution_options(**{READ_ONLY: True}) as conn,
            conn.begin(),
        ):
            yield conn

    def _add(self, table: sa.Table, **values: Any) -> int:
        """Insert one row; its primary key."""
        with self._tx() as conn:
            return _pk(conn.execute(sa.insert(table).values(**values)))

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # --- runs -------------------------------------------------------------------------
    def start_run(
        self,
        project: str,
        selection: str | None = None,
        args: Mapping[str, Any] | None = None,
        *,
        min_seq: int = 1,
        project_id: str | None = None,
    ) -> RunRecord:
        """Record a new run (status ``running``, this pid and host) and allocate its seq.

        The seq is at least ``min_seq``: the run loop passes one more than the highest Delta
        transaction version its tables hold, so a new (or restored) state store over an
        existing warehouse never hands out a seq those tables would treat as already
        published."""
        run_id = uuid.uuid4().hex
        now = now_utc()
        values = {
            "run_id": run_id,
            "project": project,
            "status": RunStatus.RUNNING.value,
            "started_at": now,
            "selection": selection,
            "args": dict(args) if args is not None else None,
            "pid": os.getpid(),
            "host": HOST,
            "project_id": project_id,
        }
        with self._tx() as conn:
            if self.dialect == "sqlite":
                seq = _pk(conn.execute(sa.insert(t.run_seq)))
                if seq < min_seq:  # AUTOINCREMENT continues from the larger explicit value
                    seq = _pk(conn.execute(sa.insert(t.run_seq).values(seq=min_seq)))
                conn.execute(sa.delete(t.run_seq).where(t.run_seq.c.seq < seq))
                conn.execute(sa.insert(t.runs).values(seq=seq, **values))
            else:
                seq = int(
                    conn.execute(
                        sa.insert(t.runs).values(**values).returning(t.runs.c.seq)
                    ).scalar_one()
                )
                if seq < min_seq:
                    # move the identity sequence forward (never back: nextval is atomic)
                    name = sa.func.pg_get_serial_sequence(t.runs.name, "seq")
                    seq = int(
                        conn.execute(
                            sa.select(
                                sa.func.setval(
                                    name, sa.func.greatest(min_seq, sa.func.nextval(name))
                                )
                            )
                        ).scalar_one()
                    )
                    conn.execute(sa.update(t.runs).where(t.runs.c.run_id == run_id).values(seq=seq))
        log.debug("started run %s (seq %d) of project %r", run_id, seq, project)
        return RunRecord(run_id=run_id, seq=seq, started_at=now)

    def finish_run(
        self,
        run_id: str,
        status: str | RunStatus,
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Close a run with a final status (not ``running``)."""
        self._finish(
            t.runs.c.run_id,
            run_id,
            status_value(status, RunStatus),
            summary=dict(summary) if summary is not None else None,
            error=error,
        )

    def list_runs(
        self, project: str, limit: int = 20, status: str | RunStatus | None = None
    ) -> list[rec.RunInfo]:
        """Newest first (only runs of ``status`` if given)."""
        with self._read() as conn:
            return history.list_runs(conn, project, limit, status)

    def get_run(self, run_id: str, project: str | None = None) -> rec.RunDetail | None:
        """A run by id or unique id prefix, with its steps, attempts and check results.

        None if nothing matches; :class:`UsageError` if a prefix matches several runs.
        """
        with self._read() as conn:
            return history.get_run(conn, run_id, project)

    def mark_stale_runs(self, project: str) -> list[str]:
        """Mark ``running`` runs whose process is gone as ``interrupted``; return their ids.

        A running run is alive only while the project's lock is held, unexpired, by the same
        host and pid (and, on this host, that pid still exists). Their unfinished steps
        become ``failed`` with reason ``interrupted``. Call it after acquiring the lock.
        """
        now = now_utc()
        stale: list[str] = []
        with self._tx() as conn:
            lock = lock_info(conn, project)
            rows = conn.execute(
                sa.select(t.runs.c.run_id, t.runs.c.pid, t.runs.c.host, t.runs.c.started_at).where(
                    t.runs.c.project == project, t.runs.c.status == RunStatus.RUNNING.value
                )
            ).all()
            for r in rows:
                if _run_alive(r.pid, r.host, lock, now):
                    continue
                conn.execute(
                    sa.update(t.runs)
                    .where(t.runs.c.run_id == r.run_id, t.runs.c.status == RunStatus.RUNNING.value)
                    .values(
                        status=RunStatus.INTERRUPTED.value,
                        finished_at=now,
                        duration_s=duration(r.started_at, now),
                        error=f"interrupted: process {r.pid} on host {r.host!r} stopped "
                        "without finishing the run",
                    )
                )
                conn.execute(
                    sa.update(t.steps)
                    .where(t.steps.c.run_id == r.run_id, t.steps.c.status == StepStatus.RUNNING)
                    .values(status=StepStatus.FAILED.value, reason="interrupted", finished_at=now)
                )
                stale.append(r.run_id)
        if stale:
            log.warning("project %r: marked %d run(s) interrupted: %s", project, len(stale), stale)
        return stale

    # --- steps ------------------------------------------------------------------------
    def start_step(
        self,
        run_id: str,
        project: str,
        dataset: str,
        input_versions: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a step (status ``running``) and return its id."""
        return self._add(
            t.steps,
            run_id=run_id,
            project=project,
            dataset=dataset,
            status=StepStatus.RUNNING.value,
            started_at=now_utc(),
            input_versions=dict(input_versions) if input_versions is not None else None,
        )

    def record_attempt(
        self,
        step_id: int,
        attempt: int,
        status: str,
        error: str | None = None,
        transient: bool = False,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Record one attempt of a step (``status`` is free text, e.g. success/failed)."""
        with self._tx() as conn:
            conn.execute(
                sa.insert(t.attempts).values(
                    step_id=step_id,
                    attempt=attempt,
                    status=text_or_none(status),
                    error=error,
                    transient=bool(transient),
                    started_at=started_at,
                    finished_at=finished_at or now_utc(),
                )
            )

    def finish_step(
        self,
        step_id: int,
        *,
        status: str | StepStatus,
        watermark: Any = None,
        reason: str | None = None,
        rows_in: int | None = None,
        rows_out: int | None = None,
        rows_quarantined: int | None = None,
        skip_reasons: Mapping[str, int] | None = None,
        rows_skipped: int | None = None,
        output_version: int | None = None,
        quarantine_version: int | None = None,
        schema_version: int | None = None,
        input_versions: Mapping[str, Any] | None = None,
        batch_id: str | None = None,
        message: str | None = None,
        attempts: int | None = None,
        cost: Mapping[str, float] | None = None,
    ) -> None:
        """Close a step with its final status and metrics (``input_versions``, when given,
        replaces what ``start_step`` recorded: the pinned inputs are known only once resolved)."""
        self._finish(
            t.steps.c.id,
            step_id,
            status_value(status, StepStatus),
            reason=reason,
            attempts=attempts,
            rows_in=rows_in,
            rows_out=rows_out,
            rows_quarantined=rows_quarantined,
            skip_reasons=None if skip_reasons is None else dict(skip_reasons),
            rows_skipped=rows_skipped,
            output_version=output_version,
            quarantine_version=quarantine_version,
            watermark=None if watermark is None else watermark_text(watermark)[0],
            schema_version=schema_version,
            batch_id=batch_id,
            message=message,
            **({} if cost is None else {"cost": dict(cost)}),
            **({} if input_versions is None else {"input_versions": dict(input_versions)}),
        )

    def _finish(self, key: sa.Column[Any], value: object, status: str, **values: Any) -> None:
        """Close the run or step whose ``key`` is ``value``: a final status (not ``running``),
        ``finished_at`` now and its duration, and ``values``."""
        what = "run" if key.table is t.runs else "step"
        if status == "running":
            raise ValueError(f"finish_{what} needs a final status, not 'running'")
        now = now_utc()
        with self._tx() as conn:
            started = conn.execute(
                sa.select(key.table.c.started_at).where(key == value)
            ).scalar_one_or_none()
            if started is None:
                raise UsageError(f"no {what} {value!r} in the state store {self.url}")
            conn.execute(
                sa.update(key.table)
                .where(key == value)
                .values(status=status, finished_at=now, duration_s=duration(started, now), **values)
            )

    def dataset_steps(
        self, project: str, dataset: str, limit: int = 20, *, project_id: str | None = None
    ) -> list[rec.StepInfo]:
        """The dataset's most recent steps, newest first; with ``project_id`` only those of
        runs under that warehouse identity (history of another warehouse is not evidence of
        what this one holds)."""
        with self._read() as conn:
            return history.dataset_steps(conn, project, dataset, limit, project_id)

    # --- project identity ------------------------------------------------------------
    def project_record(self, project: str) -> ProjectRecord | None:
        """The warehouse identity registered for ``project`` (None: never registered)."""
        with self._read() as conn:
            return get_project(conn, project)

    def published_anything(self, project: str, project_id: str) -> bool:
        """Whether any run under warehouse identity ``project_id`` published a dataset."""
        with self._read() as conn:
            return published_anything(conn, project, project_id)

    def register_project(
        self, project: str, project_id: str, warehouse: str, host: str = HOST
    ) -> ProjectRecord:
        """Record that ``project`` is the warehouse ``warehouse`` with identity ``project_id``."""
        with self._tx() as conn:
            return register_project(conn, project, project_id, warehouse, host)

    # --- checks and scores ------------------------------------------------------------
    def record_check_results(
        self, step_id: int, run_id: str, project: str, dataset: str, results: Sequence[Any]
    ) -> None:
        """Store check results: mappings (or dataclasses/pydantic models, e.g.
        ``lockgate.quality.CheckResult``) with ``name`` (or ``check_name``), ``type`` (or
        ``check_type``), ``dimension``, ``severity``, ``failing_rows``, ``fraction``,
        ``passed``, ``observed``, ``samples``, ``seconds``, ``message``."""
        rows = []
        for res in results:
            m = as_mapping(res)
            name = m.get("check_name", m.get("name"))
            if name is None:
                raise ValueError(f"check result without a name: {dict(m)!r}")
            rows.append(
                {
                    "step_id": step_id,
                    "run_id": run_id,
                    "project": project,
                    "dataset": dataset,
                    "check_name": str(name),
                    "check_type": text_or_none(m.get("check_type", m.get("type"))),
                    "dimension": text_or_none(m.get("dimension")),
                    "severity": text_or_none(m.get("severity")),
                    "failing_rows": m.get("failing_rows"),
                    "fraction": finite_float(m.get("fraction")),
                    "passed": bool(m.get("passed")),
                    "observed": finite_float(m.get("observed")),
                    "samples": t.jsonable(m.get("samples")),
                    "seconds": finite_float(m.get("seconds")),
                    "message": text_or_none(m.get("message")),
                    "expected": t.jsonable(m.get("expected")),
                }
            )
        if not rows:
            return
        with self._tx() as conn:
            conn.execute(sa.insert(t.check_results), rows)

    def check_history(
        self, project: str, dataset: str, limit: int = 20, check_name: str | None = None
    ) -> list[rec.CheckRecord]:
        """Check results of the dataset's ``limit`` most recent steps that have any (only
        ``check_name``'s if given): newest step first, then in recorded order; each with the
        ``finished_at`` of its step."""
        with self._read() as conn:
            return history.check_history(conn, project, dataset, limit, check_name)

    def check_values(
        self, project: str, dataset: str, check_name: str, limit: int = 200
    ) -> list[tuple[datetime, float]]:
        """Observed values of ``check_name`` in the dataset's last ``limit`` published
        steps, oldest first (an anomaly check's baseline)."""
        with self._read() as conn:
            return history.check_values(conn, project, dataset, check_name, limit)

    def record_scores(
        self, run_id: str, project: str, dataset: str, scores: Mapping[str, float | None]
    ) -> None:
        """Store ``{dimension or 'overall': score in [0, 1]}``; None values are skipped."""
        now = now_utc()
        rows = []
        for dim, score in scores.items():
            if score is None:
                continue
            f = finite_float(score)
            if f is None or not 0.0 <= f <= 1.0:
                raise ValueError(f"score of {dataset}.{dim} must be in [0, 1], got {score!r}")
            rows.append(
                {
                    "run_id": run_id,
                    "project": project,
                    "dataset": dataset,
                    "dimension": text_or_none(dim),
                    "score": f,
                    "created_at": now,
                }
            )
        if rows:
            with self._tx() as conn:
                conn.execute(sa.insert(t.quality_scores), rows)

    def score_history(
        self,
        project: str,
        dataset: str | None,
        limit: int | None = 20,
        *,
        since: datetime | None = None,
    ) -> list[rec.ScoreRecord]:
        """Scores of the dataset's ``limit`` most recent scored runs (``dataset=None``: of
        the project's ``limit`` most recent runs), recorded at or after ``since``; newest
        run first."""
        with self._read() as conn:
            return history.score_history(conn, project, dataset, limit, since)

    # --- watermarks -------------------------------------------------------------------
    def get_watermark(self, project: str, dataset: str) -> Watermark | None:
        w = t.watermarks.c
        with self._read() as conn:
            r = _first(
                conn, sa.select(t.watermarks).where(w.project == project, w.dataset == dataset)
            )
        return None if r is None else from_row(Watermark, r)

    def set_watermark(
        self,
        project: str,
        dataset: str,
        value: Any,
        value_type: str | None = None,
        run_id: str | None = None,
    ) -> None:
        """Upsert the watermark. Non-text values are stored as text (datetimes/dates as ISO
        8601) and ``value_type`` is inferred from them when not given."""
        text, inferred = watermark_text(value)
        row = {
            "project": project,
            "dataset": dataset,
            "value": text,
            "value_type": value_type or inferred,
            "updated_at": now_utc(),
            "run_id": run_id,
        }
        stmt = self._insert(t.watermarks).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["project", "dataset"],
            set_={k: stmt.excluded[k] for k in ("value", "value_type", "updated_at", "run_id")},
        )
        with self._tx() as conn:
            conn.execute(stmt)

    # --- schema versions --------------------------------------------------------------
    def latest_schema(self, project: str, dataset: str) -> tuple[int, list[dict[str, str]]] | None:
        """``(version, [{name, type}, …])`` of the newest recorded schema, or None."""
        with self._read() as conn:
            r = self._latest_schema_row(conn, project, dataset)
        return None if r is None else (int(r["version"]), list(r["schema"]))

    @staticmethod
    def _latest_schema_row(conn: Connection, project: str, dataset: str) -> RowMapping | None:
        sv = t.schema_versions.c
        q = sa.select(sv.version, sv.schema, sv.fingerprint)
        q = q.where(sv.project == project, sv.dataset == dataset)
        return _first(conn, q.order_by(sv.version.desc()).limit(1))

    def record_schema(
        self,
        project: str,
        dataset: str,
        schema: Sequence[Mapping[str, Any] | Sequence[Any]],
        drift: Any = None,
        run_id: str | None = None,
    ) -> int:
        """Record a schema; returns its version (1, 2, …). An unchanged schema (same
        ordered names and types) returns the current version without a new row."""
        cols = normalise_schema(schema)
        fp = schema_fingerprint(cols)
        with self._tx() as conn:
            cur = self._latest_schema_row(conn, project, dataset)
            if cur is not None and cur["fingerprint"] == fp:
                return int(cur["version"])
            version = 1 if cur is None else int(cur["version"]) + 1
            conn.execute(
                sa.insert(t.schema_versions).values(
                    project=project,
                    dataset=dataset,
                    version=version,
                    schema=cols,
                    fingerprint=fp,
                    drift=t.jsonable(drift),
                    created_at=now_utc(),
                    run_id=run_id,
                )
            )
        return version

    # --- profiles ---------------------------------------------------------------------
    def record_profile(
        self, project: str, dataset: str, profile: Mapping[str, Any], run_id: str | None = None
    ) -> int:
        profile_ = t.jsonable(dict(profile))
        return self._add(
            t.profiles,
            project=project,
            dataset=dataset,
            run_id=run_id,
            created_at=now_utc(),
            profile=profile_,
        )

    def latest_profile(self, project: str, dataset: str) -> ProfileRecord | None:
        p = t.profiles.c
        q = sa.select(t.profiles).where(p.project == project, p.dataset == dataset)
        with self._read() as conn:
            r = _first(conn, q.order_by(p.id.desc()).limit(1))
        return None if r is None else from_row(ProfileRecord, r)

    # --- lock -------------------------------------------------------------------------
    def lock(self, project: str, ttl_s: float = 30.0) -> Lease:
        """Acquire the project lock (raises :class:`~lockgate.errors.LockHeld`); use as
        ``with store.lock(project) as lease:`` — released on exit. See
        :mod:`lockgate.state.lock`."""
        return acquire(self._tx, project, ttl_s)

    def lock_info(self, project: str) -> LockInfo | None:
        """Who holds the project's lock row (possibly expired), or None."""
        with self._read() as conn:
            return lock_info(conn, project)


def _first(conn: Connection, q: sa.Select[Any]) -> RowMapping | None:
    return conn.execute(q).mappings().first()


def _pk(res: CursorResult[Any]) -> int:
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _run_alive(pid: int | None, host: str | None, lock: LockInfo | None, now: datetime) -> bool:
    if lock is None or lock.expires_at < now:
        return False
    if (lock.pid, lock.host) != (pid, host):
        return False
    return not (host == HOST and not pid_alive(pid))
