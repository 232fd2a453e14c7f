"""Recorded training sets: every set gets an id and a state-store record of its pinned inputs;
``--replay ID`` re-creates it bit for bit after the feature table, the labels file and even
the view's definition have moved on; tampered or vacuumed inputs are clear errors."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from lockgate.cli.app import app
from lockgate.errors import InputError
from lockgate.features import training_set
from lockgate.features.recorded import ID_KEY, replay_training_set, table_sha256
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.state.features import pinned_versions
from tests.features.conftest import events_project, write_events

D = datetime(2024, 1, 1)
CET = timezone(timedelta(hours=1))


def _day(n: float) -> datetime:
    return D + timedelta(days=n)


def _labels() -> pa.Table:
    # NULL keys, duplicate rows, an unknown key, zoned timestamps (CET), out of order
    ts = [_day(d).replace(tzinfo=CET) for d in (5, 2, 5, 9, 5, 1)]
    return pa.table(
        {
            "customer_id": pa.array([2, 1, 2, None, 77, 1], pa.int64()),
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="+01:00")),
            "label": [1, 0, 1, 0, 1, 1],
        }
    )


def _project(tmp_path: Path) -> Path:
    root = events_project(tmp_path / "p", ttl="30d")
    write_events(
        root,
        [
            (1, _day(1), _day(1), 10.0),
            (2, _day(1), _day(1), 20.0),
            (2, _day(3), _day(6), 21.0),  # late: known only from day 6
            (None, _day(1), _day(1), 99.0),
        ],
    )
    return root


def test_replay_recreates_the_set_after_everything_moved(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    labels = _labels()
    first = training_set(project, "ev", labels)
    id_ = first.schema.metadata[ID_KEY].decode()
    assert first.column("label").to_pylist() == labels.column("label").to_pylist()  # order
    # key 2 on day 5: the day-3 correction was written on day 6, so not known yet; key 1 at
    # 00:00 CET on day 1 is 23:00 UTC the day before: its 00:00 UTC row is not known yet
    assert first.column("spend").to_pylist() == [20.0, 10.0, 20.0, None, None, None]
    # the table changes, and so does the view's definition (a 1-day TTL)
    write_events(root, [(2, _day(2), _day(2), 999.0)], mode="overwrite")
    events_project(root, ttl="1d")
    project = load_project(root)
    assert training_set(project, "ev", labels, record=False).column("spend").to_pylist() != (
        first.column("spend").to_pylist()
    )
    again = replay_training_set(project, id_[:10])  # a unique prefix is enough
    assert again.identical and again.record.id == id_
    assert again.table.equals(first, check_metadata=True)
    assert table_sha256(again.table) == again.record.result_sha256
    with StateStore.open(project.state_url) as state:
        assert pinned_versions(state, "feat") == {"events": {0}}
    assert again.record.views["ev"]["version"] == 0
    assert again.record.entities["kind"] == "arrow" and again.record.rows == 6


def test_cli_replay_writes_the_same_bytes(tmp_path: Path) -> None:
    root = _project(tmp_path)
    labels_csv = tmp_path / "labels.csv"
    pacsv.write_csv(_labels(), labels_csv)
    runner = CliRunner()
    args = ["features", "training-set", "ev", "-e", str(labels_csv), "-p", str(root), "--json"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "a.parquet")])
    assert res.exit_code == 0, res.output
    id_ = json.loads(res.output)["id"]
    labels_csv.write_text("customer_id,event_timestamp\n1,2024-01-02\n")  # the file moved on
    write_events(root, [(1, _day(0), _day(0), 5.0)])
    res = runner.invoke(
        app,
        [
            "features",
            "training-set",
            "--replay",
            id_,
            "-o",
            str(tmp_path / "b.parquet"),
            "-p",
            str(root),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["identical"] is True
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    listed = runner.invoke(app, ["features", "training-sets", "-p", str(root), "--json"])
    assert [r["id"] for r in json.loads(listed.output)] == [id_]
    assert json.loads(listed.output)[0]["views"] == {"ev": "events@v0"}


def test_tampered_or_vacuumed_inputs_are_clear_errors(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    id_ = training_set(project, "ev", _labels()).schema.metadata[ID_KEY].decode()
    copy = root / ".lockgate" / "training_sets" / id_ / "entities.arrow"
    original = copy.read_bytes()
    copy.write_bytes(original + b"x")
    with pytest.raises(InputError, match="changed since it was made"):
        replay_training_set(project, id_)
    copy.write_bytes(original)
    shutil.rmtree(root / "warehouse" / "events")  # recreated: version 0 is not the same data
    write_events(root, [(1, _day(1), _day(1), 1.0)])
    shutil.rmtree(root / "warehouse" / "events" / "_delta_log")
    with pytest.raises(InputError, match="can no longer be read"):
        replay_training_set(project, id_)


def test_entity_rows_from_a_dataset_are_pinned_by_version(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    out = training_set(project, "ev", "events", timestamp_column="day", full_feature_names=True)
    rec = replay_training_set(project, out.schema.metadata[ID_KEY].decode())
    assert rec.record.entities == {"kind": "dataset", "dataset": "events", "version": 0}
    write_events(root, [(1, _day(9), _day(9), 1.0)])  # the labels (and features) grow
    assert replay_training_set(project, rec.record.id).table.num_rows == 4


def test_the_result_hash_ignores_chunking_and_bytes_under_nulls() -> None:
    import struct

    validity = pa.py_buffer(bytes([0b101]))  # rows 0 and 2 valid, row 1 NULL
    garbage = [
        pa.Array.from_buffers(
            pa.float64(), 3, [validity, pa.py_buffer(struct.pack("<3d", 1.0, junk, -0.0))]
        )
        for junk in (0.0, 12345.678)
    ]
    t1 = pa.table(
        {"x": garbage[0], "d": pa.array([1, None, 2], pa.date32()), "s": ["a", None, "c"]}
    )
    t2 = pa.table(
        {
            "x": pa.chunked_array([garbage[1].slice(0, 1), garbage[1].slice(1)]),
            "d": pa.array([1, None, 2], pa.date32()),
            "s": pa.chunked_array([["a", None], ["c"]]),
        }
    )
    assert t1.equals(t2) and table_sha256(t1) == table_sha256(t2)
    t3 = t1.set_column(0, "x", pa.array([1.0, None, 0.0]))  # -0.0 -> 0.0 is a different value
    assert table_sha256(t3) != table_sha256(t1)
    assert table_sha256(t1.replace_schema_metadata({"k": "v"})) == table_sha256(t1)
