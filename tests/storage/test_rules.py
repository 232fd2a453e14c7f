"""Predicate building and schema-compatibility rules (pure functions), plus their effect on
delta-rs for the value types a partition column can hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from lockgate.errors import SchemaContractError, TerminalError
from lockgate.project.models import WriteMode
from lockgate.storage import DeltaStore
from lockgate.storage._predicates import literal, merge_predicate, partition_predicate
from lockgate.storage._schema import check_compatible, type_accepts
from tests.storage.helpers import publish, rows


def test_partition_predicate_quotes_identifiers_and_values() -> None:
    pred = partition_predicate(['we"ird'], [{'we"ird': "it's"}, {'we"ird': "it's"}])
    assert pred == "\"we\"\"ird\" IN ('it''s')"
    assert partition_predicate(["p"], []) is None
    multi = partition_predicate(["a", "b"], [{"a": 1, "b": None}, {"a": 2, "b": True}])
    assert multi == '("a" = 1 AND "b" IS NULL) OR ("a" = 2 AND "b" = TRUE)'


def test_literals() -> None:
    assert literal(Decimal("1.50")).sql() == "1.50"
    assert literal(-3).sql() == "-3"
    ts = literal(dt.datetime(2024, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert "'2024-01-01T00:00:00Z'" in ts.sql() and "UTC" in ts.sql()
    with pytest.raises(TerminalError, match="partition predicate"):
        literal(b"bytes")


def test_merge_predicate() -> None:
    assert merge_predicate(["a", "b c"]) == (
        '"target"."a" = "source"."a" AND "target"."b c" = "source"."b c"'
    )


@pytest.mark.parametrize(
    ("table", "batch", "ok"),
    [
        (pa.int64(), pa.int8(), True),
        (pa.int32(), pa.int64(), False),
        (pa.int64(), pa.uint32(), True),
        (pa.int32(), pa.uint32(), False),
        (pa.float64(), pa.float32(), True),
        (pa.float64(), pa.int64(), False),
        (pa.int64(), pa.float64(), False),
        (pa.string(), pa.large_string(), True),
        (pa.string(), pa.int64(), False),
        (pa.decimal128(12, 2), pa.decimal128(10, 2), True),
        (pa.decimal128(12, 2), pa.decimal128(12, 3), False),
        (pa.timestamp("us", "UTC"), pa.timestamp("ns", "Europe/Paris"), True),
        (pa.timestamp("us", "UTC"), pa.timestamp("us"), False),
        (pa.date32(), pa.string(), False),
        (pa.int64(), pa.null(), True),
        (pa.list_(pa.int64()), pa.large_list(pa.int32()), True),
        (pa.list_(pa.int32()), pa.list_(pa.string()), False),
        (pa.struct([("a", pa.int64())]), pa.struct([("a", pa.int32()), ("b", pa.string())]), True),
        (pa.struct([("a", pa.int64())]), pa.struct([("a", pa.string())]), False),
    ],
)
def test_type_accepts(table: pa.DataType, batch: pa.DataType, ok: bool) -> None:
    assert type_accepts(table, batch) is ok


def test_check_compatible_modes() -> None:
    table = pa.schema([("id", pa.int64()), ("v", pa.string())])
    assert (
        check_compatible("t", table, pa.schema([("id", pa.int32()), ("v", pa.string())]), None)
        == []
    )
    assert check_compatible(
        "t", table, pa.schema([("id", pa.int64()), ("w", pa.int8())]), "merge"
    ) == ["w"]
    with pytest.raises(SchemaContractError, match=r"missing column\(s\) 'v'"):
        check_compatible("t", table, pa.schema([("id", pa.int64())]), None)
    with pytest.raises(SchemaContractError, match=r"'v' is string in the table but int64"):
        check_compatible("t", table, pa.schema([("v", pa.int64())]), "merge")
    assert check_compatible("t", table, pa.schema([("v", pa.int64())]), "overwrite") == []


def test_overwrite_partitions_on_timestamp_and_bool_partitions(store: DeltaStore) -> None:
    utc = dt.UTC
    t1, t2 = dt.datetime(2024, 1, 1, tzinfo=utc), dt.datetime(2024, 1, 2, tzinfo=utc)
    n1, n2 = dt.datetime(2024, 1, 1, 3), dt.datetime(2024, 1, 2)
    first = pa.table(
        {
            "ts": pa.array([t1, t2, None], pa.timestamp("us", "UTC")),
            "tn": pa.array([n1, n2, None], pa.timestamp("us")),
            "b": [True, False, None],
            "v": [1, 2, 3],
        }
    )
    parts = ("ts", "tn", "b")
    publish(store, "t", first, seq=1, partition_by=parts)
    second = pa.table(
        {
            "ts": pa.array([t1, None], pa.timestamp("us", "UTC")),
            "tn": pa.array([n1, None], pa.timestamp("us")),
            "b": [True, None],
            "v": [10, 30],
        }
    )
    publish(store, "t", second, seq=2, mode=WriteMode.OVERWRITE_PARTITIONS, partition_by=parts)
    assert sorted(r["v"] for r in rows(store, "t")) == [2, 10, 30]
