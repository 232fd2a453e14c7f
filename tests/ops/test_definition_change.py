"""A changed definition of a partitioned dataset (its SQL, checks, ...) makes the intervals
done under the old one due again (``partition.on_change: restate``, the default), visible in
the plan with the reason; ``keep`` leaves them; settings that do not shape the rows
(description, owner, lag) restate nothing; ranges recorded before definitions were kept
count as current."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import yaml

import lockgate
from lockgate.ops.backfill import plan_backfill, run_backfill
from lockgate.project import load_project
from lockgate.runloop.plan import Action, Cause, plan
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from lockgate.state.intervals import done_by_definition
from lockgate.state.tables import interval_ranges
from tests.ops.partition_helpers import day_epoch, now, partitioned_project, ranges


def project(tmp_path: Path, **partition: object) -> Path:
    root = partitioned_project(tmp_path / "p", {d: [d, 10 * d] for d in range(1, 6)})
    if partition:
        edit(root, lambda d: d["partition"].update(partition))
    assert run(load_project(root), now=now(6), max_workers=1).ok
    return root


def edit(root: Path, change: object) -> None:
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    daily = next(d for d in doc["datasets"] if d["name"] == "daily")
    change(daily)  # type: ignore[operator]
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))


def times_100(daily: dict[str, object]) -> None:
    daily["transform"] = {
        "sql": "SELECT id, CAST(ts AS TIMESTAMP) AS ts, amount * 100 AS amount FROM events"
    }


def amounts(root: Path) -> list[int]:
    t = lockgate.read(load_project(root), "daily", as_="arrow")
    return sorted(r["amount"] for r in t.to_pylist())


def daily_plan(root: Path, day: int = 6) -> tuple[Action, Cause, str]:
    s = plan(load_project(root), select=["daily"], now=now(day)).step("daily")
    return s.action, s.cause, s.reason


def definitions(root: Path) -> dict[str | None, list[tuple[int, int]]]:
    p = load_project(root)
    state = StateStore.open(p.state_url)
    try:
        return done_by_definition(state, p.config.name, "daily")
    finally:
        state.close()


def test_edited_sql_makes_done_intervals_due_again(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert daily_plan(root)[:2] == (Action.SKIP, Cause.UP_TO_DATE)
    old = set(definitions(root))
    times_100_before = [a * 100 for a in amounts(root)]
    edit(root, times_100)
    action, cause, reason = daily_plan(root)
    assert (action, cause) == (Action.RUN, Cause.DEFINITION)
    assert "definition changed (SQL in datasets/main.yaml" in reason, reason
    assert "5 due interval(s) from 2024-01-01 to 2024-01-05" in reason
    assert "5 of them done under an older definition, due again" in reason
    s = run(load_project(root), now=now(6), max_workers=1).step("daily")
    assert str(s.status) == "success" and len(s.intervals) == 5
    assert any("due again" in w for w in s.warnings)
    assert amounts(root) == times_100_before  # every day replaced under the new SQL
    after = definitions(root)
    assert len(after) == 1 and not set(after) & old  # one range, under the new definition
    assert after.popitem()[1] == [(day_epoch(1), day_epoch(6))]
    assert daily_plan(root)[:2] == (Action.SKIP, Cause.UP_TO_DATE)


def test_a_changed_check_restates_and_a_description_does_not(tmp_path: Path) -> None:
    root = project(tmp_path)
    edit(root, lambda d: d.update(description="daily amounts", owner="ops@example.com"))
    edit(root, lambda d: d["partition"].update(lag="1h"))  # a window setting: not the rows
    assert daily_plan(root)[:2] == (Action.SKIP, Cause.UP_TO_DATE)
    edit(root, lambda d: d["partition"].update(lag="0s"))
    edit(
        root,
        lambda d: d["checks"].append({"type": "between", "column": "amount", "max": 20}),
    )
    action, cause, reason = daily_plan(root)
    assert (action, cause) == (Action.RUN, Cause.DEFINITION) and "5 of them" in reason
    s = run(load_project(root), now=now(6), max_workers=1).step("daily")
    # day 3..5 now fail the new check (30 > 20 ...) and are blocked: they stay due under it
    statuses = {i["interval"]: i["status"] for i in s.intervals}
    assert statuses["2024-01-01"] == "published" and statuses["2024-01-03"] == "blocked"
    action, cause, reason = daily_plan(root)
    assert action == Action.RUN and "3 due interval(s) from 2024-01-03 to 2024-01-05" in reason
    assert "3 of them done under an older definition" in reason


def test_on_change_keep_leaves_done_intervals_until_restated(tmp_path: Path) -> None:
    root = project(tmp_path, on_change="keep")
    before = amounts(root)
    edit(root, times_100)
    action, cause, reason = daily_plan(root)
    assert (action, cause) == (Action.SKIP, Cause.UP_TO_DATE)
    assert "5 interval(s) done under an older definition kept" in reason
    # the next day runs under the new SQL; the old days keep their rows
    (root / "data/events.csv").write_text(
        (root / "data/events.csv").read_text() + "11,2024-01-06 01:30:00,6\n"
    )
    r = run(load_project(root), now=now(7), max_workers=1)
    assert [i["interval"] for i in r.step("daily").intervals] == ["2024-01-06"]
    assert amounts(root) == sorted([*before, 600])
    assert len(definitions(root)) == 2 and ranges(root) == [(day_epoch(1), day_epoch(7))]
    # restating days 1..2 puts them under the new definition
    p = load_project(root)
    bp = plan_backfill(p, "daily", start="2024-01-01", end="2024-01-03", restate=True, now=now(7))
    assert run_backfill(p, bp, now=now(7)).ok
    by_def = definitions(root)
    new = next(d for d, rs in by_def.items() if any(lo <= day_epoch(6) < hi for lo, hi in rs))
    assert by_def[new] == [(day_epoch(1), day_epoch(3)), (day_epoch(6), day_epoch(7))]
    assert amounts(root) == sorted([100, 1000, 200, 2000, 3, 30, 4, 40, 5, 50, 600])
    assert "3 interval(s) done under an older definition kept" in daily_plan(root, 7)[2]


def test_ranges_recorded_before_definitions_were_kept_count_as_current(tmp_path: Path) -> None:
    root = project(tmp_path)
    p = load_project(root)
    state = StateStore.open(p.state_url)
    with state._tx() as conn:  # as migration 0012 leaves rows recorded by older versions
        conn.execute(sa.update(interval_ranges).values(definition=None))
    state.close()
    assert set(definitions(root)) == {None}
    assert daily_plan(root)[:2] == (Action.SKIP, Cause.UP_TO_DATE)


def test_a_backfill_after_a_definition_change_redoes_only_its_window(tmp_path: Path) -> None:
    root = project(tmp_path)
    edit(root, times_100)
    p = load_project(root)
    bp = plan_backfill(p, "daily", start="2024-01-01", end="2024-01-03", now=now(6))
    assert bp.intervals == 2  # done under the old definition: missing under the new one
    assert run_backfill(p, bp, now=now(6)).ok
    assert sorted(len(rs) for rs in definitions(root).values()) == [1, 1]
    _, cause, reason = daily_plan(root)
    assert cause == Cause.DEFINITION and "3 due interval(s) from 2024-01-03" in reason
