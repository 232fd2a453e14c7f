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

import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, Engine

from lockgate.errors import UsageError
from lockgate.state import tables as t
from lockgate.state._convert import (
    as_mapping,
    attempt_info,
    check_record,
    duration,
    finite_float,
    normalise_schema,
    run_info,
    schema_fingerprint,
    status_value,
    step_info,
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
    AttemptInfo,
    CheckRecord,
    LockInfo,
    ProfileRecord,
    RunDetail,
    RunInfo,
    RunRecord,
    RunStatus,
    ScoreRecord,
    StepInfo,
    StepStatus,
    Watermark,
)

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9a-f]{1,32}$")


class StateStore:
    """Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self._url = url

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
        """A write transaction (SQLite: BEGIN IMMEDIATE)."""
        with db_errors(self._url, "writing"), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            db_errors(self._url, "reading"),
            self.engine.connect().execution_options(**{READ_ONLY: True}) as conn,
            conn.begin(),
        ):
            yield conn

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
        st = status_value(status, RunStatus)
        if st == RunStatus.RUNNING.value:
            raise ValueError("finish_run needs a final status, not 'running'")
        now = now_utc()
        with self._tx() as conn:
            started = conn.execute(
                sa.select(t.runs.c.started_at).where(t.runs.c.run_id == run_id)
            ).scalar_one_or_none()
            if started is None:
                raise UsageError(f"no run {run_id!r} in the state store {self.url}")
            conn.execute(
                sa.update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    status=st,
                    finished_at=now,
                    duration_s=duration(started, now),
                    summary=dict(summary) if summary is not None else None,
                    error=error,
                )
            )

    def list_runs(
        self, project: str, limit: int = 20, status: str | RunStatus | None = None
    ) -> list[RunInfo]:
        """Newest first."""
        q = sa.select(t.runs).where(t.runs.c.project == project)
        if status is not None:
            q = q.where(t.runs.c.status == status_value(status, RunStatus))
        q = q.order_by(t.runs.c.seq.desc()).limit(limit)
        with self._read() as conn:
            return [run_info(r) for r in conn.execute(q).mappings()]

    def get_run(self, run_id: str, project: str | None = None) -> RunDetail | None:
        """A run by id or unique id prefix, with its steps, attempts and check results.

        None if nothing matches; :class:`UsageError` if a prefix matches several runs.
        """
        key = run_id.strip().lower()
        if not _HEX.match(key):
            return None
        q = sa.select(t.runs)
        q = (
            q.where(t.runs.c.run_id == key)
            if len(key) == 32
            else q.where(t.runs.c.run_id.startswith(key, autoescape=True))
        )
        if project is not None:
            q = q.where(t.runs.c.project == project)
        with self._read() as conn:
            rows = list(conn.execute(q.order_by(t.runs.c.seq.desc()).limit(6)).mappings())
            if not rows:
                return None
            if len(rows) > 1:
                ids = ", ".join(r["run_id"][:12] for r in rows[:5])
                raise UsageError(
                    f"run id prefix {run_id!r} matches several runs: {ids}",
                    hint="give more characters of the run id",
                )
            run = run_info(rows[0])
            step_rows = conn.execute(
                sa.select(t.steps).where(t.steps.c.run_id == run.run_id).order_by(t.steps.c.id)
            ).mappings()
            steps = [step_info(r) for r in step_rows]
            attempts: dict[int, list[AttemptInfo]] = {}
            checks: dict[int, list[CheckRecord]] = {}
            if steps:
                ids_ = [s.step_id for s in steps]
                for r in conn.execute(
                    sa.select(t.attempts)
                    .where(t.attempts.c.step_id.in_(ids_))
                    .order_by(t.attempts.c.step_id, t.attempts.c.attempt, t.attempts.c.id)
                ).mappings():
                    attempts.setdefault(r["step_id"], []).append(attempt_info(r))
                for r in conn.execute(
                    sa.select(t.check_results)
                    .where(t.check_results.c.run_id == run.run_id)
                    .order_by(t.check_results.c.id)
                ).mappings():
                    checks.setdefault(r["step_id"], []).append(check_record(r))
        return RunDetail(run=run, steps=steps, attempts=attempts, checks=checks)

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
        with self._tx() as conn:
            res = conn.execute(
                sa.insert(t.steps).values(
                    run_id=run_id,
                    project=project,
                    dataset=dataset,
                    status=StepStatus.RUNNING.value,
                    started_at=now_utc(),
                    input_versions=dict(input_versions) if input_versions is not None else None,
                )
            )
            return _pk(res)

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
        reason: str | None = None,
        rows_in: int | None = None,
        rows_out: int | None = None,
        rows_quarantined: int | None = None,
        rows_skipped: int | None = None,
        skip_reasons: Mapping[str, int] | None = None,
        output_version: int | None = None,
        quarantine_version: int | None = None,
        watermark: Any = None,
        schema_version: int | None = None,
        batch_id: str | None = None,
        message: str | None = None,
        attempts: int | None = None,
        input_versions: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a step with its final status and metrics (``input_versions``, when given,
        replaces what ``start_step`` recorded: the pinned inputs are known only once resolved)."""
        st = status_value(status, StepStatus)
        if st == StepStatus.RUNNING.value:
            raise ValueError("finish_step needs a final status, not 'running'")
        now = now_utc()
        with self._tx() as conn:
            started = conn.execute(
                sa.select(t.steps.c.started_at).where(t.steps.c.id == step_id)
            ).scalar_one_or_none()
            if started is None:
                raise UsageError(f"no step {step_id} in the state store {self.url}")
            conn.execute(
                sa.update(t.steps)
                .where(t.steps.c.id == step_id)
                .values(
                    status=st,
                    reason=reason,
                    finished_at=now,
                    duration_s=duration(started, now),
                    attempts=attempts,
                    rows_in=rows_in,
                    rows_out=rows_out,
                    rows_quarantined=rows_quarantined,
                    rows_skipped=rows_skipped,
                    skip_reasons=None if skip_reasons is None else dict(skip_reasons),
                    output_version=output_version,
                    quarantine_version=quarantine_version,
                    watermark=None if watermark is None else watermark_text(watermark)[0],
                    schema_version=schema_version,
                    batch_id=batch_id,
                    message=message,
                    **({} if input_versions is None else {"input_versions": dict(input_versions)}),
                )
            )

    def dataset_steps(
        self, project: str, dataset: str, limit: int = 20, *, project_id: str | None = None
    ) -> list[StepInfo]:
        """The dataset's most recent steps, newest first; with ``project_id`` only those of
        runs under that warehouse identity (history of another warehouse is not evidence of
        what this one holds)."""
        q = sa.select(t.steps).where(t.steps.c.project == project, t.steps.c.dataset == dataset)
        if project_id is not None:
            q = q.join(t.runs, t.runs.c.run_id == t.steps.c.run_id).where(
                t.runs.c.project_id == project_id
            )
        q = q.order_by(t.steps.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [step_info(r) for r in conn.execute(q).mappings()]

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
                }
            )
        if not rows:
            return
        with self._tx() as conn:
            conn.execute(sa.insert(t.check_results), rows)

    def check_history(
        self, project: str, dataset: str, limit: int = 20, check_name: str | None = None
    ) -> list[CheckRecord]:
        """Check results of the dataset's ``limit`` most recent steps that have any (only
        ``check_name``'s if given): newest step first, then in recorded order."""
        c = t.check_results.c
        where = [c.project == project, c.dataset == dataset]
        if check_name is not None:
            where.append(c.check_name == check_name)
        recent = (
            sa.select(c.step_id)
            .where(*where)
            .group_by(c.step_id)
            .order_by(c.step_id.desc())
            .limit(limit)
            .subquery()
        )
        q = (
            sa.select(t.check_results)
            .where(*where, c.step_id.in_(sa.select(recent.c.step_id)))
            .order_by(c.step_id.desc(), c.id)
        )
        with self._read() as conn:
            return [check_record(r) for r in conn.execute(q).mappings()]

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

    def score_history(self, project: str, dataset: str, limit: int = 20) -> list[ScoreRecord]:
        """Scores of the dataset's ``limit`` most recent scored runs, newest run first.
        (Runs in order of first appearance walking ids down = ordered by their newest id,
        found without grouping the whole history.)"""
        c = t.quality_scores.c
        where = [c.project == project, c.dataset == dataset]
        newest = sa.select(c.run_id).where(*where).order_by(c.id.desc())
        with self._read() as conn:
            runs = _first_distinct(conn, newest, limit)
            q = sa.select(t.quality_scores).where(*where, c.run_id.in_(runs)).order_by(c.id)
            rows = list(conn.execute(q).mappings()) if runs else []
        rank = {r: i for i, r in enumerate(runs)}
        rows.sort(key=lambda r: rank[r["run_id"]])  # stable: ids ascending within a run
        return [
            ScoreRecord(
                run_id=r["run_id"],
                project=r["project"],
                dataset=r["dataset"],
                dimension=r["dimension"],
                score=r["score"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    # --- watermarks -------------------------------------------------------------------
    def get_watermark(self, project: str, dataset: str) -> Watermark | None:
        with self._read() as conn:
            r = (
                conn.execute(
                    sa.select(t.watermarks).where(
                        t.watermarks.c.project == project, t.watermarks.c.dataset == dataset
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            return None
        return Watermark(
            project=r["project"],
            dataset=r["dataset"],
            value=r["value"],
            value_type=r["value_type"],
            updated_at=r["updated_at"],
            run_id=r["run_id"],
        )

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
    def _latest_schema_row(conn: Connection, project: str, dataset: str) -> Any:
        sv = t.schema_versions.c
        return (
            conn.execute(
                sa.select(sv.version, sv.schema, sv.fingerprint)
                .where(sv.project == project, sv.dataset == dataset)
                .order_by(sv.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )

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
        with self._tx() as conn:
            res = conn.execute(
                sa.insert(t.profiles).values(
                    project=project,
                    dataset=dataset,
                    run_id=run_id,
                    created_at=now_utc(),
                    profile=t.jsonable(dict(profile)),
                )
            )
            return _pk(res)

    def latest_profile(self, project: str, dataset: str) -> ProfileRecord | None:
        p = t.profiles.c
        with self._read() as conn:
            r = (
                conn.execute(
                    sa.select(t.profiles)
                    .where(p.project == project, p.dataset == dataset)
                    .order_by(p.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if r is None:
            return None
        return ProfileRecord(
            project=r["project"],
            dataset=r["dataset"],
            run_id=r["run_id"],
            created_at=r["created_at"],
            profile=r["profile"],
        )

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


def _first_distinct(conn: Connection, q: sa.Select[Any], n: int) -> list[str]:
    """The first ``n`` distinct values of ``q``'s one column, reading ever longer prefixes."""
    k = max(8 * n, 64)
    while True:
        got = [str(v) for v in conn.execute(q.limit(k)).scalars()]
        seen = list(dict.fromkeys(got))
        if len(seen) >= n or len(got) < k:
            return seen[:n]
        k *= 4


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
