"""``lockgate backfill NAME[+] --restate``: done intervals of a window run again and replace
their rows (idempotent), downstream intervals that overlap follow, the dry run lists what
would be restated and changes nothing; a restated interval the gate now blocks keeps its
old rows and stays due; a restatement killed half-way leaves the rest due."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.ops.backfill import plan_backfill, run_backfill
from lockgate.project import load_project
from lockgate.runloop.runner import run
from tests.ops.partition_helpers import day_epoch, events_csv, now, partitioned_project, ranges

REPO = Path(__file__).resolve().parents[2]


def amounts(root: Path, table: str = "daily") -> dict[int, int | None]:
    t = lockgate.read(load_project(root), table, as_="arrow")
    return {r["id"]: r["amount"] for r in t.to_pylist()}


def five_days(tmp_path: Path, **kw: object) -> Path:
    """Days 1..5 of two rows each (ids 1..10, amount = 10*day + i), all published."""
    data = {d: [10 * d, 10 * d + 1] for d in range(1, 6)}
    root = partitioned_project(tmp_path / "p", data, **kw)  # type: ignore[arg-type]
    r = run(load_project(root), now=now(6), max_workers=1)
    assert r.ok and ranges(root) == [(day_epoch(1), day_epoch(6))]
    return root


def change_source(root: Path, days: dict[int, list[int | None]]) -> None:
    """New source data, published to ``events``; ``daily``'s done days are not re-run."""
    (root / "data/events.csv").write_text(events_csv(days))
    r = run(load_project(root), select=["events"], now=now(6), max_workers=1)
    assert r.ok


def cli(*args: str) -> tuple[int, str]:
    out = CliRunner().invoke(app, list(args))
    return out.exit_code, out.stdout if out.exit_code == 0 else out.output


