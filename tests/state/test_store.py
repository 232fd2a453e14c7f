"""State store round trips, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lockgate.errors import LockgateError, UsageError
from lockgate.state import (
    LATEST_VERSION,
    MIGRATIONS,
    StateSchemaError,
    StateStore,
    StateStoreError,
    schema_fingerprint,
)
from lockgate.state import tables as t


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# --- migrations -------------------------------------------------------------------------


def test_migrations_recorded_once_and_reopen_is_idempotent(state_url: str) -> None:
    for _ in range(3):
        StateStore.open(state_url).close()
    s = StateStore.open(state_url)
    with s.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.migrations_table.c.version, t.migrations_table.c.name).order_by(
                t.migrations_table.c.version
            )
        ).all()
    s.close()
    assert [(r.version, r.name) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]
    assert rows[0].name == "0001_initial"
    assert rows[-1].version == LATEST_VERSION


def test_migrated_schema_matches_table_definitions(store: StateStore) -> None:
    insp = sa.inspect(store.engine)
    for table in t.metadata.sorted_tables:
        assert insp.has_table(table.name), table.name
        cols = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(cols) == {c.name for c in table.columns}, table.name
        for c in table.columns:
            if not c.primary_key:
                assert cols[c.name]["nullable"] == c.nullable, f"{table.name}.{c.name}"


def test_concurrent_openers_apply_each_migration_once(state_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        try:
            barrier.wait()
            StateStore.open(state_url).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    s = StateStore.open(state_url)
    with s.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(t.migrations_table)).scalar()
    s.close()
    assert n == len(MIGRATIONS)


def test_newer_schema_version_is_refused(state_url: str) -> None:
    s = StateStore.open(state_url)
    with s.engine.begin() as conn:
        conn.execute(
            t.migrations_table.insert().values(
                version=LATEST_VERSION + 7, name="0099_future", applied_at=datetime.now(UTC)
            )
        )
    s.close()
    with pytest.raises(StateSchemaError) as ei:
        StateStore.open(state_url)
    msg = str(ei.value)
    assert str(LATEST_VERSION + 7) in msg and "newer lockgate" in msg
    assert not ei.value.transient


# --- runs and steps ---------------------------------------------------------------------


def test_seq_strictly_increases_and_is_never_reused(store: StateStore) -> None:
    seqs = [store.start_run("p").seq for _ in range(4)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    last = store.list_runs("p", limit=1)[0]
    with store.engine.begin() as conn:  # a retention job deleting the newest run
        conn.execute(sa.delete(t.runs).where(t.runs.c.run_id == last.run_id))
    assert store.start_run("p").seq > last.seq


def test_start_run_min_seq_moves_the_sequence_forward(store: StateStore) -> None:
    """A new store over an existing warehouse: seq jumps past the tables' txn versions and
    keeps increasing from there (never reused, never moved back)."""
    assert store.start_run("p").seq < 50
    assert store.start_run("p", min_seq=50).seq == 50
    assert store.start_run("p").seq == 51
    assert store.start_run("p", min_seq=10).seq == 52


def test_seq_unique_under_concurrent_start_run(store: StateStore) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            s = store.start_run("p").seq
            with lock:
                seqs.append(s)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(seqs) == 20 and len(set(seqs)) == 20


@dataclass
class _FakeCheckResult:  # the shape of lockgate.quality.CheckResult
    name: str
    type: str
    dimension: str
    severity: str
    failing_rows: int
    fraction: float
    passed: bool
    row_level: bool
    observed: float | None
    samples: list[dict[str, object]]
    seconds: float
    message: str


def test_run_step_attempt_check_round_trip(store: StateStore) -> None:
    run = store.start_run("shop", selection="orders+", args={"full_refresh": True})
    assert len(run.run_id) == 32 and run.started_at.tzinfo is not None
    step = store.start_step(run.run_id, "shop", "orders", input_versions={"raw_orders": 3})
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    store.record_attempt(step, 1, "failed", "connection reset", True, t0, t0)
    store.record_attempt(step, 2, "success")
    store.record_check_results(
        step,
        run.run_id,
        "shop",
        "orders",
        [
            {
                "name": "amount_not_null",
                "type": "not_null",
                "dimension": "completeness",
                "severity": "error",
                "failing_rows": 2,
                "fraction": 0.2,
                "passed": False,
                "observed": None,
                "samples": [{"id": 1, "at": datetime(2024, 1, 1), "x": math.nan}],
                "seconds": 0.01,
                "message": "2 rows are null",
            },
            _FakeCheckResult(
                "rows",
                "row_count",
                "completeness",
                "warn",
                0,
                0.0,
                True,
                False,
                10.0,
                [],
                0.0,
                "ok",
            ),
        ],
    )
    store.finish_step(
        step,
        status="success",
        reason="published",
        rows_in=10,
        rows_out=8,
        rows_quarantined=2,
        output_version=4,
        quarantine_version=1,
        watermark=datetime(2024, 5, 1, tzinfo=UTC),
        schema_version=1,
        batch_id="b1",
        message="ok",
        attempts=2,
    )
    store.finish_run(run.run_id, "partial", summary={"published": 1}, error=None)

    detail = store.get_run(run.run_id)
    assert detail is not None
    r = detail.run
    assert (r.project, r.status, r.selection, r.seq) == ("shop", "partial", "orders+", run.seq)
    assert r.args == {"full_refresh": True} and r.summary == {"published": 1}
    assert r.finished_at is not None and r.finished_at.tzinfo == UTC
    assert r.duration_s is not None and r.duration_s >= 0
    (s,) = detail.steps
    assert (s.step_id, s.status, s.rows_in, s.rows_out, s.rows_quarantined) == (
        step,
        "success",
        10,
        8,
        2,
    )
    assert s.input_versions == {"raw_orders": 3}
    assert (s.output_version, s.quarantine_version, s.schema_version, s.attempts) == (4, 1, 1, 2)
    assert s.watermark == "2024-05-01T00:00:00+00:00" and s.batch_id == "b1"
    a1, a2 = detail.attempts[step]
    assert (a1.attempt, a1.status, a1.transient, a1.error) == (
        1,
        "failed",
        True,
        "connection reset",
    )
    assert a1.started_at == t0
    assert (a2.attempt, a2.transient) == (2, False)
    c1, c2 = detail.checks[step]
    assert (c1.check_name, c1.check_type, c1.dimension, c1.severity) == (
        "amount_not_null",
        "not_null",
        "completeness",
        "error",
    )
    assert (c1.failing_rows, c1.fraction, c1.passed, c1.observed) == (2, 0.2, False, None)
    assert c1.samples == [{"id": 1, "at": "2024-01-01T00:00:00", "x": None}]
    assert (c2.check_name, c2.passed, c2.observed, c2.severity) == ("rows", True, 10.0, "warn")


def test_get_run_by_prefix(store: StateStore) -> None:
    ids = [store.start_run("p").run_id for _ in range(17)]
    target = ids[5]
    detail = store.get_run(target[:12].upper())
    assert detail is not None and detail.run.run_id == target
    assert store.get_run("0" * 32) is None
    assert store.get_run("not-hex%") is None
    assert store.get_run(target, project="other") is None
    first = {i[0] for i in ids}  # 17 ids over 16 hex digits: some first digit repeats
    shared = next(c for c in first if sum(i[0] == c for i in ids) > 1)
    with pytest.raises(UsageError, match="several runs"):
        store.get_run(shared)


def test_list_runs_order_filter_and_project_isolation(store: StateStore) -> None:
    a = store.start_run("a")
    b = store.start_run("a")
    store.start_run("other")
    store.finish_run(a.run_id, "success")
    store.finish_run(b.run_id, "failed", error="boom")
    runs = store.list_runs("a")
    assert [r.run_id for r in runs] == [b.run_id, a.run_id]
    assert [r.run_id for r in store.list_runs("a", status="failed")] == [b.run_id]
    assert store.list_runs("a", limit=1)[0].error == "boom"


def test_invalid_statuses_are_rejected(store: StateStore) -> None:
    run = store.start_run("p")
    with pytest.raises(ValueError, match="success"):
        store.finish_run(run.run_id, "great")
    with pytest.raises(ValueError):
        store.finish_run(run.run_id, "running")
    step = store.start_step(run.run_id, "p", "d")
    with pytest.raises(ValueError, match="upstream_failed"):
        store.finish_step(step, status="done")
    with pytest.raises(UsageError):
        store.finish_run("f" * 32, "success")


def test_dataset_steps_newest_first(store: StateStore) -> None:
    run = store.start_run("p")
    ids = [store.start_step(run.run_id, "p", "orders") for _ in range(3)]
    store.start_step(run.run_id, "p", "customers")
    store.finish_step(ids[-1], status="noop", reason="inputs unchanged")
    steps = store.dataset_steps("p", "orders", limit=2)
    assert [s.step_id for s in steps] == [ids[2], ids[1]]
    assert (steps[0].status, steps[0].reason) == ("noop", "inputs unchanged")
    assert steps[1].status == "running"


def test_check_history_limits_by_step(store: StateStore) -> None:
    run = store.start_run("p")
    steps = []
    for i in range(3):
        sid = store.start_step(run.run_id, "p", "orders")
        steps.append(sid)
        store.record_check_results(
            sid,
            run.run_id,
            "p",
            "orders",
            [{"name": "a", "passed": True, "failing_rows": i}, {"name": "b", "passed": i != 1}],
        )
    hist = store.check_history("p", "orders", limit=2)
    assert [(c.step_id, c.check_name) for c in hist] == [
        (steps[2], "a"),
        (steps[2], "b"),
        (steps[1], "a"),
        (steps[1], "b"),
    ]
    only_b = store.check_history("p", "orders", limit=5, check_name="b")
    assert [c.passed for c in only_b] == [True, False, True]
    assert store.check_history("p", "customers") == []


def test_scores_and_history(store: StateStore) -> None:
    runs = [store.start_run("p").run_id for _ in range(3)]
    for i, rid in enumerate(runs):
        store.record_scores(rid, "p", "orders", {"validity": 0.5 + i / 10, "overall": 0.9})
    store.record_scores(runs[0], "p", "customers", {"overall": 1.0, "timeliness": None})
    hist = store.score_history("p", "orders", limit=2)
    assert [(s.run_id, s.dimension) for s in hist] == [
        (runs[2], "validity"),
        (runs[2], "overall"),
        (runs[1], "validity"),
        (runs[1], "overall"),
    ]
    assert hist[0].score == pytest.approx(0.7) and hist[0].created_at.tzinfo == UTC
    assert [s.dimension for s in store.score_history("p", "customers")] == ["overall"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        store.record_scores(runs[0], "p", "orders", {"overall": 1.5})


# --- watermarks, schemas, profiles ------------------------------------------------------


def test_watermarks(store: StateStore) -> None:
    assert store.get_watermark("p", "orders") is None
    run = store.start_run("p")
    store.set_watermark("p", "orders", 41)
    store.set_watermark("p", "orders", 42, run_id=run.run_id)
    wm = store.get_watermark("p", "orders")
    assert wm is not None
    assert (wm.value, wm.value_type, wm.run_id) == ("42", "integer", run.run_id)
    assert wm.updated_at.tzinfo == UTC
    ts = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    store.set_watermark("p", "events", ts)
    ev = store.get_watermark("p", "events")
    assert ev is not None and (ev.value, ev.value_type) == (ts.isoformat(), "timestamp")
    assert datetime.fromisoformat(ev.value) == ts
    store.set_watermark("q", "orders", "x", value_type="text")
    wm2 = store.get_watermark("p", "orders")
    assert wm2 is not None and wm2.value == "42"


def test_schema_versions(store: StateStore) -> None:
    assert store.latest_schema("p", "orders") is None
    v1 = [{"name": "id", "type": "BIGINT"}, {"name": "amount", "type": "DOUBLE"}]
    assert store.record_schema("p", "orders", v1) == 1
    assert store.record_schema("p", "orders", [("id", "BIGINT"), ("amount", "DOUBLE")]) == 1
    v2 = [*v1, {"name": "note", "type": "VARCHAR"}]
    drift = {"added": ["note"]}
    assert store.record_schema("p", "orders", v2, drift=drift, run_id="r1") == 2
    assert store.record_schema("p", "orders", list(reversed(v2))) == 3  # order matters
    assert store.record_schema("p", "orders", v2) == 4  # back again is a new version
    assert store.latest_schema("p", "orders") == (4, v2)
    assert store.record_schema("p", "customers", v1) == 1
    assert schema_fingerprint(v1) != schema_fingerprint(v2)


def test_profiles(store: StateStore) -> None:
    assert store.latest_profile("p", "orders") is None
    store.record_profile("p", "orders", {"rows": 1})
    store.record_profile("p", "orders", {"rows": 2, "cols": {"a": {"mean": math.inf}}}, "r2")
    prof = store.latest_profile("p", "orders")
    assert prof is not None
    assert prof.profile == {"rows": 2, "cols": {"a": {"mean": None}}}
    assert prof.run_id == "r2" and prof.created_at.tzinfo == UTC


# --- interrupted runs -------------------------------------------------------------------


def test_mark_stale_runs(store: StateStore) -> None:
    dead = store.start_run("p")
    step = store.start_step(dead.run_id, "p", "orders")
    done_step = store.start_step(dead.run_id, "p", "customers")
    store.finish_step(done_step, status="success")
    remote = store.start_run("p")
    other_project = store.start_run("q")
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t.runs).where(t.runs.c.run_id == dead.run_id).values(pid=_dead_pid())
        )
        conn.execute(
            sa.update(t.runs).where(t.runs.c.run_id == remote.run_id).values(host="some-other-host")
        )
    with store.lock("p", ttl_s=30):
        mine = store.start_run("p")
        stale = store.mark_stale_runs("p")
    assert set(stale) == {dead.run_id, remote.run_id}
    detail = store.get_run(dead.run_id)
    assert detail is not None
    assert detail.run.status == "interrupted" and "interrupted" in (detail.run.error or "")
    by_id = {s.step_id: s for s in detail.steps}
    assert (by_id[step].status, by_id[step].reason) == ("failed", "interrupted")
    assert by_id[done_step].status == "success"
    statuses = {r.run_id: r.status for r in store.list_runs("p")}
    assert statuses[mine.run_id] == "running"
    assert store.list_runs("q")[0].run_id == other_project.run_id
    assert store.list_runs("q")[0].status == "running"  # other projects untouched
    # without a lock nobody is alive any more
    assert store.mark_stale_runs("p") == [mine.run_id]


# --- URLs and errors --------------------------------------------------------------------


def test_sqlite_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "state.db"
    s = StateStore.open(f"sqlite:///{db}")
    assert db.exists()
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
    # foreign keys are enforced
    with pytest.raises(sa.exc.IntegrityError):
        s.start_step("0" * 32, "p", "orders")
    s.close()


def test_password_is_masked_in_connection_errors() -> None:
    secret = "s3cr3t-Pa55"
    with pytest.raises(StateStoreError) as ei:
        StateStore.open(f"postgresql://lg_user:{secret}@127.0.0.1:1/lg")
    err = ei.value
    assert err.transient
    text = str(err) + repr(err.args) + str(err.hint)
    assert secret not in text
    assert "lg_user:***@127.0.0.1:1/lg" in str(err)
    assert "postgresql+psycopg://" in str(err) and "hint:" in str(err)
    assert err.__cause__ is None and err.__suppress_context__


def test_password_in_query_string_is_masked_too() -> None:
    with pytest.raises(StateStoreError) as ei:
        StateStore.open("postgresql://lg_user@127.0.0.1:1/lg?password=qs-secret-9")
    assert "qs-secret-9" not in str(ei.value) and "password=***" in str(ei.value)


def test_sqlite_unopenable_path_is_a_state_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StateStoreError, match="state"):
        StateStore.open(f"sqlite:///{blocker}/state.db")


@pytest.mark.parametrize(
    "url",
    ["mysql://u:pw@h/db", "sqlite://", "sqlite:///:memory:", "postgresql+asyncpg://u:pw@h/d"],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StateSchemaError) as ei:
        StateStore.open(url)
    assert "pw" not in str(ei.value).replace("psycopg", "")
    assert isinstance(ei.value, LockgateError) and not ei.value.transient


def test_postgres_url_is_normalised_to_psycopg() -> None:
    from lockgate.state.engine import parse_url

    assert parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.postgres
def test_postgres_url_without_driver_opens(pg_url: str) -> None:
    s = StateStore.open(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert s.dialect == "postgresql" and s.start_run("p").seq >= 1
    s.close()
