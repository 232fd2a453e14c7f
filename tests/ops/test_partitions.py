"""Time-partitioned datasets: due intervals, per-interval checks and gate, merged done
ranges, idempotent re-runs (an interval is replaced, never appended twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.errors import ConfigError
from lockgate.project import load_project
from lockgate.runloop.results import RunResult, StepResult
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from lockgate.state.intervals import clear_done
from tests.ops.partition_helpers import day_epoch, events_csv, now, partitioned_project, ranges
from tests.run.helpers import csv_source, make_project


def go(root: Path, day: int, **kw: object) -> RunResult:
    return run(load_project(root), now=now(day), max_workers=1, **kw)  # type: ignore[arg-type]


def accounted(s: StepResult) -> None:
    assert s.rows_in == s.rows_out + s.rows_quarantined + s.rows_skipped, s
    assert s.rows_skipped == sum(s.skip_reasons.values())


def rows(root: Path, table: str = "daily") -> list[tuple[object, ...]]:
    t = lockgate.read(load_project(root), table, as_="arrow")
    return sorted((r["id"], r["amount"]) for r in t.to_pylist())


def test_a_bad_day_is_blocked_and_the_good_days_publish(tmp_path: Path) -> None:
    root = partitioned_project(tmp_path / "p", {1: [1, 2], 2: [3, None], 3: [4]})
    daily = go(root, 4).step("daily")
    assert str(daily.status) == "success"
    assert [(i["interval"], i["status"]) for i in daily.intervals] == [
        ("2024-01-01", "published"),
        ("2024-01-02", "blocked"),
        ("2024-01-03", "published"),
    ]
    assert rows(root) == [(1, 1), (2, 2), (5, 4)]
    assert daily.skip_reasons == {"interval_blocked": 2}
    accounted(daily)
    # two ranges, not one row per day; the blocked day stays due
    assert ranges(root) == [(day_epoch(1), day_epoch(2)), (day_epoch(3), day_epoch(4))]
    again = go(root, 4).step("daily")
    assert str(again.status) == "blocked"
    assert [i["interval"] for i in again.intervals] == ["2024-01-02"]
    # the source is fixed: the day publishes and the ranges merge into one
    (root / "data/events.csv").write_text(events_csv({1: [1, 2], 2: [3, 30], 3: [4]}))
    fixed = go(root, 4).step("daily")
    assert str(fixed.status) == "success" and fixed.rows_out == 2
    assert ranges(root) == [(day_epoch(1), day_epoch(4))]
    assert rows(root) == [(1, 1), (2, 2), (3, 3), (4, 30), (5, 4)]
    # nothing due until a day ends; then only that day (empty: row_count blocks it)
    assert str(go(root, 4).step("daily").status) == "noop"
    later = go(root, 5).step("daily")
    assert [i["interval"] for i in later.intervals] == ["2024-01-04"]
    assert str(later.status) == "blocked"


def test_re_running_an_interval_replaces_it(tmp_path: Path) -> None:
    root = partitioned_project(tmp_path / "p", {1: [1, 2], 2: [3]})
    go(root, 3)
    before = rows(root)
    # a crash between the commit and the record: the state store forgot the ranges
    project = load_project(root)
    state = StateStore.open(project.state_url)
    clear_done(state, project.config.name, "daily")
    state.close()
    again = go(root, 3).step("daily")
    assert again.rows_out == 3 and str(again.status) == "success"
    assert rows(root) == before  # replaced, not appended a second time
    # a changed interval replaces its rows: a row removed upstream disappears
    (root / "data/events.csv").write_text(events_csv({1: [1], 2: [3]}))
    state = StateStore.open(project.state_url)
    clear_done(state, project.config.name, "daily")
    state.close()
    go(root, 3)
    assert rows(root) == [(1, 1), (2, 3)]


def test_quarantine_gate_per_interval_keeps_bad_rows(tmp_path: Path) -> None:
    root = partitioned_project(tmp_path / "p", {1: [1, None], 2: [3]}, gate="quarantine")
    daily = go(root, 3).step("daily")
    assert daily.rows_out == 2 and daily.rows_quarantined == 1
    accounted(daily)
    bad = lockgate.read(load_project(root), "daily", quarantine=True).to_pylist()
    assert [r["id"] for r in bad] == [2]
    assert ranges(root) == [(day_epoch(1), day_epoch(3))]


def test_lag_and_start_limit_what_is_due(tmp_path: Path) -> None:
    root = partitioned_project(
        tmp_path / "p", {1: [1], 2: [2], 3: [3], 4: [4]}, start="2024-01-02", lag="1d"
    )
    daily = go(root, 5).step("daily")
    # day 1 is before start; day 4 ends at day 5 00:00 and is due only a day later
    assert [i["interval"] for i in daily.intervals] == ["2024-01-02", "2024-01-03"]
    assert rows(root) == [(2, 2), (3, 3)]


def test_partitioned_source_counts_rows_outside_due_intervals(tmp_path: Path) -> None:
    csv = (
        "id,ts,amount\n1,2024-01-01 10:00:00,1\n2,,2\n3,2024-01-09 10:00:00,3\n"
        "4,2023-12-31 10:00:00,4\n"
    )
    ds = csv_source(
        "events",
        "data/events.csv",
        columns={"id": "BIGINT", "ts": "TIMESTAMP", "amount": "BIGINT"},
        partition={"column": "ts", "grain": "day", "start": "2024-01-01"},
    )
    root = make_project(tmp_path / "p", [ds], files={"data/events.csv": csv})
    s = go(root, 3).step("events")
    assert s.rows_in == 4 and s.rows_out == 1
    assert s.rows_quarantined == 1  # the NULL ts: in no interval
    assert s.skip_reasons == {"outside_due_intervals": 2}  # before start, not due yet
    accounted(s)
    bad = lockgate.read(load_project(root), "events", quarantine=True).to_pylist()
    assert bad[0]["_lg_failed_checks"] == ["partition_null"]


def test_month_grain_over_a_timestamptz_column(tmp_path: Path) -> None:
    csv = "id,ts\n1,2024-01-31 23:30:00+00\n2,2024-02-01 00:30:00+00\n3,2024-03-01 00:00:00+00\n"
    ds = csv_source(
        "events",
        "data/events.csv",
        columns={"id": "BIGINT", "ts": "TIMESTAMPTZ"},
        partition={"column": "ts", "grain": "month", "start": "2024-01-01"},
    )
    root = make_project(tmp_path / "p", [ds], files={"data/events.csv": csv})
    s = go(root, 31).step("events")  # January 31: no month has ended yet
    assert str(s.status) == "noop"
    p = load_project(root)
    from datetime import UTC, datetime

    s = run(p, now=datetime(2024, 3, 5, tzinfo=UTC), max_workers=1).step("events")
    assert [i["interval"] for i in s.intervals] == ["2024-01", "2024-02"]
    assert s.rows_out == 2 and s.skip_reasons == {"outside_due_intervals": 1}
    # replacing February again keeps January (a timestamptz predicate on the Delta side)
    state = StateStore.open(p.state_url)
    from lockgate.state.intervals import add_done

    clear_done(state, p.config.name, "events")
    add_done(state, p.config.name, "events", [(day_epoch(1), day_epoch(31) + 86_400)])
    state.close()
    s = run(p, now=datetime(2024, 3, 5, tzinfo=UTC), max_workers=1).step("events")
    assert [i["interval"] for i in s.intervals] == ["2024-02"]
    assert sorted(r["id"] for r in lockgate.read(p, "events", as_="arrow").to_pylist()) == [1, 2]


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    bad = csv_source(
        "e",
        "data/e.csv",
        partition={"column": "ts", "grain": "day", "start": "2024-01-01"},
        incremental={"cursor": "ts"},
    )
    root = make_project(tmp_path / "p", [bad], files={"data/e.csv": "ts\n2024-01-01\n"})
    with pytest.raises(ConfigError, match="'partition' and 'incremental'"):
        load_project(root)
    bad = csv_source(
        "e", "data/e.csv", partition={"column": "ts", "grain": "week", "start": "nope"}
    )
    root = make_project(tmp_path / "q", [bad], files={"data/e.csv": "ts\n2024-01-01\n"})
    with pytest.raises(ConfigError) as e:
        load_project(root)
    assert "grain" in str(e.value) and "start" in str(e.value)


def test_partition_column_of_the_wrong_type_fails_the_step(tmp_path: Path) -> None:
    ds = csv_source(
        "e",
        "data/e.csv",
        columns={"ts": "VARCHAR"},
        partition={"column": "ts", "grain": "day", "start": "2024-01-01"},
    )
    root = make_project(tmp_path / "p", [ds], files={"data/e.csv": "ts\nx\n"})
    s = go(root, 3).step("e")
    assert str(s.status) == "failed" and "not a date or timestamp" in s.reason
