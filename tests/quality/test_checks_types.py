"""Every check type on a small hand-built table; thresholds, where filters, the gate and
static validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest
from pydantic import TypeAdapter

from lockgate.errors import ConfigError
from lockgate.quality import audit, gate, validate_checks
from lockgate.quality.checks import CheckSpec

ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(
        """CREATE TABLE orders AS SELECT * FROM (VALUES
        (1, 10, 'placed',  5.0,  'a@x.com', TIMESTAMPTZ '2024-12-31 12:00:00+00',
            TIMESTAMPTZ '2024-12-31 13:00:00+00', '12'),
        (2, 11, 'shipped', 0.0,  'b@x.org', TIMESTAMPTZ '2024-12-31 18:00:00+00',
            TIMESTAMPTZ '2024-12-31 17:00:00+00', 'x'),
        (2, 99, 'SHIPPED', 10000.5, 'bad',  TIMESTAMPTZ '2024-12-20 00:00:00+00', NULL, NULL),
        (4, NULL, NULL,    NULL, NULL,      NULL, NULL, '2024-01-01'),
        (5, 12, 'placed',  -1.0, 'é@x.com', TIMESTAMPTZ '2024-12-31 23:00:00+00',
            TIMESTAMPTZ '2025-01-01 01:00:00+00', '')
        ) v(order_id, customer_id, status, amount, email, created_at, shipped_at, code)"""
    )
    c.execute(
        "CREATE TABLE customers AS SELECT * FROM (VALUES (10, 'A'), (11, 'B'), (12, 'C')) "
        "v(customer_id, segment)"
    )
    c.execute(
        "CREATE TABLE golden AS SELECT * FROM (VALUES (1, 5.0), (2, 1.0), (5, -1.0)) "
        "v(order_id, amount)"
    )
    return c


def run(con: duckdb.DuckDBPyConnection, *raw: dict[str, Any], mark: bool = False) -> Any:
    checks = [ADAPTER.validate_python(c) for c in raw]
    refs = {"customers": "customers", "golden": "golden"}
    return audit(con, "orders", checks, references=refs, mark=mark, now=NOW, dataset="orders")


ROW_CASES: list[tuple[dict[str, Any], int]] = [
    ({"type": "not_null", "column": "customer_id"}, 1),
    ({"type": "unique", "column": "order_id"}, 2),
    ({"type": "unique", "columns": ["order_id", "status"]}, 0),
    ({"type": "accepted_values", "column": "status", "values": ["placed", "shipped"]}, 1),
    ({"type": "not_accepted_values", "column": "status", "values": ["SHIPPED"]}, 1),
    ({"type": "regex_match", "column": "email", "pattern": r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"}, 1),
    ({"type": "length_between", "column": "email", "min": 7, "max": 7}, 1),
    ({"type": "parsable_as", "column": "code", "as": "INTEGER"}, 3),
    ({"type": "parsable_as", "column": "code", "as": "DATE"}, 3),
    ({"type": "between", "column": "amount", "min": 0, "max": 10000}, 2),
    ({"type": "between", "column": "amount", "min": 0, "max": 5, "min_exclusive": True}, 3),
    ({"type": "between", "column": "created_at", "min": "2024-12-25"}, 1),
    ({"type": "reference_match", "column": "amount", "key": "order_id", "to": "golden"}, 2),
    (
        {
            "type": "reference_match",
            "column": "amount",
            "key": "order_id",
            "to": "golden",
            "tolerance": 1.5,
        },
        1,
    ),
    ({"type": "expression", "expr": "amount >= 0 OR status = 'shipped'"}, 1),
    ({"type": "column_pair", "column_a": "shipped_at", "op": ">=", "column_b": "created_at"}, 1),
    ({"type": "relationship", "column": "customer_id", "to": "customers"}, 1),
    ({"type": "lateness", "column": "created_at", "max_delay": "24h"}, 1),
    (
        {"type": "lateness", "column": "created_at", "max_delay": "1h", "reference": "shipped_at"},
        1,
    ),
]


@pytest.mark.parametrize(("raw", "want"), ROW_CASES, ids=lambda x: str(x)[:60])
@pytest.mark.parametrize("mark", [False, True])
def test_row_level_check_counts(
    con: duckdb.DuckDBPyConnection, raw: dict[str, Any], want: int, mark: bool
) -> None:
    res = run(con, raw, mark=mark)
    r = res.results[0]
    assert r.row_level
    assert r.failing_rows == want
    assert r.passed == (want == 0)
    assert r.fraction == pytest.approx(want / 5)


TABLE_CASES: list[tuple[dict[str, Any], bool, Any]] = [
    ({"type": "row_count", "min": 5, "max": 5}, True, 5),
    ({"type": "row_count", "min": 6}, False, 5),
    ({"type": "required_columns", "columns": ["order_id", "nope"]}, False, ["nope"]),
    ({"type": "duplicate_rate", "column": "order_id", "max": "20%"}, True, 0.2),
    ({"type": "duplicate_rate", "column": "order_id", "max": 0.1}, False, 0.2),
    (
        {"type": "aggregate_between", "column": "amount", "agg": "mean", "min": 0, "max": 3000},
        True,
        2501.125,
    ),
    (
        {"type": "aggregate_between", "column": "amount", "agg": "max", "max": 10000},
        False,
        10000.5,
    ),
    (
        {
            "type": "aggregate_between",
            "column": "amount",
            "agg": "quantile",
            "q": 0.5,
            "min": 2,
            "max": 3,
        },
        True,
        2.5,
    ),
    (
        {
            "type": "aggregate_between",
            "column": "status",
            "agg": "distinct_count",
            "min": 3,
            "max": 3,
        },
        True,
        3.0,
    ),
    ({"type": "freshness", "column": "created_at", "max_age": "2h"}, True, None),
    ({"type": "freshness", "column": "created_at", "max_age": "30m"}, False, None),
    (
        {"type": "reconcile", "to": "customers", "metric": "row_count", "tolerance": "70%"},
        True,
        {"value": 5.0, "reference": 3.0},
    ),
    (
        {"type": "reconcile", "to": "customers", "metric": "row_count"},
        False,
        {"value": 5.0, "reference": 3.0},
    ),
    (
        {
            "type": "reconcile",
            "to": "golden",
            "metric": "sum",
            "column": "amount",
            "tolerance": 0.001,
        },
        False,
        {"value": 10004.5, "reference": 5.0},
    ),
]


@pytest.mark.parametrize(("raw", "ok", "observed"), TABLE_CASES, ids=lambda x: str(x)[:60])
def test_table_level_checks(
    con: duckdb.DuckDBPyConnection, raw: dict[str, Any], ok: bool, observed: Any
) -> None:
    r = run(con, raw).results[0]
    assert not r.row_level
    assert r.passed is ok
    assert r.failing_rows == (0 if ok else 1)
    if observed is not None:
        assert r.observed == (pytest.approx(observed) if isinstance(observed, float) else observed)


def test_custom_sql_binds_dataset_and_references(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT o.* FROM orders o LEFT JOIN customers c USING (customer_id) WHERE c.segment IS NULL"
    )
    r = run(con, {"type": "custom_sql", "sql": sql, "threshold": 2}).results[0]
    assert r.failing_rows == 2 and r.passed
    assert len(r.samples) == 2
    r = run(con, {"type": "custom_sql", "sql": "SELECT * FROM this WHERE amount < 0"}).results[0]
    assert r.failing_rows == 1 and not r.passed


def test_threshold_count_and_percent(con: duckdb.DuckDBPyConnection) -> None:
    base = {"type": "between", "column": "amount", "min": 0, "max": 10000}
    assert run(con, {**base, "threshold": 2}).results[0].passed
    assert not run(con, {**base, "threshold": 1}).results[0].passed
    assert run(con, {**base, "threshold": "40%"}).results[0].passed
    assert not run(con, {**base, "threshold": "39.9%"}).results[0].passed


def test_where_filters_rows_and_scope(con: duckdb.DuckDBPyConnection) -> None:
    r = run(
        con,
        {
            "type": "between",
            "column": "amount",
            "min": 0,
            "max": 10000,
            "where": "status = 'placed'",
            "threshold": "50%",
        },
    ).results[0]
    assert r.failing_rows == 1 and r.rows_in_scope == 2 and r.fraction == 0.5 and r.passed
    r = run(con, {"type": "unique", "column": "order_id", "where": "status <> 'SHIPPED'"})
    assert r.results[0].failing_rows == 0


def test_samples_carry_key_columns(con: duckdb.DuckDBPyConnection) -> None:
    checks = [ADAPTER.validate_python({"type": "not_null", "column": "status"})]
    res = audit(con, "orders", checks, mark=True, now=NOW, key_columns=["order_id"])
    assert res.results[0].samples == [{"order_id": 4, "status": None}]


def test_gate_policies(con: duckdb.DuckDBPyConnection) -> None:
    res = run(
        con,
        {"type": "not_null", "column": "customer_id"},
        {"type": "between", "column": "amount", "min": 0, "max": 10000, "threshold": 5},
        {"type": "regex_match", "column": "email", "pattern": "[a-z]+@.*", "severity": "warn"},
        {"type": "row_count", "min": 1},
        mark=True,
    )
    q = gate(res, "quarantine")
    assert q.action == "publish_passing"
    # both error row checks quarantine (the between check is within its threshold)
    assert set(q.quarantined) == {"customer_id_not_null", "amount_between"}
    assert q.quarantine_bits == {0, 1}
    got = duckdb_rows(con, res.failing_rows_query(["order_id"], q))
    assert sorted(got) == [
        (2, ["amount_between"]),
        (4, ["customer_id_not_null"]),
        (5, ["amount_between"]),
    ]
    b = gate(res, "block")
    assert b.action == "block" and b.blocking == ["customer_id_not_null"]
    assert gate(res, "warn").action == "publish_all"

    res = run(con, {"type": "row_count", "min": 10}, {"type": "not_null", "column": "status"})
    d = gate(res, "quarantine")
    assert d.action == "block" and d.blocking == ["row_count"]
    res = run(con, {"type": "row_count", "min": 10, "severity": "warn"})
    assert gate(res, "quarantine").action == "publish_all"
    assert gate(res, "block").action == "publish_all"


def duckdb_rows(con: duckdb.DuckDBPyConnection, q: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in con.execute(q.sql("duckdb")).fetchall()]


COLUMNS = {"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE", "ts": "TIMESTAMP"}


def test_validate_reports_every_problem_with_position() -> None:
    raw = [
        {"type": "not_nul", "column": "id"},
        {"type": "not_null", "column": "nmae"},
        {"type": "between", "column": "name", "min": 0},
        {"type": "length_between", "column": "amount", "max": 3},
        {"type": "freshness", "column": "amount", "max_age": "1h"},
        {"type": "aggregate_between", "column": "name", "agg": "mean", "min": 0},
        {"type": "regex_match", "column": "name", "pattern": "(?=a)b"},
        {"type": "regex_match", "column": "name", "pattern": "(a"},
        {"type": "unique", "column": "id", "name": "dup"},
        {"type": "not_null", "column": "id", "name": "dup"},
        {"type": "not_null", "column": "id", "where": "amout > 1", "name": "w"},
        {"type": "expression", "expr": "id >", "name": "e"},
        {"type": "relationship", "column": "id", "to": "custmers"},
        {"type": "not_null", "column": "id", "colour": "red", "name": "x"},
    ]
    lines = list(range(10, 10 + len(raw)))
    problems = validate_checks(
        raw, COLUMNS, file="c.yaml", lines=lines, references={"customers": {"id": "BIGINT"}}
    )
    text = "\n".join(str(p) for p in problems)
    expect = [
        ("c.yaml:10", "unknown check type 'not_nul'", "did you mean 'not_null'"),
        ("c.yaml:11", "unknown column 'nmae'", "did you mean 'name'"),
        ("c.yaml:12", "between on string column 'name'", ""),
        ("c.yaml:13", "length_between needs a string column", ""),
        ("c.yaml:14", "freshness needs a DATE/TIMESTAMP column", ""),
        ("c.yaml:15", "aggregate 'mean' needs a numeric column", ""),
        ("c.yaml:16", "invalid regular expression '(?=a)b' (RE2", ""),
        ("c.yaml:17", "invalid regular expression", ""),
        ("c.yaml:19", "duplicate check name", ""),
        ("c.yaml:20", "where: unknown column 'amout'", "did you mean 'amount'"),
        ("c.yaml:21", "cannot parse SQL expression", ""),
        ("c.yaml:22", "unknown reference dataset 'custmers'", "did you mean 'customers'"),
        ("c.yaml:23", "colour", ""),
    ]
    for loc, msg, hint in expect:
        assert any(
            p.location() == loc and msg in p.message and hint in (p.hint or "") for p in problems
        ), f"missing {loc} {msg}\n{text}"
    assert len(problems) == len(expect)


def test_audit_raises_config_error_before_reading(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ConfigError, match="unknown column 'amt'"):
        run(con, {"type": "not_null", "column": "amt"})


def test_check_models_reject_bad_definitions() -> None:
    for bad in [
        {"type": "between", "column": "a"},
        {"type": "unique"},
        {"type": "unique", "column": "a", "columns": ["b"]},
        {"type": "not_null", "column": "a", "threshold": "lots"},
        {"type": "aggregate_between", "column": "a", "agg": "quantile", "min": 1},
        {"type": "freshness", "column": "a", "max_age": "soon"},
    ]:
        with pytest.raises(ValueError):
            ADAPTER.validate_python(bad)
    c = ADAPTER.validate_python({"type": "not_null", "column": "a", "threshold": "0.5%"})
    assert c.allowed_failures(1000) == 5 and c.check_name == "a_not_null"


@pytest.mark.parametrize("mark", [False, True])
def test_accepted_values_numbers_on_a_string_column_compare_as_text(
    con: duckdb.DuckDBPyConnection, mark: bool
) -> None:
    # YAML `values: [12]` on a VARCHAR column used to make DuckDB cast the column to INTEGER
    # ("Conversion Error: could not convert string 'x'") and the whole audit crashed
    r = run(
        con,
        {"type": "accepted_values", "column": "code", "values": [12, 2.5]},
        {"type": "not_accepted_values", "column": "code", "values": [12]},
        mark=mark,
    )
    assert r.result("code_accepted_values").failing_rows == 3  # 'x', '2024-01-01', ''
    assert r.result("code_not_accepted_values").failing_rows == 1
