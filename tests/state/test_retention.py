"""Retention: old runs go with their steps, attempts, check results and scores; daily score
and check aggregates stay; each dataset's newest published step (its resume token) stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.state import StateStore
from lockgate.state import tables as t
from lockgate.state.dashboard import daily_scores
from lockgate.state.retention import daily_checks, prune
from tests.run.helpers import csv_source, make_project

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def _age(state: StateStore, run_id: str, days: float) -> None:
    """Move a run (its steps and scores) ``days`` into the past."""
    at = NOW - timedelta(days=days)
    with state._tx() as conn:
        conn.execute(sa.update(t.runs).where(t.runs.c.run_id == run_id).values(started_at=at))
        conn.execute(
            sa.update(t.steps)
            .where(t.steps.c.run_id == run_id)
            .values(started_at=at, finished_at=at)
        )
        conn.execute(
            sa.update(t.quality_scores)
            .where(t.quality_scores.c.run_id == run_id)
            .values(created_at=at)
        )


def _count(state: StateStore, table: sa.Table) -> int:
    with state._read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_prune_keeps_aggregates_and_the_newest_published_step(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        [
            csv_source(
                "orders",
                "data/orders.csv",
                checks=[{"type": "not_null", "column": "amount"}],
            ),
        ],
        files={"data/orders.csv": "id,amount\n1,10\n2,\n"},
    )
    project = lockgate.load_project(root)
    ids = []
    for i in range(4):  # four runs, each a new file content
        (root / "data/orders.csv").write_text("id,amount\n" + f"{i},\n1,{i}\n")
        ids.append(lockgate.run(project).run_id)
    state = StateStore.open(project.state_url)
    try:
        for rid, age in zip(ids, (40, 35, 31, 1), strict=True):
            _age(state, rid, age)
        before_checks = _count(state, t.check_results)
        dry = prune(state, project.config.name, days=30, now=NOW, dry_run=True)
        assert dry.runs == 3 and _count(state, t.runs) == 4
        res = prune(state, project.config.name, days=30, now=NOW)
        assert res.runs == 3 and res.check_results == 3 and res.steps == 3
        assert {r.run_id for r in state.list_runs(project.config.name)} == {ids[3]}
        assert _count(state, t.check_results) == before_checks - 3
        # the pruned days stay as aggregates
        kept = daily_checks(state, project.config.name, "orders", "amount_not_null")
        assert [(k["day"], k["results"], k["failed"]) for k in kept] == [
            ((NOW - timedelta(days=d)).strftime("%Y-%m-%d"), 1, 1) for d in (40, 35, 31)
        ]
        days = {d["day"] for d in daily_scores(state, project.config.name, "orders")}
        assert (NOW - timedelta(days=40)).strftime("%Y-%m-%d") in days
        # prune again: nothing more to do
        assert prune(state, project.config.name, days=30, now=NOW).runs == 0
        # everything old: the newest published step's run stays (resume token, definition)
        res = prune(state, project.config.name, days=1, now=NOW + timedelta(days=5))
        assert res.runs == 0 and res.kept_runs == [ids[3]]
    finally:
        state.close()
    # and the next run still knows the dataset is up to date
    assert [s.status for s in lockgate.run(project).steps] == ["noop"]


def test_prune_cli_needs_a_horizon_and_reads_the_config(tmp_path: Path) -> None:
    root = make_project(tmp_path, [csv_source("a", "data/a.csv")], files={"data/a.csv": "id\n1\n"})
    assert lockgate.run(root).ok
    cli = CliRunner()
    r = cli.invoke(app, ["prune", "-p", str(root)])
    assert r.exit_code == 2 and "retention" in r.output
    (root / "lockgate.yaml").write_text(
        (root / "lockgate.yaml").read_text() + "retention: {days: 7}\n"
    )
    r = cli.invoke(app, ["prune", "-p", str(root), "--json"])
    assert r.exit_code == 0, r.output
    assert '"runs": 0' in r.output
    bad = (root / "lockgate.yaml").read_text().replace("days: 7", "days: 0")
    (root / "lockgate.yaml").write_text(bad)
    assert cli.invoke(app, ["prune", "-p", str(root)]).exit_code == 2


def test_prune_on_postgresql(pg_url: str) -> None:
    """The same pruning and aggregation on PostgreSQL (migration 0010 there too)."""
    with StateStore.open(pg_url) as state:
        runs = []
        for age in (50, 45, 2):
            r = state.start_run("p")
            step = state.start_step(r.run_id, "p", "d")
            state.record_check_results(
                step,
                r.run_id,
                "p",
                "d",
                [
                    {"name": "c", "passed": age != 45, "observed": float(age)},
                    {"name": "anomaly_c", "passed": True, "observed": 1.0, "expected": {"low": 0}},
                ],
            )
            state.finish_step(step, status="failed")
            state.finish_run(r.run_id, "failed")
            runs.append(r.run_id)
            _age(state, r.run_id, age)
        res = prune(state, "p", days=30, now=NOW)
        assert res.runs == 2 and res.check_results == 4
        kept = daily_checks(state, "p", "d", "c")
        assert [(k["results"], k["failed"], k["observed_mean"]) for k in kept] == [
            (1, 0, 50.0),
            (1, 1, 45.0),
        ]
        assert [r.run_id for r in state.list_runs("p")] == [runs[2]]
