"""The table-store seam: an adapter registered from outside the package carries a run; a
snapshot reads a table's log once; the project's write spec becomes the store's own."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from sqlglot import exp

import lockgate
from lockgate.project.models import WriteMode, WriteSpec
from lockgate.runloop.results import RunStatus, StepStatus
from lockgate.runloop.writes import table_write
from lockgate.storage import (
    CommitTag,
    DeltaStore,
    PublishResult,
    TableScan,
    TableSnapshot,
    TableWrite,
    register_store,
    store_for,
    store_kinds,
)
from lockgate.storage import base as storage_base
from lockgate.storage import delta as delta_module
from lockgate.storage.base import UnknownStore
from tests.run.helpers import csv_source, make_project, sql
from tests.storage.helpers import publish

ORDERS = """\
order_id,customer_id,amount
1,10,10.5
2,,20.0
3,12,7.0
"""


class RecordingStore(DeltaStore):
    """A toy adapter: the Delta store, recording what the run loop asks of it."""

    KIND = "recording"
    calls: ClassVar[list[tuple[str, str]]] = []
    instances: ClassVar[list[RecordingStore]] = []

    def __init__(self, warehouse: Path, *, cache_tables: bool = False) -> None:
        super().__init__(warehouse, cache_tables=cache_tables)
        self.instances.append(self)

    def snapshot(self, name: str) -> TableSnapshot | None:
        self.calls.append(("snapshot", name))
        return super().snapshot(name)

    def scan(self, name: str, version: int | None = None) -> TableScan:
        self.calls.append(("scan", name))
        return super().scan(name, version)

    def publish_query(
        self, name: str, con: Any, query: exp.Query, *, write: TableWrite, tag: CommitTag
    ) -> PublishResult:
        self.calls.append(("publish_query", name))
        return super().publish_query(name, con, query, write=write, tag=tag)

    def publish_quarantine(
        self, name: str, data: pa.RecordBatchReader, *, tag: CommitTag, replace: bool = False
    ) -> PublishResult:
        self.calls.append(("publish_quarantine", name))
        return super().publish_quarantine(name, data, tag=tag, replace=replace)


@pytest.fixture
def recording() -> Iterator[type[RecordingStore]]:
    RecordingStore.calls.clear()
    RecordingStore.instances.clear()
    register_store("recording", RecordingStore)
    yield RecordingStore
    storage_base._STORES.pop("recording", None)


def _project(tmp_path: Path, store: str) -> Path:
    return make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw_orders",
                "data/orders.csv",
                checks=[{"type": "not_null", "column": "customer_id"}],
            ),
            sql(
                "totals",
                "select count(*) as n, sum(amount) as amount from raw_orders",
                write={"mode": "overwrite"},
            ),
        ],
        files={"data/orders.csv": ORDERS},
        config={"store": store},
    )


def test_a_store_registered_outside_the_package_carries_a_run(
    tmp_path: Path, recording: type[RecordingStore]
) -> None:
    assert "recording" in store_kinds()
    root = _project(tmp_path, "recording")
    res = lockgate.run(root)
    assert res.status == RunStatus.SUCCESS, res.to_dict()
    assert recording.instances, "the run did not build its store through the registry"
    calls = recording.calls
    assert ("publish_query", "raw_orders") in calls
    assert ("publish_query", "totals") in calls
    assert ("publish_quarantine", "raw_orders") in calls
    assert ("scan", "raw_orders") in calls  # totals reads raw_orders through the store
    assert lockgate.read(root, "totals").to_pylist() == [{"n": 2, "amount": 17.5}]
    assert [
        r["order_id"] for r in lockgate.read(root, "raw_orders", quarantine=True).to_pylist()
    ] == [2]

    recording.calls.clear()
    again = lockgate.run(root)
    assert [s.status for s in again.steps] == [StepStatus.NOOP, StepStatus.NOOP]
    assert not [c for c in recording.calls if c[0].startswith("publish")]


def test_an_unknown_store_kind_is_a_clear_error(tmp_path: Path) -> None:
    root = _project(tmp_path, "deltta")
    with pytest.raises(UnknownStore, match="unknown table store 'deltta'") as err:
        lockgate.run(root)
    assert err.value.hint is not None and "did you mean 'delta'" in err.value.hint


def test_store_for_builds_the_delta_adapter(tmp_path: Path) -> None:
    store = store_for("delta", tmp_path / "w", cache_tables=True)
    assert isinstance(store, DeltaStore) and store.KIND == "delta"


# --------------------------------------------------------------------------------------------
# snapshot: one load of the log


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DeltaTable the Delta adapter opens (a load of the table's log)."""
    opened: list[str] = []

    class Counting(DeltaTable):
        def __init__(self, uri: str, *args: Any, **kwargs: Any) -> None:
            opened.append(uri)
            super().__init__(uri, *args, **kwargs)

    monkeypatch.setattr(delta_module, "DeltaTable", Counting)
    return opened


