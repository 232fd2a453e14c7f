"""Retention wiring: ``lockgate vacuum`` deletes the files of old versions but never those of
the versions a recorded training set read, so ``--replay`` still re-creates it bit for bit;
materialisation keeps working after a vacuum (its diff reads only the log)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lockgate.errors import LockgateError, UsageError
from lockgate.features.materialize import materialize
from lockgate.features.offline import training_set
from lockgate.features.online import SQLiteOnlineStore
from lockgate.features.recorded import ID_KEY, replay_training_set
from lockgate.project import load_project
from lockgate.vacuum import pinned, vacuum
from tests.features.conftest import events_project, write_events

D = datetime(2024, 1, 1)


def _day(n: int) -> datetime:
    return D + timedelta(days=n)


def _labels() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([2, 1, 2, 3], pa.int64()),
            # seconds: a unit Parquet cannot hold (the kept copy must still replay exactly)
            "event_timestamp": pa.array([_day(5), _day(2), _day(9), _day(9)], pa.timestamp("s")),
            "label": [1, 0, 1, 0],
        }
    )


def _files(root: Path, version: int) -> set[str]:
    return set(DeltaTable(str(root / "warehouse" / "events"), version=version).file_uris())


def test_vacuum_keeps_pinned_versions_and_the_replay_is_bit_for_bit(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [(1, _day(1), _day(1), 10.0), (2, _day(1), _day(1), 20.0)])  # v0
    project = load_project(root)
    store = SQLiteOnlineStore(root / ".lockgate" / "online.db")
    materialize(project, store=store, now=_day(20))  # marks v0
    pinned_set = training_set(project, "ev", _labels())  # reads v0
    by_dataset = training_set(
        project, "ev", "events", timestamp_column="day", full_feature_names=True
    )  # entities: the dataset at v0
    write_events(root, [(2, _day(3), _day(3), 21.0)], mode="overwrite")  # v1: v0's files removed
    write_events(root, [(3, _day(4), _day(4), 30.0)])  # v2
    write_events(root, [(1, _day(6), _day(6), 11.0)], mode="overwrite")  # v3
    v0, v1, v2 = _files(root, 0), _files(root, 1), _files(root, 2)
    assert pinned(project) == {"events": {0}}

    dry = vacuum(project, retain_hours=0, dry_run=True)
    assert all(Path(f).exists() for f in v0 | v1 | v2)  # a dry run deletes nothing
    cli = [sys.executable, "-m", "lockgate", "vacuum", "--retain-hours", "0", "--json"]
    done = subprocess.run([*cli, "-p", str(root)], capture_output=True, text=True, check=True)
    (report,) = [r for r in json.loads(done.stdout) if r["dataset"] == "events"]
    assert report["kept_versions"] == [0]
    assert report["deleted"] == next(list(r.deleted) for r in dry if r.dataset == "events")
    gone = (v1 | v2) - v0
    assert gone and all(not Path(f).exists() for f in gone)  # unpinned old versions went
    assert all(Path(f).exists() for f in v0)  # the pinned one stayed
    # no new table version (a VACUUM commit would make downstream datasets run again)
    assert DeltaTable(str(root / "warehouse" / "events")).version() == 3

    for made in (pinned_set, by_dataset):
        again = replay_training_set(project, made.schema.metadata[ID_KEY].decode())
        assert again.identical
        assert again.table.equals(made)  # bit for bit, the metadata aside
    # the mark's version (v0) had its files kept only because of the pin; the diff from it
    # reads the log, so an incremental run after a vacuum equals a full refresh
    inc = materialize(project, store=store, now=_day(20))["ev"]
    assert inc.mode == "incremental" and (inc.from_version, inc.to_version) == (0, 3)
    ref = SQLiteOnlineStore(tmp_path / "ref.db")
    materialize(project, store=ref, now=_day(20), full_refresh=True)
    keys = [(k,) for k in (1, 2, 3, 4)]
    assert store.read("ev", keys) == ref.read("ev", keys)


def test_an_unpinned_old_version_is_really_gone(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [(1, _day(1), _day(1), 10.0)])
    write_events(root, [(1, _day(2), _day(2), 11.0)], mode="overwrite")
    project = load_project(root)
    (res,) = vacuum(project, ["events"], retain_hours=0)
    assert res.kept_versions == () and len(res.deleted) == 1
    with pytest.raises(Exception):  # noqa: B017 - delta-rs/arrow raise their own types
        DeltaTable(str(root / "warehouse" / "events"), version=0).to_pyarrow_table()
    # and the retention horizon protects recent versions: nothing within 168 h goes
    write_events(root, [(1, _day(3), _day(3), 12.0)], mode="overwrite")
    assert [r.deleted for r in vacuum(project, ["events"])] == [()]


def test_bad_arguments(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    project = load_project(root)
    with pytest.raises(UsageError, match="unknown dataset"):
        vacuum(project, ["nope"])
    with pytest.raises(UsageError, match="retain-hours"):
        vacuum(project, retain_hours=-1)
    assert vacuum(project) == []  # nothing published: nothing to do


def test_a_pinned_version_whose_log_is_gone_is_reported_not_fatal(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [(1, _day(1), _day(1), 10.0)])  # v0
    project = load_project(root)
    made = training_set(project, "ev", _labels())  # pins v0
    write_events(root, [(1, _day(2), _day(2), 11.0)], mode="overwrite")  # v1
    write_events(root, [(1, _day(3), _day(3), 12.0)], mode="overwrite")  # v2
    table = root / "warehouse" / "events"
    DeltaTable(str(table)).create_checkpoint()
    (table / "_delta_log" / f"{0:020d}.json").unlink()  # what log clean-up does to old versions
    (res,) = vacuum(project, ["events"], retain_hours=0)
    assert res.lost_versions == (0,) and res.kept_versions == ()
    assert len(res.deleted) == 2  # v0's and v1's files: nothing can keep v0 readable now
    with pytest.raises(LockgateError, match="can no longer be read"):
        replay_training_set(project, made.schema.metadata[ID_KEY].decode())
    cli = [sys.executable, "-m", "lockgate", "vacuum", "--dry-run", "-p", str(root)]
    shown = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "pinned v0 can no longer be read" in shown
