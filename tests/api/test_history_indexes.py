"""The history queries behind the read API stay cheap over a long history: on a state store
with thousands of runs each query is answered through an index (SQLite's query plan names
one for every table it reads; no full scan) and returns only what its limit asks for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lockgate.state import StateStore
from lockgate.state import tables as t

RUNS = 3000
DATASETS = ("orders", "customers")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _history(store: StateStore) -> list[str]:
    """RUNS runs of project p (plus noise of project q), a step per dataset with two checks
    and two scores each; returns the run ids, oldest first."""
    ids = [uuid.uuid4().hex for _ in range(RUNS)]
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for i, rid in enumerate(ids):
        at = T0 + timedelta(hours=i)
        runs.append(
            {"run_id": rid, "seq": i + 1, "project": "p", "status": "success", "started_at": at}
        )
        for d in DATASETS:
            sid = len(steps) + 1
            steps.append(
                {
                    "id": sid,
                    "run_id": rid,
                    "project": "p",
                    "dataset": d,
                    "status": "success",
                    "started_at": at,
                    "finished_at": at,
                }
            )
            for c in ("a", "b"):
                checks.append(
                    {
                        "step_id": sid,
                        "run_id": rid,
                        "project": "p",
                        "dataset": d,
                        "check_name": c,
                        "passed": i % 2 == 0,
                    }
                )
            for dim, score in (("validity", 0.5), ("overall", i / RUNS)):
                scores.append(
                    {
                        "run_id": rid,
                        "project": "p",
                        "dataset": d,
                        "dimension": dim,
                        "score": score,
                        "created_at": at,
                    }
                )
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.runs), runs)
        conn.execute(sa.insert(t.steps), steps)
        conn.execute(sa.insert(t.check_results), checks)
        conn.execute(sa.insert(t.quality_scores), scores)
    return ids


@pytest.fixture(scope="module")
def long_history(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StateStore, list[str]]]:
    path: Path = tmp_path_factory.mktemp("hist") / "state.db"
    store = StateStore.open(f"sqlite:///{path}")
    ids = _history(store)
    try:
        yield store, ids
    finally:
        store.close()


def _plans(store: StateStore, call: Any) -> tuple[Any, list[str]]:
    """Run ``call()``; return its result and the query plan lines of every SELECT it ran."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        result = call()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    lines: list[str] = []
    with store.engine.connect() as conn:
        for statement, params in seen:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            lines += [str(r[-1]) for r in rows]
    assert seen, "no query ran"
    return result, lines


def _full_scans(lines: list[str]) -> list[str]:
    """Plan lines reading a whole state table (a scan of a temporary b-tree or of a
    subquery's result is bounded by the limit and fine)."""
    return [ln for ln in lines if ln.startswith("SCAN lockgate_") and "USING" not in ln]


def test_run_list_and_one_run(long_history: tuple[StateStore, list[str]]) -> None:
    store, ids = long_history
    runs, plan = _plans(store, lambda: store.list_runs("p", limit=20))
    assert [r.run_id for r in runs] == ids[::-1][:20] and not _full_scans(plan)
    runs, plan = _plans(store, lambda: store.list_runs("p", limit=5, status="success"))
    assert len(runs) == 5 and not _full_scans(plan)
    detail, plan = _plans(store, lambda: store.get_run(ids[1234][:12], project="p"))
    assert detail is not None and detail.run.run_id == ids[1234]
    assert [s.dataset for s in detail.steps] == list(DATASETS)
    assert sum(len(c) for c in detail.checks.values()) == 4
    assert not _full_scans(plan), plan


def test_check_history(long_history: tuple[StateStore, list[str]]) -> None:
    store, ids = long_history
    hist, plan = _plans(store, lambda: store.check_history("p", "orders", limit=10))
    assert len(hist) == 20 and hist[0].run_id == ids[-1] and hist[-1].run_id == ids[-10]
    assert hist[0].finished_at == T0 + timedelta(hours=RUNS - 1)
    assert not _full_scans(plan), plan
    only, plan = _plans(store, lambda: store.check_history("p", "orders", 3, check_name="b"))
    assert [c.check_name for c in only] == ["b"] * 3 and not _full_scans(plan), plan


def test_scores(long_history: tuple[StateStore, list[str]]) -> None:
    store, ids = long_history
    got, plan = _plans(store, lambda: store.score_history("p", "orders", 5))
    assert [s.run_id for s in got][::2] == ids[::-1][:5] and not _full_scans(plan), plan
    got, plan = _plans(store, lambda: store.score_history("p", None, 5))
    assert {s.run_id for s in got} == set(ids[-5:]) and len(got) == 5 * 2 * 2
    assert not _full_scans(plan), plan
    since = T0 + timedelta(hours=RUNS - 3)
    got, plan = _plans(store, lambda: store.score_history("p", None, None, since=since))
    assert {s.run_id for s in got} == set(ids[-3:]) and not _full_scans(plan), plan
    assert got[0].run_id == ids[-1]  # newest run first


def test_run_prefix_is_a_key_range(long_history: tuple[StateStore, list[str]]) -> None:
    store, ids = long_history
    detail, plan = _plans(store, lambda: store.get_run(ids[7][:6].upper(), project="p"))
    assert detail is not None and detail.run.run_id == ids[7]
    assert any(ln.startswith("SEARCH lockgate_runs USING INDEX sqlite_autoindex") for ln in plan), (
        plan
    )