def test_snapshot_reads_the_log_once(tmp_path: Path, loads: list[str]) -> None:
    store = DeltaStore(tmp_path / "w")
    publish(store, "t", {"id": [1, 2]}, seq=1, watermark="2|int")
    publish(store, "t", {"id": [3]}, seq=2, watermark="3|int")
    loads.clear()
    snap = store.snapshot("t")
    assert len(loads) == 1
    assert snap is not None
    assert snap.version == 1 and snap.schema.names == ["id"] and snap.partition_by == ()
    assert snap.last_commit is not None
    assert (snap.last_commit.batch_id, snap.last_commit.watermark) == ("batch2", "3|int")
    assert (snap.last_commit.run_seq, snap.last_commit.rows) == (2, 1)
    assert snap.txn_version == 2 and snap.batch_id == "batch2"
    assert store.snapshot("missing") is None


def test_a_run_store_keeps_snapshots_until_it_writes(tmp_path: Path, loads: list[str]) -> None:
    store = DeltaStore(tmp_path / "w", cache_tables=True)
    publish(store, "t", {"id": [1]}, seq=1)
    loads.clear()
    first = store.snapshot("t")
    # every question the run loop asks before publishing: no further load of the log
    assert store.exists("t")
    assert store.version("t") == 0
    assert store.last_commit("t") == (first.last_commit if first else None)
    assert store.txn_version("t", "lockgate:t") == 1
    assert store.schema("t") == pa.schema([("id", pa.int64())])
    assert store.snapshot("t") is first
    assert len(loads) == 1
    # its own write: the next snapshot is read again and shows the new commit
    publish(store, "t", {"id": [2]}, seq=2)
    after = store.snapshot("t")
    assert after is not None and after.version == 1 and after.batch_id == "batch2"
    assert store.last_commit("t") == after.last_commit


def test_a_store_without_cache_reads_the_table_again(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "w")
    publish(store, "t", {"id": [1]}, seq=1)
    other = DeltaStore(tmp_path / "w")
    publish(other, "t", {"id": [2]}, seq=2)
    assert store.last_batch_id("t") == "batch2" and store.version("t") == 1


# --------------------------------------------------------------------------------------------
# the project's write spec → the store's


@pytest.mark.parametrize("mode", list(WriteMode))
def test_every_write_mode_converts(mode: WriteMode) -> None:
    spec = WriteSpec(mode=mode, keys=("id",), partition_by=("day",), order_by="ts")
    write = table_write(spec, "merge")
    assert write == TableWrite(str(mode), keys=("id",), partition_by=("day",), schema_mode="merge")  # type: ignore[arg-type]


def test_a_full_refresh_overwrites_table_and_schema() -> None:
    spec = WriteSpec(mode=WriteMode.MERGE, keys=("id",), partition_by=("day",))
    assert table_write(spec, "merge", full_refresh=True) == TableWrite(
        "overwrite", keys=("id",), partition_by=("day",), schema_mode="overwrite"
    )


def test_table_write_validates_like_the_config() -> None:
    with pytest.raises(ValueError, match="needs keys"):
        TableWrite("merge")
    with pytest.raises(ValueError, match="needs partition_by"):
        TableWrite("overwrite_partitions")
    with pytest.raises(ValueError, match="unknown write mode"):
        TableWrite("upsert")  # type: ignore[arg-type]


def test_storage_does_not_import_the_layers_above() -> None:
    package = Path(storage_base.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("lockgate.project", "lockgate.runloop")), module.name


# --------------------------------------------------------------------------------------------
# scan: the pinned version, as files or an Arrow dataset


def test_scan_pins_a_plain_version_as_its_files(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "w")
    publish(store, "t", {"id": [1, 2]}, seq=1)
    publish(store, "t", {"id": [3], "extra": ["x"]}, seq=2, schema_mode="merge")
    old, new = store.scan("t", 0), store.scan("t")
    assert (old.version, old.columns, old.dataset) == (0, ("id",), None)
    assert old.files == tuple(DeltaTable(str(store.path("t")), version=0).file_uris())
    assert (new.version, new.columns, len(new.files)) == (1, ("id", "extra"), 2)
    assert store.added_files("t", 0, 1) == [f for f in new.files if f not in old.files]


def test_scan_of_a_partitioned_table_is_an_arrow_dataset(tmp_path: Path) -> None:
    store = DeltaStore(tmp_path / "w")
    publish(store, "t", {"id": [1, 2], "p": ["a", "b"]}, seq=1, partition_by=("p",))
    scan = store.scan("t")
    assert scan.files == () and scan.dataset is not None
    assert sorted(scan.dataset.to_table().column("id").to_pylist()) == [1, 2]


def test_a_run_store_scans_its_kept_table_without_a_load(tmp_path: Path, loads: list[str]) -> None:
    store = DeltaStore(tmp_path / "w", cache_tables=True)
    publish(store, "t", {"id": [1]}, seq=1)
    version = store.version("t")
    loads.clear()
    assert store.scan("t", version).version == 0
    assert loads == []
