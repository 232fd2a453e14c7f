"""DeltaStore.publish: write modes, idempotency, metadata, schema evolution, empty batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lockgate.errors import SchemaContractError, StorageError
from lockgate.project.models import WriteMode
from lockgate.storage import CommitTag, DeltaStore, PublishError, TableNotFound, TableWrite
from tests.storage.helpers import publish, reader, rows

A, OW, OP, M = (
    WriteMode.APPEND,
    WriteMode.OVERWRITE,
    WriteMode.OVERWRITE_PARTITIONS,
    WriteMode.MERGE,
)


# ---------------------------------------------------------------------------- write modes


def test_append_creates_then_appends(store: DeltaStore) -> None:
    r1 = publish(store, "t", {"id": [1, 2, 3], "v": ["a", "b", "c"]}, seq=1)
    assert (r1.version, r1.rows, r1.skipped) == (0, 3, False)
    r2 = publish(store, "t", {"id": [4], "v": ["d"]}, seq=2)
    assert (r2.version, r2.rows) == (1, 1)
    assert [r["id"] for r in rows(store, "t")] == [1, 2, 3, 4]
    assert store.version("t") == 1
    assert store.schema("t") == pa.schema([("id", pa.int64()), ("v", pa.string())])


def test_overwrite_replaces_whole_table(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2, 3]}, seq=1, mode=OW)
    publish(store, "t", {"id": [7, 8]}, seq=2, mode=OW)
    assert rows(store, "t") == [{"id": 7}, {"id": 8}]


def test_overwrite_with_empty_batch_empties_table(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2]}, seq=1, mode=OW)
    res = publish(store, "t", pa.table({"id": pa.array([], pa.int64())}), seq=2, mode=OW)
    assert (res.version, res.rows, res.skipped) == (1, 0, False)
    assert rows(store, "t") == []


def test_overwrite_schema_mode_overwrite_replaces_schema_and_partitioning(
    store: DeltaStore,
) -> None:
    publish(store, "t", {"id": [1], "p": ["a"]}, seq=1, partition_by=("p",))
    publish(
        store,
        "t",
        {"id": ["x"], "q": [1]},
        seq=2,
        mode=OW,
        partition_by=("q",),
        schema_mode="overwrite",
    )
    assert store.schema("t") == pa.schema([("id", pa.string()), ("q", pa.int64())])
    assert DeltaTable(str(store.path("t"))).metadata().partition_columns == ["q"]
    assert rows(store, "t") == [{"id": "x", "q": 1}]


PARTITIONED = {
    "id": [1, 2, 3, 4, 5],
    "p": ["a", "a", "b", "c", None],
    "v": [10, 20, 30, 40, 50],
}


@pytest.mark.parametrize("explicit_values", [False, True], ids=["spooled", "explicit"])
def test_overwrite_partitions_replaces_only_batch_partitions(
    store: DeltaStore, explicit_values: bool
) -> None:
    publish(store, "t", PARTITIONED, seq=1, partition_by=("p",))
    assert DeltaTable(str(store.path("t"))).metadata().partition_columns == ["p"]
    batch = {"id": [6, 7, 8], "p": ["a", None, "d"], "v": [60, 70, 80]}
    values = [{"p": "a"}, {"p": None}, {"p": "d"}] if explicit_values else None
    res = publish(store, "t", batch, seq=2, mode=OP, partition_by=("p",), partition_values=values)
    assert (res.version, res.rows) == (1, 3)
    got = {(r["p"], r["id"]) for r in rows(store, "t")}
    # a and NULL replaced, b and c untouched, d added
    assert got == {("a", 6), (None, 7), ("b", 3), ("c", 4), ("d", 8)}
    assert not list((store.warehouse / ".lockgate_spool").glob("*")), "spool left behind"


def test_overwrite_partitions_multi_column_with_dates(store: DeltaStore) -> None:
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    first = {"d": [d1, d1, d2, d2], "r": ["eu", "us", "eu", "us"], "v": [1, 2, 3, 4]}
    publish(store, "t", first, seq=1, partition_by=("d", "r"))
    publish(
        store, "t", {"d": [d1], "r": ["us"], "v": [99]}, seq=2, mode=OP, partition_by=("d", "r")
    )
    assert sorted(r["v"] for r in rows(store, "t")) == [1, 3, 4, 99]


def test_overwrite_partitions_rejects_rows_outside_declared_partitions(store: DeltaStore) -> None:
    publish(store, "t", PARTITIONED, seq=1, partition_by=("p",))
    with pytest.raises(PublishError, match="outside the partitions"):
        publish(
            store,
            "t",
            {"id": [6, 7], "p": ["a", "b"], "v": [0, 0]},
            seq=2,
            mode=OP,
            partition_by=("p",),
            partition_values=[{"p": "a"}],
        )
    assert store.version("t") == 0
    assert store.txn_version("t", "lockgate:t") == 1


def test_overwrite_partitions_creates_missing_table(store: DeltaStore) -> None:
    res = publish(store, "t", PARTITIONED, seq=1, mode=OP, partition_by=("p",))
    assert (res.version, res.rows) == (0, 5)
    assert DeltaTable(str(store.path("t"))).metadata().partition_columns == ["p"]


def test_merge_upserts_on_keys(store: DeltaStore) -> None:
    publish(
        store,
        "t",
        {"k1": [1, 1, 2], "k2": ["x", "y", "x"], "v": [1, 2, 3]},
        seq=1,
        mode=M,
        keys=("k1", "k2"),
    )
    res = publish(
        store,
        "t",
        {"k1": [1, 3], "k2": ["y", "x"], "v": [20, 30]},
        seq=2,
        mode=M,
        keys=("k1", "k2"),
    )
    assert (res.version, res.rows) == (1, 2)
    assert rows(store, "t") == [
        {"k1": 1, "k2": "x", "v": 1},
        {"k1": 1, "k2": "y", "v": 20},
        {"k1": 2, "k2": "x", "v": 3},
        {"k1": 3, "k2": "x", "v": 30},
    ]


def test_merge_key_missing_from_batch_is_a_schema_error(store: DeltaStore) -> None:
    with pytest.raises(SchemaContractError, match="'id'"):
        publish(store, "t", {"k": [1]}, seq=1, mode=M, keys=("id",))


# ---------------------------------------------------------------------------- idempotency


def test_republish_same_run_seq_is_a_noop(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2]}, seq=5)
    assert store.txn_version("t", "lockgate:t") == 5
    consumed = []

    def batches() -> Iterator[pa.RecordBatch]:
        consumed.append(True)
        yield pa.record_batch({"id": [1, 2]})

    again = store.publish(
        "t",
        pa.RecordBatchReader.from_batches(pa.schema([("id", pa.int64())]), batches()),
        write=TableWrite(),
        tag=CommitTag("run5", 5, "batch5"),
    )
    assert again.skipped and again.version == 0 and "already published" in again.reason
    assert not consumed, "a skipped publish must not read the batch"
    older = publish(store, "t", {"id": [3]}, seq=4)
    assert older.skipped
    assert store.version("t") == 0 and len(rows(store, "t")) == 2
    newer = publish(store, "t", {"id": [3]}, seq=6)
    assert not newer.skipped and store.txn_version("t", "lockgate:t") == 6


def test_idempotency_is_per_table(store: DeltaStore) -> None:
    publish(store, "a", {"id": [1]}, seq=1)
    assert not publish(store, "b", {"id": [1]}, seq=1).skipped
    assert store.txn_version("a", "lockgate:b") is None
    assert store.txn_version("missing", "lockgate:missing") is None


# ---------------------------------------------------------------------------- metadata


def test_last_commit_round_trips_metadata(store: DeltaStore) -> None:
    assert store.last_commit("t") is None
    publish(store, "t", {"id": [1, 2, 3]}, seq=1, watermark="2024-01-01|timestamp")
    publish(store, "t", {"id": [4, 5]}, seq=2, mode=M, keys=("id",), watermark="42|int")
    last = store.last_commit("t")
    assert last is not None
    assert (last.version, last.run_id, last.run_seq, last.batch_id, last.watermark, last.rows) == (
        1,
        "run2",
        2,
        "batch2",
        "42|int",
        2,
    )
    assert last.operation == "MERGE"
    assert last.timestamp.tzinfo is not None
    assert store.last_batch_id("t") == "batch2"
    hist = store.history("t")
    assert [h["version"] for h in hist] == [1, 0]
    assert hist[1]["lockgate"] == {
        "run_id": "run1",
        "run_seq": "1",
        "batch_id": "batch1",
        "watermark": "2024-01-01|timestamp",
        "mode": "append",
    }
    assert hist[1]["rows"] == 3 and hist[1]["operation"] == "WRITE"
    assert store.history("t", limit=1)[0]["version"] == 1


def test_last_commit_skips_foreign_commits_beyond_first_window(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    for i in range(12):  # more than the first window of 10
        write_deltalake(str(store.path("t")), pa.table({"id": [100 + i]}), mode="append")
    last = store.last_commit("t")
    assert last is not None and (last.version, last.batch_id) == (0, "batch1")
    assert store.history("t", limit=3)[0]["lockgate"] == {}


def test_last_commit_none_when_only_foreign_commits(store: DeltaStore) -> None:
    write_deltalake(str(store.path("t")), pa.table({"id": [1]}))
    assert store.exists("t") and store.last_commit("t") is None
    assert store.last_batch_id("t") is None


# ---------------------------------------------------------------------------- schema


def test_schema_merge_adds_column(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    publish(store, "t", {"id": [2], "extra": ["x"]}, seq=2, schema_mode="merge")
    assert store.schema("t").names == ["id", "extra"]  # type: ignore[union-attr]
    assert rows(store, "t") == [{"id": 1, "extra": None}, {"id": 2, "extra": "x"}]


def test_merge_mode_with_schema_merge_adds_column(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2], "v": [1, 2]}, seq=1, mode=M, keys=("id",))
    publish(
        store,
        "t",
        {"id": [2, 3], "v": [20, 30], "w": ["b", "c"]},
        seq=2,
        mode=M,
        keys=("id",),
        schema_mode="merge",
    )
    assert rows(store, "t") == [
        {"id": 1, "v": 1, "w": None},
        {"id": 2, "v": 20, "w": "b"},
        {"id": 3, "v": 30, "w": "c"},
    ]


def test_new_column_without_schema_mode_is_rejected(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    with pytest.raises(SchemaContractError, match=r"table 't'.*new column\(s\) 'extra'"):
        publish(store, "t", {"id": [2], "extra": ["x"]}, seq=2)
    assert store.version("t") == 0


@pytest.mark.parametrize("mode", [A, OW, OP, M])
def test_incompatible_type_change_names_table_and_column(
    store: DeltaStore, mode: WriteMode
) -> None:
    publish(store, "orders", {"id": [1], "p": ["a"]}, seq=1, partition_by=("p",))
    with pytest.raises(SchemaContractError) as err:
        publish(
            store,
            "orders",
            {"id": ["12"], "p": ["a"]},
            seq=2,
            mode=mode,
            keys=("id",),
            partition_by=("p",),
            schema_mode="merge",
        )
    msg = str(err.value)
    assert "table 'orders'" in msg and "'id'" in msg and "int64" in msg and "string" in msg
    assert not err.value.transient
    assert store.version("orders") == 0


def test_widening_types_is_accepted(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1], "f": [1.5]}, seq=1)
    batch = pa.table({"id": pa.array([2], pa.int32()), "f": pa.array([2.5], pa.float32())})
    publish(store, "t", batch, seq=2)
    assert store.schema("t") == pa.schema([("id", pa.int64()), ("f", pa.float64())])
    assert [r["id"] for r in rows(store, "t")] == [1, 2]


def test_schema_mode_overwrite_needs_overwrite_mode(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    with pytest.raises(PublishError, match="schema_mode='overwrite'"):
        publish(store, "t", {"id": [2]}, seq=2, schema_mode="overwrite")


# ---------------------------------------------------------------------------- quarantine


def test_quarantine_appends_with_schema_merge_and_is_idempotent(store: DeltaStore) -> None:
    def q(data: dict[str, list[object]], seq: int) -> object:
        return store.publish_quarantine(
            "orders", reader(data), tag=CommitTag(f"run{seq}", seq, f"b{seq}")
        )

    q({"id": [1], "_lg_failed_checks": [["not_null_amount"]]}, 1)
    q({"id": [2], "amount": [-5.0], "_lg_failed_checks": [["positive"]]}, 2)
    res = q({"id": [3], "_lg_failed_checks": [["x"]]}, 2)
    assert res.skipped  # type: ignore[attr-defined]
    assert store.exists("orders__quarantine") and not store.exists("orders")
    got = rows(store, "orders__quarantine")
    assert [(r["id"], r["amount"], r["_lg_failed_checks"]) for r in got] == [
        (1, None, ["not_null_amount"]),
        (2, -5.0, ["positive"]),
    ]
    assert store.txn_version("orders__quarantine", "lockgate:orders__quarantine") == 2
    assert store.last_batch_id("orders__quarantine") == "b2"


# ---------------------------------------------------------------------------- reading


def test_time_travel_pins_version(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2]}, seq=1)
    publish(store, "t", {"id": [3]}, seq=2, mode=OW)
    assert rows(store, "t", version=0) == [{"id": 1}, {"id": 2}]
    assert store.arrow_dataset("t", version=0).count_rows() == 2
    assert store.arrow_dataset("t").count_rows() == 1
    with pytest.raises(TableNotFound, match="no readable version 7"):
        store.arrow_dataset("t", version=7)


def test_arrow_dataset_streams_into_duckdb(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1, 2, 3], "v": [10, 20, 30]}, seq=1)
    con = duckdb.connect()
    con.register("t_v0", store.arrow_dataset("t", version=0))
    assert con.execute("select sum(v) from t_v0 where id > 1").fetchall() == [(50,)]


def test_read_columns_limit_filter(store: DeltaStore) -> None:
    import pyarrow.compute as pc

    publish(store, "t", {"id": [1, 2, 3], "v": [10, 20, 30]}, seq=1)
    assert store.read("t", columns=["v"], filter=pc.field("id") >= 2).column_names == ["v"]
    assert sorted(store.read("t", filter=pc.field("id") >= 2)["v"].to_pylist()) == [20, 30]
    assert store.read("t", limit=2).num_rows == 2


def test_missing_table(store: DeltaStore) -> None:
    assert not store.exists("nope")
    assert store.version("nope") is None and store.schema("nope") is None
    assert store.history("nope") == [] and store.last_commit("nope") is None
    with pytest.raises(TableNotFound, match="'nope' does not exist"):
        store.read("nope")
    with pytest.raises(TableNotFound, match="invalid table name"):
        store.exists("../etc")


# ---------------------------------------------------------------------------- empty batches


def test_empty_batch_creates_table_then_commits_nothing(store: DeltaStore) -> None:
    empty = pa.table({"id": pa.array([], pa.int64()), "p": pa.array([], pa.string())})
    res = publish(store, "t", empty, seq=1, partition_by=("p",))
    assert (res.version, res.rows, res.skipped) == (0, 0, True) and "created" in res.reason
    assert store.exists("t") and store.schema("t") == empty.schema
    assert store.read("t").num_rows == 0
    assert DeltaTable(str(store.path("t"))).metadata().partition_columns == ["p"]
    for mode in (A, OP, M):
        res = publish(store, "t", empty, seq=2, mode=mode, keys=("id",), partition_by=("p",))
        assert res.skipped and res.version == 0 and "nothing to publish" in res.reason
    assert store.version("t") == 0
    assert publish(store, "t", {"id": [1], "p": ["a"]}, seq=2).version == 1


def test_reader_with_leading_empty_batches_is_not_empty(store: DeltaStore) -> None:
    schema = pa.schema([("id", pa.int64())])
    batches = [pa.record_batch({"id": pa.array([], pa.int64())}), pa.record_batch({"id": [1, 2]})]
    res = store.publish(
        "t",
        pa.RecordBatchReader.from_batches(schema, batches),
        write=TableWrite(),
        tag=CommitTag("r", 1, "b"),
    )
    assert (res.rows, res.skipped) == (2, False)


# ---------------------------------------------------------------------------- errors


def test_source_error_propagates_unchanged_and_nothing_is_committed(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    schema = pa.schema([("id", pa.int64())])

    def failing() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"id": [2]})
        raise duckdb.ConversionException("bad value in source row 7")

    for mode in (A, M):
        with pytest.raises(duckdb.ConversionException, match="source row 7"):
            store.publish(
                "t",
                pa.RecordBatchReader.from_batches(schema, failing()),
                write=TableWrite(mode=mode, keys=("id",)),
                tag=CommitTag("r", 2, "b"),
            )
    assert store.version("t") == 0 and rows(store, "t") == [{"id": 1}]


def test_storage_errors_are_transient(store: DeltaStore) -> None:
    publish(store, "t", {"id": [1]}, seq=1)
    from lockgate.storage.delta_errors import map_error

    err = map_error("t", "publish", OSError("disk full"))
    assert isinstance(err, StorageError) and err.transient and "table 't'" in str(err)


def test_columns_differing_only_in_case_are_a_terminal_schema_error(store: DeltaStore) -> None:
    # Delta compares column names ignoring case: retrying cannot help, so no retry
    with pytest.raises(SchemaContractError, match="Duplicate field name") as err:
        publish(store, "t", {"id": [1], "ID": [2]}, seq=1)
    assert not err.value.transient and "distinct" in (err.value.hint or "")
    assert not store.exists("t")


def test_commit_conflict_is_a_transient_storage_error(
    store: DeltaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(store, "t", {"id": [1, 2], "v": [1, 2]}, seq=1)
    stale = DeltaTable(str(store.path("t")))  # what this writer read ...
    DeltaTable(str(store.path("t"))).delete('"id" = 1')  # ... before another writer committed
    monkeypatch.setattr(store, "_maybe_table", lambda name: stale)
    with pytest.raises(StorageError, match="concurrent") as err:
        publish(store, "t", {"id": [2], "v": [20]}, seq=2, mode=M, keys=("id",))
    assert err.value.transient and "table 't'" in str(err.value)
    monkeypatch.undo()
    assert store.version("t") == 1 and store.txn_version("t", "lockgate:t") == 1
