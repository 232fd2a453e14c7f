"""``lockgate optimize``: small files compacted without changing a row, a watermark or an
exactly-once position; incremental readers downstream neither lose nor duplicate a row; the
Delta log checkpoints itself on lockgate's commit path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.errors import LockHeld, UsageError
from lockgate.optimize import optimize
from lockgate.project import load_project
from lockgate.state import StateStore
from lockgate.storage import DeltaStore
from lockgate.storage.base import CommitTag, TableWrite
from tests.run.helpers import csv_source, make_project, sql

RUNS = 8


def _project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "TIMESTAMP", "amount": "DOUBLE"},
                incremental={"cursor": "ts"},
                checks=[{"type": "not_null", "column": "amount"}],
            ),
            sql("t", "select id, ts, amount * 2 as doubled from raw", incremental={"cursor": "ts"}),
            sql(
                "total",
                "select count(*) as n, sum(amount) as s from raw",
                write={"mode": "overwrite"},
            ),
        ],
        files={"data/f00.csv": "id,ts,amount\n0,2024-01-01 00:00:00,1\n"},
    )


def _add_file(root: Path, i: int) -> None:
    # two good rows and one with a NULL amount (quarantined) per file
    rows = [
        f"{10 * i},2024-01-{i + 1:02d} 01:00:00,{i}",
        f"{10 * i + 1},2024-01-{i + 1:02d} 02:00:00,{i + 0.5}",
        f"{10 * i + 2},2024-01-{i + 1:02d} 03:00:00,",
    ]
    (root / f"data/f{i:02d}.csv").write_text("id,ts,amount\n" + "\n".join(rows) + "\n")


def _rows(root: Path, table: str) -> list[dict[str, Any]]:
    quarantine = table.endswith("__quarantine")
    got = lockgate.read(root, table.removesuffix("__quarantine"), quarantine=quarantine)
    keep = [c for c in got.column_names if c in ("id", "ts", "amount", "doubled", "n", "s")]
    return sorted(got.select(keep).to_pylist(), key=lambda r: json.dumps(r, default=str))


def _accounted(step: Any) -> None:
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped, step
    assert step.rows_skipped == sum(step.skip_reasons.values()), step


def test_compaction_keeps_rows_positions_and_downstream_increments(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert lockgate.run(root).ok
    for i in range(1, RUNS):
        _add_file(root, i)
        assert lockgate.run(root).ok
    store = DeltaStore(load_project(root).warehouse_path)
    tables = ("raw", "raw__quarantine", "t")
    before = {name: _rows(root, name) for name in (*tables, "total")}
    files = {name: len(store.open_table(name).file_uris()) for name in tables}
    assert all(n >= RUNS - 1 for n in files.values()), files
    txn = {name: store.txn_version(name, f"lockgate:{name}") for name in ("raw", "t")}
    last = {name: store.last_commit(name) for name in tables}

    done = {c.table: c for c in optimize(root, min_files=4)}

    for name in tables:
        c = done[name]
        assert (c.files, c.files_removed, c.files_added) == (files[name], files[name], 1), c
        assert c.version == store.version(name)
        assert len(store.open_table(name).file_uris()) == 1
        assert _rows(root, name) == before[name]  # not a row changed
        # lockgate's last commit (batch id, watermark) is still the last run's, not OPTIMIZE's
        assert store.last_commit(name) == last[name]
    assert done["total"].version is None  # one file: left alone
    assert {name: store.txn_version(name, f"lockgate:{name}") for name in txn} == txn

    # a new file after the compaction: t reads raw's rewritten file again (its files are
    # "added" since t's last read) and must skip those rows, not publish them twice
    _add_file(root, RUNS)
    result = lockgate.run(root)
    assert result.ok
    for s in result.steps:
        _accounted(s)
    t = result.step("t")
    assert t.rows_out == 2 and t.skip_reasons.get("already_published", 0) > 0, t
    ids = [r["id"] for r in _rows(root, "t")]
    assert len(ids) == len(set(ids)) == 2 * RUNS + 1
    assert _rows(root, "total") == [
        {
            "n": 2 * RUNS + 1,
            "s": pytest.approx(sum([1] + [i + (i + 0.5) for i in range(1, RUNS + 1)])),
        }
    ]
    # and nothing new: every step up to date or a no-op
    again = lockgate.run(root)
    assert all(s.rows_out == 0 for s in again.steps if s.dataset != "total"), again.steps


def test_dry_run_unknown_tables_bad_options_and_a_held_lock(tmp_path: Path) -> None:
    root = _project(tmp_path)
    for i in range(1, 4):
        _add_file(root, i)
        assert lockgate.run(root).ok
    store = DeltaStore(load_project(root).warehouse_path)
    version = store.version("raw")
    dry = {c.table: c for c in optimize(root, ["raw"], min_files=2, dry_run=True)}
    assert dry["raw"].small_files == dry["raw"].files >= 3 and dry["raw"].version is None
    assert store.version("raw") == version  # nothing committed
    assert optimize(root, ["raw"], min_files=50)[0].version is None  # too few small files
    with pytest.raises(UsageError, match="unknown table"):
        optimize(root, ["nope"])
    with pytest.raises(UsageError, match="min-files"):
        optimize(root, min_files=1)
    project = load_project(root)
    with (
        StateStore.open(project.state_url) as state,
        state.lock(project.name),
        pytest.raises(LockHeld),
    ):
        optimize(root, min_files=2)  # a run holds the project: no racing its commit
    assert store.version("raw") == version


def test_cli_json(tmp_path: Path) -> None:
    root = _project(tmp_path)
    for i in range(1, 4):
        _add_file(root, i)
        assert lockgate.run(root).ok
    out = CliRunner().invoke(app, ["optimize", "--min-files", "2", "--json", "-p", str(root)])
    assert out.exit_code == 0, out.output
    got = {c["table"]: c for c in json.loads(out.stdout)}
    assert got["raw"]["files_added"] == 1 and got["raw"]["files_removed"] >= 3
    bad = CliRunner().invoke(app, ["optimize", "missing_table", "-p", str(root)])
    assert bad.exit_code != 0 and "unknown table" in bad.output


def test_lockgate_commits_checkpoint_the_log_every_hundred_versions(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "wh")
    for seq in range(1, 102):
        batch = pa.table({"id": [seq]})
        store.publish(
            "events",
            pa.RecordBatchReader.from_batches(batch.schema, batch.to_batches()),
            write=TableWrite(mode="append"),
            tag=CommitTag(f"run{seq}", seq, f"b{seq}"),
        )
    log = store.path("events") / "_delta_log"
    assert (log / "_last_checkpoint").is_file()
    assert sorted(p.name for p in log.glob("*.checkpoint.parquet")) == [
        "00000000000000000099.checkpoint.parquet"  # the 100th commit
    ]
    assert store.txn_version("events", "lockgate:events") == 101