def test_restate_runs_done_intervals_again_and_replaces_them(tmp_path: Path) -> None:
    root = five_days(tmp_path)
    before = amounts(root)
    new = {d: [10 * d, 10 * d + 1] for d in range(1, 6)}
    new[2], new[3] = [200, 201], [300, 301]
    change_source(root, new)
    # a plain run or backfill does nothing: every day is done
    p = load_project(root)
    assert (
        plan_backfill(p, "daily", start="2024-01-01", end="2024-01-06", now=now(6)).intervals == 0
    )
    assert str(run(p, now=now(6), max_workers=1).step("daily").status) == "noop"
    assert amounts(root) == before

    code, out = cli(
        *("backfill", "daily", "--restate", "--start", "2024-01-02", "--end", "2024-01-04"),
        *("--dry-run", "--json", "--project", str(root)),
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["restate"] is True and doc["restated"] == {"daily": 2} and doc["intervals"] == 2
    assert [list(c["intervals"]["daily"]) for c in doc["chunks"]] == [
        ["2024-01-02T00:00:00+00:00"],
        ["2024-01-03T00:00:00+00:00"],
    ]
    code, text = cli(
        *("backfill", "daily", "--restate", "--start", "2024-01-02", "--end", "2024-01-04"),
        *("--dry-run", "--project", str(root)),
    )
    assert "restate daily: 2 done interval(s) from 2024-01-02" in text, text
    assert amounts(root) == before and ranges(root) == [(day_epoch(1), day_epoch(6))]

    bp = plan_backfill(p, "daily", start="2024-01-02", end="2024-01-04", restate=True, now=now(6))
    res = run_backfill(p, bp, now=now(6))
    assert res.ok and len(res.runs) == 2
    got = amounts(root)
    assert len(got) == 10  # replaced, not appended: still two rows a day
    assert [got[3], got[4], got[5], got[6]] == [200, 201, 300, 301]
    assert [got[1], got[2], got[7], got[8]] == [before[1], before[2], before[7], before[8]]
    assert ranges(root) == [(day_epoch(1), day_epoch(6))]
    for r in res.runs:
        s = r.step("daily")
        assert s.rows_in == s.rows_out + s.rows_quarantined + s.rows_skipped
    # idempotent: restating the same window again changes nothing
    again = run_backfill(
        p,
        plan_backfill(p, "daily", start="2024-01-02", end="2024-01-04", restate=True, now=now(6)),
        now=now(6),
    )
    assert again.ok and amounts(root) == got and ranges(root) == [(day_epoch(1), day_epoch(6))]


def test_restate_follows_downstream_and_fills_missing_ones_too(tmp_path: Path) -> None:
    data = {d: [d] for d in range(1, 32)}
    root = partitioned_project(tmp_path / "p", data)
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    doc["datasets"] += [
        {
            "name": "monthly",
            "transform": {
                "sql": "SELECT date_trunc('month', ts) AS m, sum(amount) AS total FROM daily "
                "GROUP BY 1"
            },
            "partition": {"column": "m", "grain": "month", "start": "2024-01-01"},
        },
        {
            "name": "n_days",
            "transform": {"sql": "SELECT count(*) AS n FROM daily"},
            "write": {"mode": "overwrite"},
        },
    ]
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
    feb2 = datetime(2024, 2, 2, tzinfo=UTC)
    p = load_project(root)
    assert run(p, now=feb2, max_workers=1).ok
    total = lockgate.read(p, "monthly", as_="arrow").to_pylist()[0]["total"]
    assert total == sum(range(1, 32))
    # day 31 is lost from the state store's record (as if never done): the restatement
    # of days 30..31 runs 30 again and fills 31
    from lockgate.state import StateStore
    from lockgate.state.intervals import remove_done

    state = StateStore.open(p.state_url)
    remove_done(state, p.config.name, "daily", [(day_epoch(31), day_epoch(31) + 86_400)])
    state.close()
    data[30], data[31] = [3000], [3100]
    change_source(root, data)
    bp = plan_backfill(p, "daily+", start="2024-01-30", end="2024-02-01", restate=True, now=feb2)
    assert bp.partitioned == ("daily", "monthly") and bp.after == ("n_days",)
    assert bp.restated == {"daily": 1, "monthly": 1} and bp.intervals == 3
    code, out = cli(
        *("backfill", "--select", "daily+", "--restate", "--start", "2024-01-30"),
        *("--end", "2024-02-01", "--dry-run", "--json", "--project", str(root)),
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["restated"] == {"daily": 1, "monthly": 1} and doc["after"] == ["n_days"]
    res = run_backfill(p, bp, max_active=2, now=feb2)
    assert res.ok, [(s.dataset, s.status, s.reason) for r in res.runs for s in r.steps]
    total = lockgate.read(p, "monthly", as_="arrow").to_pylist()
    assert total == [{"m": datetime(2024, 1, 1), "total": sum(range(1, 30)) + 3000 + 3100}]
    assert ranges(root) == [(day_epoch(1), day_epoch(31) + 86_400)]
    assert lockgate.read(p, "n_days", as_="arrow").to_pylist() == [{"n": 31}]


def test_a_restated_interval_the_gate_blocks_keeps_its_rows_and_stays_due(
    tmp_path: Path,
) -> None:
    root = five_days(tmp_path)
    before = amounts(root)
    bad = {d: [10 * d, 10 * d + 1] for d in range(1, 6)}
    bad[2] = [999, None]  # not_null fails: the day is blocked
    bad[3] = [300, 301]
    change_source(root, bad)
    p = load_project(root)
    bp = plan_backfill(p, "daily", start="2024-01-02", end="2024-01-04", restate=True, now=now(6))
    res = run_backfill(p, bp, now=now(6))
    assert [str(r.step("daily").status) for r in res.runs] == ["blocked", "success"]
    for r in res.runs:  # the blocked day's rows are counted too, by name
        s = r.step("daily")
        assert s.rows_in == 2 and s.rows_in == s.rows_out + s.rows_quarantined + s.rows_skipped
    assert res.runs[0].step("daily").skip_reasons == {"interval_blocked": 2}
    got = amounts(root)
    assert [got[3], got[4]] == [before[3], before[4]]  # the old rows of day 2 stay
    assert [got[5], got[6]] == [300, 301]
    # day 2 is due again (not done), the others are done
    assert ranges(root) == [(day_epoch(1), day_epoch(2)), (day_epoch(3), day_epoch(6))]
    assert plan_backfill(p, "daily", now=now(6)).intervals == 1


def test_restate_needs_a_start_and_clips_the_window(tmp_path: Path) -> None:
    root = five_days(tmp_path)
    code, out = cli("backfill", "daily", "--restate", "--project", str(root))
    assert code == 2 and "--restate needs --start" in out
    p = load_project(root)
    # before partition.start and after what is due: nothing to restate
    early = plan_backfill(
        p, "daily", start="2023-01-01", end="2023-12-01", restate=True, now=now(6)
    )
    assert early.intervals == 0 and early.restated == {}
    late = plan_backfill(p, "daily", start="2024-01-05", end="2024-03-01", restate=True, now=now(6))
    assert late.intervals == 1 and late.restated == {"daily": 1}
    code, out = cli(
        *("backfill", "daily", "--restate", "--start", "2024-01-04", "--end", "2024-01-02"),
        "--project",
        str(root),
    )
    assert code == 2 and "must be after" in out


def _restate(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lockgate", "backfill", "daily", "--restate"]
    return subprocess.run(
        [*cmd, "--start", "2024-01-01", "--end", "2024-01-05", "--project", str(root), "--json"],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_kill_9_mid_restatement_leaves_the_rest_due(tmp_path: Path) -> None:
    """SIGKILL after the 2nd chunk's commit, before its record: days 2..4 are due again (the
    restatement removed them first), day 1 restated and done; a plain backfill finishes."""
    new = {d: [10 * d + 5, 10 * d + 6] for d in range(1, 6)}
    probe = five_days(tmp_path / "probe")
    change_source(probe, new)
    log = tmp_path / "points.log"
    done = _restate(probe, {"LOCKGATE_CRASH_AT": "1000000", "LOCKGATE_CRASH_LOG": str(log)})
    assert done.returncode == 0, done.stderr
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    commits = [i for i, name in enumerate(points) if name.startswith("daily: committed")]
    assert len(commits) == 4
    at = commits[1] + 1

    root = five_days(tmp_path / "real")
    change_source(root, new)
    killed = _restate(root, {"LOCKGATE_CRASH_AT": str(at)})
    assert killed.returncode == -9, killed.stderr
    assert ranges(root) == [(day_epoch(1), day_epoch(2)), (day_epoch(5), day_epoch(6))]
    got = amounts(root)
    assert [got[3], got[4]] == [25, 26]  # day 2 committed, not recorded: due all the same
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "lockgate",
            "backfill",
            "daily",
            "--end",
            "2024-01-05",
            "--project",
            str(root),
            "--json",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["intervals"] == 3
    assert ranges(root) == [(day_epoch(1), day_epoch(6))]
    got = amounts(root)
    assert len(got) == 10 and all(got[2 * d - 1] == 10 * d + 5 for d in range(1, 5))


def test_a_bad_date_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    """``--start 2024-13-01`` was an "unexpected ValueError" (exit 1, "--debug for the
    traceback"); it is the user's error: exit 2, naming the option, nothing restated."""
    root = five_days(tmp_path)
    for args in (("--start", "2024-13-01"), ("--start", "2024-01-02", "--end", "yesterday")):
        code, out = cli("backfill", "daily", "--restate", *args, "--project", str(root))
        assert code == 2, out
        assert "not a date or timestamp" in out and "unexpected" not in out
        assert ("--end" if "yesterday" in args else "--start") in out
    assert ranges(root) == [(day_epoch(1), day_epoch(6))]
