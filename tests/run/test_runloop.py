"""The write-audit-publish loop end to end on small projects (DuckDB + Delta + SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.runloop.results import RunStatus, StepStatus
from lockgate.state import StateStore
from lockgate.storage import DeltaStore
from tests.run.helpers import csv_source, make_project, sql

ORDERS = """\
order_id,customer_id,status,amount,updated_at
1,10,placed,10.5,2024-01-01 10:00:00
2,11,shipped,20.0,2024-01-01 11:00:00
3,,placed,5.0,2024-01-01 12:00:00
4,12,bogus,7.0,2024-01-01 13:00:00
5,10,delivered,30.0,2024-01-01 14:00:00
"""


def _orders_project(tmp_path: Path, **ds_extra: object) -> Path:
    return make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw_orders",
                "data/orders.csv",
                checks=[
                    {"type": "not_null", "column": "customer_id"},
                    {
                        "type": "accepted_values",
                        "column": "status",
                        "values": ["placed", "shipped", "delivered"],
                    },
                    {"type": "unique", "column": "order_id"},
                ],
                **ds_extra,
            ),
            sql(
                "revenue",
                "select status, sum(amount) as revenue, count(*) as n from raw_orders group by 1",
                write={"mode": "overwrite"},
            ),
        ],
        files={"data/orders.csv": ORDERS},
    )


def test_quarantine_publishes_good_rows_and_keeps_bad_ones(tmp_path: Path) -> None:
    root = _orders_project(tmp_path)
    res = lockgate.run(root)
    assert res.status == RunStatus.SUCCESS, res.to_dict()
    raw = res.step("raw_orders")
    assert raw.status == StepStatus.SUCCESS
    assert (raw.rows_in, raw.rows_out, raw.rows_quarantined) == (5, 3, 2)
    t = lockgate.read(root, "raw_orders")
    assert sorted(t.column("order_id").to_pylist()) == [1, 2, 5]
    q = lockgate.read(root, "raw_orders", quarantine=True).to_pylist()
    failed = {r["order_id"]: r["_lg_failed_checks"] for r in q}
    assert failed == {3: ["customer_id_not_null"], 4: ["status_accepted_values"]}
    rev = {r["status"]: r["revenue"] for r in lockgate.read(root, "revenue").to_pylist()}
    assert rev == {"placed": 10.5, "shipped": 20.0, "delivered": 30.0}


def test_second_run_is_a_noop_and_tables_unchanged(tmp_path: Path) -> None:
    root = _orders_project(tmp_path)
    lockgate.run(root)
    store = DeltaStore(root / "warehouse")
    before = {n: store.version(n) for n in ("raw_orders", "revenue", "raw_orders__quarantine")}
    res = lockgate.run(root)
    assert [s.status for s in res.steps] == [StepStatus.NOOP, StepStatus.NOOP]
    after = {n: store.version(n) for n in before}
    assert before == after


def test_block_policy_publishes_nothing_and_skips_downstream(tmp_path: Path) -> None:
    root = _orders_project(tmp_path, gate="block")
    res = lockgate.run(root)
    assert res.step("raw_orders").status == StepStatus.BLOCKED
    assert res.step("revenue").status == StepStatus.UPSTREAM_FAILED
    assert "raw_orders" in res.step("revenue").reason
    assert not DeltaStore(root / "warehouse").exists("raw_orders")
    assert res.status != RunStatus.SUCCESS
    failed = {c["name"] for c in res.step("raw_orders").checks if not c["passed"]}
    assert failed == {"customer_id_not_null", "status_accepted_values"}


def test_changed_input_file_reruns_and_merge_upserts(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "orders",
                "data/o.csv",
                write={"mode": "merge", "keys": ["order_id"], "order_by": "updated_at"},
            )
        ],
        files={"data/o.csv": "order_id,amount,updated_at\n1,10,1\n2,20,1\n2,21,2\n"},
    )
    lockgate.run(root)
    t = {r["order_id"]: r["amount"] for r in lockgate.read(root, "orders").to_pylist()}
    assert t == {1: 10, 2: 21}  # batch de-duplicated by key, latest updated_at wins
    (root / "data/o.csv").write_text("order_id,amount,updated_at\n2,22,3\n3,30,3\n")
    res = lockgate.run(root)
    assert res.step("orders").status == StepStatus.SUCCESS
    t = {r["order_id"]: r["amount"] for r in lockgate.read(root, "orders").to_pylist()}
    assert t == {1: 10, 2: 22, 3: 30}


def test_incremental_source_reads_only_new_rows(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events", "data/*.csv", incremental={"cursor": "ts"}, write={"mode": "append"}
            )
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-01 00:00:00\n2,2024-01-02 00:00:00\n"},
    )
    res = lockgate.run(root)
    assert res.step("events").watermark.startswith("2024-01-02")
    (root / "data/b.csv").write_text("id,ts\n3,2024-01-03 00:00:00\n")
    res = lockgate.run(root)
    assert res.step("events").rows_out == 1  # only the row beyond the watermark
    ids = sorted(lockgate.read(root, "events").column("id").to_pylist())
    assert ids == [1, 2, 3]
    assert res.step("events").watermark.startswith("2024-01-03")


def test_incremental_lookback_catches_late_rows_without_duplicates(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                incremental={"cursor": "ts", "lookback": "1d"},
                write={"mode": "append"},
            )
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-01 00:00:00\n2,2024-01-02 00:00:00\n"},
    )
    lockgate.run(root)
    # a late record (before the watermark, inside the lookback) and a new one
    (root / "data/b.csv").write_text("id,ts\n9,2024-01-01 12:00:00\n3,2024-01-03 00:00:00\n")
    lockgate.run(root)
    ids = sorted(lockgate.read(root, "events").column("id").to_pylist())
    assert ids == [1, 2, 3, 9]  # row 2 re-read in the lookback window, not appended twice


def test_full_refresh_rebuilds(tmp_path: Path) -> None:
    root = _orders_project(tmp_path)
    lockgate.run(root)
    res = lockgate.run(root, full_refresh=True)
    assert res.step("raw_orders").status == StepStatus.SUCCESS
    assert lockgate.read(root, "raw_orders").num_rows == 3


def test_python_transform_that_raises_fails_cleanly(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv"), {"name": "b", "transform": {"python": "b"}}],
        files={
            "data/a.csv": "x\n1\n",
            "datasets/b.py": """
                from lockgate import transform

                @transform
                def b(a):
                    raise ValueError("boom")
            """,
        },
    )
    res = lockgate.run(root)
    b = res.step("b")
    assert b.status == StepStatus.FAILED
    assert "boom" in b.reason and "ValueError" in b.reason and "b.py" in b.reason
    assert not DeltaStore(root / "warehouse").exists("b")
    assert res.step("a").status == StepStatus.SUCCESS
    assert res.status == RunStatus.PARTIAL


def test_python_transform_wrong_return_type(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv"), {"name": "b", "transform": {"python": "b"}}],
        files={
            "data/a.csv": "x\n1\n",
            "datasets/b.py": """
                from lockgate import transform

                @transform
                def b(a):
                    return {"x": [1]}
            """,
        },
    )
    b = lockgate.run(root).step("b")
    assert b.status == StepStatus.FAILED
    assert "returned builtins.dict" in b.reason and "pyarrow.Table" in b.reason


def test_python_transform_returning_polars_and_relation(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source("a", "data/a.csv"),
            {"name": "b", "transform": {"python": "b"}},
            {"name": "c", "transform": {"python": "c"}},
        ],
        files={
            "data/a.csv": "x\n1\n2\n",
            "datasets/t.py": """
                import polars as pl
                from lockgate import transform

                @transform(as_="polars")
                def b(a):
                    return a.with_columns((pl.col("x") * 10).alias("y"))

                @transform
                def c(b):
                    return b.filter("y > 10")
            """,
        },
    )
    res = lockgate.run(root)
    assert res.ok, res.to_dict()
    assert lockgate.read(root, "c").to_pylist() == [{"x": 2, "y": 20}]


def test_schema_freeze_blocks_drift(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", schema_policy="freeze")],
        files={"data/a.csv": "x,y\n1,2\n"},
    )
    lockgate.run(root)
    (root / "data/a.csv").write_text("x,y,z\n1,2,3\n")
    a = lockgate.run(root).step("a")
    assert a.status == StepStatus.FAILED
    assert "added column 'z'" in a.reason
    assert DeltaStore(root / "warehouse").version("a") == 0


def test_schema_evolve_adds_column(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv")],
        files={"data/a.csv": "x,y\n1,2\n"},
    )
    lockgate.run(root)
    (root / "data/a.csv").write_text("x,y,z\n3,4,5\n")
    res = lockgate.run(root)
    assert res.step("a").drift["added"] == {"z": "BIGINT"}
    rows = sorted(lockgate.read(root, "a").to_pylist(), key=lambda r: r["x"])
    assert rows == [{"x": 1, "y": 2, "z": None}, {"x": 3, "y": 4, "z": 5}]


def test_missing_input_file_fails_with_path(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", [csv_source("a", "data/nope_*.csv")])
    a = lockgate.run(root).step("a")
    assert a.status == StepStatus.FAILED
    assert "nope_*.csv" in a.reason


def test_overwrite_partitions(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "a", "data/a.csv", write={"mode": "overwrite_partitions", "partition_by": ["day"]}
            )
        ],
        files={"data/a.csv": "day,v\nd1,1\nd2,2\n"},
    )
    lockgate.run(root)
    (root / "data/a.csv").write_text("day,v\nd2,20\nd3,30\n")
    lockgate.run(root)
    rows = sorted((r["day"], r["v"]) for r in lockgate.read(root, "a").to_pylist())
    assert rows == [("d1", 1), ("d2", 20), ("d3", 30)]


def test_ragged_csv_line_is_quarantined(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", columns={"id": "INTEGER", "name": "VARCHAR"})],
        files={"data/a.csv": "id,name\n1,ann\n2,bob,extra\n3,cy\n"},
    )
    res = lockgate.run(root)
    a = res.step("a")
    assert a.status == StepStatus.SUCCESS, a.reason
    assert (a.rows_out, a.rows_quarantined) == (2, 1)
    q = lockgate.read(root, "a", quarantine=True).to_pylist()
    assert q[0]["_lg_failed_checks"] == ["parse_error"]
    assert "2,bob,extra" in q[0]["_lg_raw_record"]


@pytest.mark.parametrize("mode", ["append", "overwrite", "merge"])
def test_state_records_run(tmp_path: Path, mode: str) -> None:
    write = {"mode": mode, **({"keys": ["order_id"]} if mode == "merge" else {})}
    root = _orders_project(tmp_path, write=write)
    res = lockgate.run(root)
    assert res.status == RunStatus.SUCCESS, res.to_dict()
    (latest,) = lockgate.runs(root)
    assert (latest.run_id, latest.status) == (res.run_id, "success")
    project = lockgate.load_project(root)
    detail = StateStore.open(project.state_url).get_run(res.run_id)
    assert detail is not None
    steps = {s.dataset: s for s in detail.steps}
    assert set(steps) == {"raw_orders", "revenue"}
    raw = steps["raw_orders"]
    assert (raw.status, raw.rows_in, raw.rows_out, raw.rows_quarantined) == ("success", 5, 3, 2)
    assert raw.output_version == res.step("raw_orders").output_version == 0
    # the recorded rows are the published ones, whatever the write mode
    assert sorted(lockgate.read(root, "raw_orders").column("order_id").to_pylist()) == [1, 2, 5]
    # a second run of unchanged inputs is recorded as a no-op with nothing re-published
    again = lockgate.run(root)
    assert again.step("raw_orders").status == StepStatus.NOOP
    assert [r.run_id for r in lockgate.runs(root)] == [again.run_id, res.run_id]
    assert DeltaStore(project.warehouse_path).version("raw_orders") == 0


def test_incremental_source_does_not_reread_published_files(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                incremental={"cursor": "ts"},
                columns={"id": "INTEGER", "ts": "TIMESTAMP"},
            )
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-01 00:00:00\nx,2024-01-01 00:00:00\n"},
    )
    first = lockgate.run(root).step("events")
    assert (first.rows_out, first.rows_quarantined) == (1, 1)
    (root / "data/b.csv").write_text("id,ts\n3,2024-01-03 00:00:00\n")
    second = lockgate.run(root).step("events")
    assert (second.rows_in, second.rows_out, second.rows_quarantined) == (1, 1, 0)
    q = lockgate.read(root, "events", quarantine=True)
    assert q.num_rows == 1  # a.csv's bad line is not quarantined a second time


def test_full_refresh_to_no_rows_resets_the_watermark(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "TIMESTAMP"},
                incremental={"cursor": "ts"},
            )
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-05 00:00:00\n"},
    )
    lockgate.run(root)
    (root / "data/a.csv").write_text("id,ts\n")  # the source was emptied
    lockgate.run(root, full_refresh=True)
    assert lockgate.read(root, "events").num_rows == 0
    # older data arriving now must not be skipped by the pre-refresh watermark
    (root / "data/b.csv").write_text("id,ts\n2,2024-01-01 00:00:00\n")
    res = lockgate.run(root)
    assert lockgate.read(root, "events").column("id").to_pylist() == [2]
    assert res.step("events").watermark.startswith("2024-01-01")


def test_decimal_cursor_is_exact(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "ledger",
                "data/*.csv",
                columns={"id": "INTEGER", "seq": "DECIMAL(38,10)"},
                incremental={"cursor": "seq"},
            )
        ],
        files={"data/a.csv": "id,seq\n1,12345678901234567.0000000001\n"},
    )
    res = lockgate.run(root)
    assert res.step("ledger").watermark == "12345678901234567.0000000001"
    # a value a float would round onto the watermark is still strictly greater
    (root / "data/b.csv").write_text("id,seq\n2,12345678901234567.0000000002\n")
    lockgate.run(root)
    assert sorted(lockgate.read(root, "ledger").column("id").to_pylist()) == [1, 2]


def test_merge_rows_with_null_keys_are_quarantined_even_under_warn(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "orders",
                "data/o.csv",
                gate="warn",
                columns={"order_id": "INTEGER", "amount": "INTEGER"},
                write={"mode": "merge", "keys": ["order_id"]},
            )
        ],
        files={"data/o.csv": "order_id,amount\n1,10\n,20\n"},
    )
    first = lockgate.run(root).step("orders")
    assert (first.rows_out, first.rows_quarantined) == (1, 1)
    (root / "data/o.csv").write_text("order_id,amount\n1,11\n,20\n")
    lockgate.run(root)
    rows = lockgate.read(root, "orders").to_pylist()
    assert rows == [{"order_id": 1, "amount": 11}]  # never a NULL-key row, never twice
    q = lockgate.read(root, "orders", quarantine=True).to_pylist()
    assert {tuple(r["_lg_failed_checks"]) for r in q} == {("order_id_merge_key_not_null",)}


def test_full_refresh_rebuilds_the_quarantine_too(tmp_path: Path) -> None:
    root = _orders_project(tmp_path)
    lockgate.run(root)
    lockgate.run(root, full_refresh=True)
    q = lockgate.read(root, "raw_orders", quarantine=True)
    assert sorted(q.column("order_id").to_pylist()) == [3, 4]  # not [3, 3, 4, 4]
    (root / "data/orders.csv").write_text(
        ORDERS.replace(",bogus,", ",placed,").replace("3,,placed", "3,13,placed")
    )
    lockgate.run(root, full_refresh=True)
    assert lockgate.read(root, "raw_orders", quarantine=True).num_rows == 0
    assert lockgate.read(root, "raw_orders").num_rows == 5


def test_archiving_an_already_published_file_is_not_an_error(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                incremental={"cursor": "ts"},
                checks=[{"type": "not_null", "column": "id"}],
            )
        ],
        files={
            "data/a.csv": "id,ts\n1,2024-01-01 00:00:00\n",
            "data/b.csv": "id,ts\n2,2024-01-02 00:00:00\n",
        },
    )
    lockgate.run(root)
    (root / "data/a.csv").unlink()  # moved to an archive after it was loaded
    res = lockgate.run(root)
    assert res.step("events").status == StepStatus.SUCCESS, res.step("events").reason
    assert sorted(lockgate.read(root, "events").column("id").to_pylist()) == [1, 2]
