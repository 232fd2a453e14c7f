"""``lockgate replay``: rebuild a past run's tables from its pinned inputs and recorded
definitions into a scratch warehouse, and compare contents with what the run published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from deltalake import DeltaTable
from typer.testing import CliRunner

from lockgate.cli.app import app
from lockgate.ops.replay import InputVacuumed, replay
from lockgate.project import load_project
from lockgate.runloop.runner import run
from tests.ops.partition_helpers import events_csv, now, partitioned_project


def project(tmp_path: Path, extra: list[dict[str, object]]) -> Path:
    root = partitioned_project(tmp_path / "p", {1: [1, 2], 2: [3, None], 3: [4]})
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    doc["datasets"] += extra
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
    return root


SUMMARY = {
    "name": "summary",
    "transform": {"sql": "SELECT count(*) AS n, sum(amount) AS s FROM daily"},
    "write": {"mode": "overwrite"},
}
LOG = {"name": "log", "transform": {"sql": "SELECT id, amount FROM daily"}}  # append


def statuses(res: object) -> dict[str, str]:
    return {t.dataset: t.status for t in res.tables}  # type: ignore[attr-defined]


def test_replay_is_identical_after_sql_edits_and_later_runs(tmp_path: Path) -> None:
    root = project(tmp_path, [SUMMARY, LOG])
    first = run(load_project(root), now=now(4), max_workers=1)
    # later: the SQL is edited and new data arrives; the tables move on
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    for d in doc["datasets"]:
        if d["name"] == "summary":
            d["transform"]["sql"] = "SELECT count(*) * 10 AS n, sum(amount) AS s FROM daily"
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
    (root / "data/events.csv").write_text(events_csv({1: [1, 2], 2: [3, 5], 3: [4], 4: [9]}))
    second = run(load_project(root), now=now(5), max_workers=1)
    assert str(second.step("summary").status) == "success"
    res = replay(load_project(root), first.run_id, into=tmp_path / "scratch")
    assert statuses(res) == {
        "events": "cannot",  # a source whose file changed since
        "daily": "identical",  # partitioned: the intervals that run replaced
        "summary": "identical",  # replayed with the SQL as it was
        "log": "identical",  # append: the files that run added
    }
    assert res.ok and (tmp_path / "scratch" / "summary" / "_delta_log").is_dir()
    why = next(t.reason for t in res.tables if t.dataset == "events")
    assert why.startswith("source files changed since the run: data/events.csv (size ")
    # the run after the edit replays with the edited SQL
    res2 = replay(load_project(root), second.run_id, select=["summary"])
    assert statuses(res2) == {"summary": "identical"}


def test_a_non_deterministic_transform_is_reported_different(tmp_path: Path) -> None:
    noisy = {"name": "noisy", "transform": {"sql": "SELECT id, random() AS r FROM daily"}}
    root = project(tmp_path, [noisy])
    first = run(load_project(root), now=now(4), max_workers=1)
    out = CliRunner().invoke(
        app, ["replay", first.run_id[:10], "--select", "noisy", "--json", "--project", str(root)]
    )
    assert out.exit_code == 1, out.output
    (table,) = json.loads(out.stdout)["tables"]
    assert table["status"] == "different" and table["recorded_rows"] == table["replayed_rows"]
    assert "only in the replay" in table["reason"]


def test_a_vacuumed_input_names_the_missing_version(tmp_path: Path) -> None:
    root = project(tmp_path, [])
    first = run(load_project(root), now=now(4), max_workers=1)
    (root / "data/events.csv").write_text(events_csv({1: [7], 2: [8]}))
    run(load_project(root), select=["events"], now=now(4), max_workers=1)
    DeltaTable(str(root / "warehouse" / "events")).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    with pytest.raises(InputVacuumed, match=r"'events'@0"):
        replay(load_project(root), first.run_id)
    out = CliRunner().invoke(app, ["replay", first.run_id, "--project", str(root)])
    assert out.exit_code == 1 and "'events'@0" in out.output


def test_an_unknown_run_is_a_usage_error(tmp_path: Path) -> None:
    root = project(tmp_path, [])
    out = CliRunner().invoke(app, ["replay", "nope", "--project", str(root)])
    assert out.exit_code == 2 and "lockgate runs" in out.output


def _tables(res: object) -> dict[str, object]:
    return {t.dataset: t for t in res.tables}  # type: ignore[attr-defined]


def test_a_file_source_replays_from_its_pinned_files(tmp_path: Path) -> None:
    root = project(tmp_path, [])
    first = run(load_project(root), now=now(4), max_workers=1)
    res = replay(load_project(root), first.run_id)
    assert statuses(res) == {"events": "identical", "daily": "identical"}


def test_a_tampered_source_file_is_never_reported_identical(tmp_path: Path) -> None:
    import os

    root = project(tmp_path, [])
    first = run(load_project(root), now=now(4), max_workers=1)
    csv = root / "data/events.csv"
    st = csv.stat()
    # same size, modification time put back: the fingerprint cannot see it, the content can
    text = csv.read_text()
    tampered = text.replace(",4\n", ",5\n")
    assert tampered != text and len(tampered) == len(text)
    csv.write_text(tampered)
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = replay(load_project(root), first.run_id, select=["events"])
    (t,) = res.tables
    assert t.status == "different" and "1 row(s) only in the replay" in t.reason
    assert not res.ok
    # the file removed: said, not a crash
    csv.unlink()
    res = replay(load_project(root), first.run_id, select=["events"])
    (t,) = res.tables
    assert t.status == "cannot" and "events.csv" in t.reason, t.reason


def test_an_incremental_transform_replays_from_the_watermark_at_its_start(
    tmp_path: Path,
) -> None:
    inc = {
        "name": "inc",
        "transform": {"sql": "SELECT id, amount FROM daily"},
        "incremental": {"cursor": "id"},
    }
    root = project(tmp_path, [inc])
    first = run(load_project(root), now=now(4), max_workers=1)
    assert first.step("inc").rows_out == 3
    (root / "data/events.csv").write_text(events_csv({1: [1, 2], 2: [3, None], 3: [4], 4: [8, 9]}))
    second = run(load_project(root), now=now(5), max_workers=1)
    assert second.step("inc").rows_out == 2  # ids 6, 7: past the watermark (5)
    res = replay(load_project(root), second.run_id, select=["inc"])
    (t,) = res.tables
    # rebuilt from the table, watermark and history as run 2 found them: only the new rows
    assert (t.status, t.recorded_rows, t.replayed_rows) == ("identical", 2, 2), t
    res = replay(load_project(root), first.run_id, select=["inc"])
    (t,) = res.tables
    assert (t.status, t.recorded_rows, t.replayed_rows) == ("identical", 3, 3), t
    # the table's log before run 2 removed: its state at the start cannot be read
    import os

    for f in (root / "warehouse/inc/_delta_log").glob("*.json"):
        if int(f.stem) < second.step("inc").output_version:  # type: ignore[operator]
            os.remove(f)
    res = replay(load_project(root), second.run_id, select=["inc"])
    (t,) = res.tables
    assert t.status == "cannot" and "found it (version 0) is no longer" in t.reason, t


def test_incremental_and_unpinned_sources_say_why_they_are_not_replayed(tmp_path: Path) -> None:
    from lockgate.ops.replay import _files_changed, _source_changed
    from lockgate.project.models import DatasetSpec

    inc = {
        "name": "inc",
        "transform": {"sql": "SELECT id, amount FROM daily"},
        "incremental": {"cursor": "id"},
    }
    root = project(tmp_path, [inc])
    first = run(load_project(root), now=now(4), max_workers=1)
    out = CliRunner().invoke(
        app, ["replay", first.run_id, "--select", "inc", "--json", "--project", str(root)]
    )
    assert out.exit_code == 0, out.output
    (t,) = json.loads(out.stdout)["tables"]
    assert t["status"] == "identical", t  # the first run: nothing before it
    spec = DatasetSpec.model_validate({"name": "pg", "source": {"type": "file", "path": "x.csv"}})
    why = _source_changed(load_project(root), spec, {"type": "postgres", "run": "abc"})
    assert why is not None and "no pinned version" in why
    files = [{"path": f"f{i}.csv", "size": i, "mtime_ns": 1} for i in range(8)]
    moved = [{**f, "size": 100} for f in files]
    assert _files_changed(files, files) is None
    assert _files_changed(files, moved) == (
        "source files changed since the run: f0.csv (size 0 -> 100), f1.csv (size 1 -> 100), "
        "f2.csv (size 2 -> 100), f3.csv (size 3 -> 100), f4.csv (size 4 -> 100) and 3 more"
    )
