"""``lockgate backfill``: missing intervals in order, chunked, concurrent chunks committing in
order, downstream datasets following, and resuming after ``kill -9`` of a real subprocess
(a deterministic crash point, no sleeps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.ops.backfill import plan_backfill, run_backfill
from lockgate.project import load_project
from lockgate.runloop.runner import run
from lockgate.storage import store_for
from tests.ops.partition_helpers import day_epoch, now, partitioned_project, ranges

REPO = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, days: int = 10) -> Path:
    root = partitioned_project(tmp_path / "p", {d: [d, 100 + d] for d in range(1, days + 1)})
    run(load_project(root), select=["events"], now=now(days + 1), max_workers=1)
    return root


def ids(root: Path, table: str = "daily") -> list[int]:
    t = lockgate.read(load_project(root), table, as_="arrow")
    return sorted(r["id"] for r in t.to_pylist())


def test_dry_run_lists_the_missing_intervals_in_chunks(tmp_path: Path) -> None:
    root = project(tmp_path)
    p = load_project(root)
    run_backfill(p, plan_backfill(p, "daily", start="2024-01-03", end="2024-01-05", now=now(11)))
    bp = plan_backfill(p, "daily", start="2024-01-02", end="2024-01-08", chunk=2, now=now(11))
    got = [[lo for lo, _ in c.intervals["daily"]] for c in bp.chunks]
    assert got == [[day_epoch(2), day_epoch(5)], [day_epoch(6), day_epoch(7)]]
    out = CliRunner().invoke(
        app,
        [
            *("backfill", "daily", "--start", "2024-01-02", "--end", "2024-01-08"),
            *("--chunk", "2", "--dry-run", "--json", "--project", str(root)),
        ],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["intervals"] == 4 and len(doc["chunks"]) == 2
    assert ranges(root) == [(day_epoch(3), day_epoch(5))]  # the dry run ran nothing


def test_concurrent_chunks_fill_every_interval_once_in_order(tmp_path: Path) -> None:
    root = project(tmp_path)
    p = load_project(root)
    bp = plan_backfill(p, "daily", end="2024-01-11", chunk=2, now=now(11))
    res = run_backfill(p, bp, max_active=3, now=now(11))
    assert res.ok and len(res.runs) == 5
    assert ranges(root) == [(day_epoch(1), day_epoch(11))]
    assert ids(root) == list(range(1, 21))
    # the table's commits follow the chunks' order (and their run seqs)
    hist = store_for("delta", p.warehouse_path).history("daily", limit=None)
    runs_in_commit_order = [h["lockgate"]["run_id"] for h in reversed(hist) if h.get("lockgate")]
    assert runs_in_commit_order == [r.run_id for r in res.runs]
    assert [r.seq for r in res.runs] == sorted(r.seq for r in res.runs)
    again = plan_backfill(p, "daily", end="2024-01-11", chunk=2, now=now(11))
    assert again.intervals == 0 and not run_backfill(p, again).runs


def test_downstream_datasets_follow(tmp_path: Path) -> None:
    root = project(tmp_path, days=4)
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    doc["datasets"] += [
        {
            "name": "daily_sum",
            "transform": {"sql": "SELECT ts, amount * 2 AS amount, id FROM daily"},
            "partition": {"column": "ts", "grain": "day", "start": "2024-01-01"},
        },
        {"name": "total", "transform": {"sql": "SELECT count(*) AS n FROM daily_sum"}},
    ]
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
    p = load_project(root)
    bp = plan_backfill(p, "daily+", end="2024-01-05", chunk=3, now=now(5))
    assert bp.partitioned == ("daily", "daily_sum") and bp.after == ("total",)
    res = run_backfill(p, bp, max_active=2, now=now(5))
    assert res.ok, [(s.dataset, s.status, s.reason) for r in res.runs for s in r.steps]
    assert ids(root, "daily_sum") == list(range(1, 9))
    assert ranges(root, "daily_sum") == [(day_epoch(1), day_epoch(5))]
    assert lockgate.read(p, "total", as_="arrow").to_pylist() == [{"n": 8}]


def test_a_dataset_that_is_not_partitioned_is_a_usage_error(tmp_path: Path) -> None:
    root = project(tmp_path, days=2)
    out = CliRunner().invoke(app, ["backfill", "events", "--project", str(root)])
    assert out.exit_code == 2 and "not partitioned" in out.output


def _backfill(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lockgate", "backfill", "daily", "--end", "2024-01-11"]
    return subprocess.run(
        [*cmd, "--chunk", "2", "--project", str(root), "--json"],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_kill_9_between_a_commit_and_its_record_then_resume(tmp_path: Path) -> None:
    # probe: the crash points a full backfill passes (a copy of the project), to find the
    # one right after the 2nd chunk's commit, before the run records it
    probe = project(tmp_path / "probe")
    log = tmp_path / "points.log"
    done = _backfill(probe, {"LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)})
    assert done.returncode == 0, done.stderr
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    commits = [i for i, name in enumerate(points) if name.startswith("daily: committed")]
    at = commits[1] + 1  # 1-based: the 2nd chunk's table commit

    root = project(tmp_path / "real")
    killed = _backfill(root, {"LOCKGATE_CRASH_AT": str(at)})
    assert killed.returncode == -9, killed.stderr
    # chunk 1 recorded; chunk 2 committed (its rows are in the table) but not recorded
    assert ranges(root) == [(day_epoch(1), day_epoch(3))]
    assert ids(root) == [1, 2, 3, 4, 5, 6, 7, 8]

    resumed = _backfill(root, {})
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["intervals"] == 8  # days 3..10: chunk 2 again (replaced), then the rest
    assert ranges(root) == [(day_epoch(1), day_epoch(11))]
    assert ids(root) == list(range(1, 21))  # every row once: chunk 2 was replaced


def test_a_versions_run_id_ignores_commits_made_after_it_was_read(tmp_path: Path) -> None:
    """delta-rs reads history as the log is now: a table read at version 0, then committed
    to by another writer (a backfill's next chunk), must still name version 0's run."""
    import pyarrow as pa

    from lockgate.storage.base import CommitTag, TableWrite

    mine, other = store_for("delta", tmp_path), store_for("delta", tmp_path)
    data = pa.table({"x": [1]})
    mine.publish("t", data.to_reader(), write=TableWrite(), tag=CommitTag("run_a", 1, "b1"))
    health = mine.inspect("t")
    assert health is not None and health.version == 0
    other.publish("t", data.to_reader(), write=TableWrite(), tag=CommitTag("run_b", 2, "b2"))
    assert health.newest_run_id() == "run_a"
