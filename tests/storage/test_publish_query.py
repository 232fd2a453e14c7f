"""DeltaStore.publish_query: DuckDB-written Parquet committed as one Delta commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake import DeltaTable
from sqlglot import exp

from lockgate.engine.session import DuckDBEngine
from lockgate.errors import SchemaContractError
from lockgate.project.models import WriteMode
from lockgate.storage import CommitTag, DeltaStore, PublishResult, TableWrite, _native

from .helpers import publish, rows


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET threads = 2")
    c.execute(
        "CREATE TABLE src AS SELECT range::BIGINT AS id, 'n' || range AS name, "
        "range * 1.5 AS amount, DATE '2024-01-01' + range::INTEGER AS day, "
        "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (range) MINUTE AS ts, "
        "CASE WHEN range % 3 = 0 THEN NULL ELSE range END AS maybe FROM range(1000)"
    )
    return c


def q(where: str | None = None) -> exp.Select:
    s = exp.select("*").from_("src")
    return s.where(where) if where else s


def pq(
    store: DeltaStore,
    con: duckdb.DuckDBPyConnection,
    query: exp.Query,
    *,
    seq: int,
    mode: WriteMode = WriteMode.APPEND,
    partition_by: tuple[str, ...] = (),
    name: str = "t",
    schema_mode: Any = None,
) -> PublishResult:
    return store.publish_query(
        name,
        DuckDBEngine.wrap(con),
        query,
        write=TableWrite(mode=mode, partition_by=partition_by, schema_mode=schema_mode),
        tag=CommitTag(f"run{seq}", seq, f"batch{seq}"),
    )


def _log(store: DeltaStore, name: str, version: int) -> list[dict[str, Any]]:
    path = store.path(name) / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_append_creates_then_appends_with_metadata_and_stats(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    r1 = pq(store, con, q("id < 600"), seq=1)
    assert (r1.version, r1.rows, r1.skipped) == (0, 600, False)
    r2 = pq(store, con, q("id >= 600"), seq=2)
    assert (r2.version, r2.rows) == (1, 400)
    got = rows(store, "t")
    want = con.sql("SELECT * FROM src ORDER BY id").to_arrow_table().to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert got[5] == want[5]
    commit = store.last_commit("t")
    assert commit is not None and (commit.run_seq, commit.batch_id, commit.rows) == (
        2,
        "batch2",
        400,
    )
    adds = [a["add"] for a in _log(store, "t", 1) if "add" in a]
    assert adds and all(not Path(a["path"]).name.startswith(".") for a in adds)
    stats = [json.loads(a["stats"]) for a in adds]
    assert sum(s["numRecords"] for s in stats) == 400
    # bounds are all or nothing (see test_filtered_arrow_scan_of_native_files_is_exact)
    assert all("minValues" not in s for s in stats)
    assert sum(s["nullCount"]["maybe"] for s in stats) == 134
    pq(store, con, exp.select("id", "maybe").from_("src").where("id >= 600"), seq=3, name="ints")
    adds = [a["add"] for a in _log(store, "ints", 0) if "add" in a]
    stats = [json.loads(a["stats"]) for a in adds]
    assert min(s["minValues"]["id"] for s in stats) == 600
    assert max(s["maxValues"]["id"] for s in stats) == 999
    # no temporary folder is left behind
    assert not [p for p in store.path("t").iterdir() if p.name.startswith(_native.TMP_PREFIX)]


def test_republish_same_run_seq_is_skipped(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    pq(store, con, q(), seq=1)
    files = {p.name for p in store.path("t").glob("*.parquet")}
    again = pq(store, con, q(), seq=1)
    assert again.skipped and again.version == 0 and "already published" in again.reason
    assert {p.name for p in store.path("t").glob("*.parquet")} == files
    assert len(rows(store, "t")) == 1000


def test_overwrite_replaces_and_empty_overwrite_empties(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    pq(store, con, q(), seq=1)
    r = pq(store, con, q("id < 10"), seq=2, mode=WriteMode.OVERWRITE)
    assert r.rows == 10 and [x["id"] for x in rows(store, "t")] == list(range(10))
    e = pq(store, con, q("id < 0"), seq=3, mode=WriteMode.OVERWRITE)
    assert e.rows == 0 and rows(store, "t") == []
    assert store.txn_version("t", "lockgate:t") == 3


def test_empty_append_creates_empty_table(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    r = pq(store, con, q("id < 0"), seq=1)
    assert r.skipped and store.exists("t") and rows(store, "t") == []
    assert store.schema("t") is not None and "name" in store.schema("t").names  # type: ignore[union-attr]


def test_same_table_via_reader_then_query(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    first = con.sql("SELECT * FROM src WHERE id < 5").to_arrow_table()
    publish(store, "t", first, seq=1)
    r = pq(store, con, q("id >= 5"), seq=2)
    assert r.rows == 995 and len(rows(store, "t")) == 1000
    assert not r.reason.startswith("empty")


def test_schema_mismatch_falls_back_and_is_checked(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    pq(store, con, q(), seq=1)
    wider = exp.select("*", exp.alias_(exp.Literal.number(1), "extra")).from_("src")
    with pytest.raises(SchemaContractError, match="extra"):
        pq(store, con, wider, seq=2)
    r = pq(store, con, wider, seq=3, schema_mode="merge")
    assert r.rows == 1000 and "extra" in store.schema("t").names  # type: ignore[union-attr]
    assert len(rows(store, "t")) == 2000


def test_partitioned_table_uses_delta_rs_path(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    sel = exp.select(
        "id", exp.alias_(exp.Mod(this=exp.column("id"), expression=exp.Literal.number(3)), "p")
    ).from_("src")
    r = pq(store, con, sel, seq=1, partition_by=("p",))
    assert r.rows == 1000
    assert DeltaTable(str(store.path("t"))).metadata().partition_columns == ["p"]
    # later unpartitioned-looking appends keep the table's partitioning
    pq(store, con, sel.where("id < 3"), seq=2)
    assert len(rows(store, "t")) == 1003


def test_unsupported_types_stream_through_delta_rs(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    sel = exp.select(
        "id",
        exp.alias_(
            exp.Cast(this=exp.column("id"), to=exp.DataType.build("UINTEGER", dialect="duckdb")),
            "u",
        ),
    ).from_("src")
    r = pq(store, con, sel, seq=1)
    assert r.rows == 1000
    assert rows(store, "t")[3] == {"id": 3, "u": 3}


def test_failed_commit_leaves_no_files(
    store: DeltaStore, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq(store, con, q("id < 10"), seq=1)
    before = {p.name for p in store.path("t").iterdir()}

    def boom(*a: Any, **k: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(_native, "commit_files", boom)
    with pytest.raises(Exception, match="disk gone"):
        pq(store, con, q(), seq=2)
    assert {p.name for p in store.path("t").iterdir()} == before
    assert len(rows(store, "t")) == 10 and store.version("t") == 0


def test_filtered_arrow_scan_of_native_files_is_exact(
    store: DeltaStore, con: duckdb.DuckDBPyConnection
) -> None:
    """delta-rs turns file stats into pyarrow-dataset guarantees and reads a column absent
    from ``minValues`` as all-NULL: partial bounds made every filter on a timestamp, text
    or date column of a DuckDB-written file return no rows (the append lookback anti-join
    then matched nothing and appended the window again)."""
    import datetime as dt

    import pyarrow.compute as pc

    pq(store, con, q("id < 10"), seq=1)
    ts = dt.datetime(2024, 1, 1, 0, 5)
    cases = [
        (pc.field("ts") >= pc.scalar(ts), "ts >= TIMESTAMP '2024-01-01 00:05:00'"),
        (pc.field("name") == "n3", "name = 'n3'"),
        (pc.field("day") > pc.scalar(dt.date(2024, 1, 8)), "day > DATE '2024-01-08'"),
        (pc.field("maybe").is_null() | (pc.field("id") > 7), "maybe IS NULL OR id > 7"),
    ]
    for arrow_filter, sql in cases:
        got = sorted(store.read("t", filter=arrow_filter).column("id").to_pylist())
        want = sorted(
            r[0] for r in con.sql(f"SELECT id FROM src WHERE id < 10 AND ({sql})").fetchall()
        )
        assert got == want and want, sql
