"""One runnable example per check type: a small table, the check, and what it gives.

:mod:`lockgate.quality.docs` renders them into ``docs/checks.md`` after *running* each one
(:func:`run_example`), so the documented outcome is what the engine computes; the tests
assert every check type has an example and that each outcome is the one declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlglot import exp

from lockgate.engine.base import Engine
from lockgate.engine.session import DuckDBEngine
from lockgate.quality.checks import BaseCheck
from lockgate.quality.engine import CheckResult, audit
from lockgate.quality.validate import parse_checks
from lockgate.sql import ident, table_ref

#: ``now`` of every example (freshness and lateness depend on it)
EXAMPLE_NOW = datetime(2024, 6, 1, 12, 0, 0)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """A small typed table: column → DuckDB type, and its rows."""

    columns: dict[str, str]
    rows: list[Row]


@dataclass(frozen=True)
class Example:
    dataset: str  # the audited table's name (custom SQL may use it, or ``this``)
    table: Table
    check: dict[str, Any]  # as written in YAML
    failing_rows: int  # expected outcome: row-level: rows failing; table-level: 0 or 1
    passed: bool
    why: str  # one sentence on the outcome
    references: dict[str, Table] = field(default_factory=dict)
    #: an anomaly check's earlier published values, one a day up to the day before ``now``
    history: tuple[float, ...] = ()

    def history_points(self) -> list[tuple[datetime, float]]:
        n = len(self.history)
        return [(EXAMPLE_NOW - timedelta(days=n - i), v) for i, v in enumerate(self.history)]


_T = "TIMESTAMP"

EXAMPLES: dict[str, Example] = {
    "not_null": Example(
        "customers",
        Table({"id": "BIGINT", "email": "VARCHAR"}, [(1, "ada@example.com"), (2, None), (3, "")]),
        {"type": "not_null", "column": "email"},
        1,
        False,
        "row 2 has no email; an empty string is a value, not a NULL.",
    ),
    "required_columns": Example(
        "customers",
        Table({"id": "BIGINT", "email": "VARCHAR"}, [(1, "ada@example.com")]),
        {"type": "required_columns", "columns": ["id", "email", "phone"]},
        1,
        False,
        "the table has no column `phone` (`observed` lists the missing columns).",
    ),
    "row_count": Example(
        "orders",
        Table({"order_id": "BIGINT"}, [(1,), (2,), (3,)]),
        {"type": "row_count", "min": 1, "max": 1000},
        0,
        True,
        "3 rows is within [1, 1000].",
    ),
    "unique": Example(
        "orders",
        Table(
            {"order_id": "BIGINT", "amount": "DOUBLE"}, [(1, 10.0), (2, 5.0), (2, 7.5), (3, 1.0)]
        ),
        {"type": "unique", "column": "order_id"},
        2,
        False,
        "both rows with order_id 2 fail.",
    ),
    "duplicate_rate": Example(
        "events",
        Table({"event_id": "BIGINT"}, [(1,), (1,), (2,), (3,)]),
        {"type": "duplicate_rate", "column": "event_id", "max": "10%"},
        1,
        False,
        "(4 rows - 3 distinct) / 4 rows = 25% duplicates, above 10%.",
    ),
    "accepted_values": Example(
        "orders",
        Table({"status": "VARCHAR"}, [("placed",), ("shipped",), ("lost",), (None,)]),
        {"type": "accepted_values", "column": "status", "values": ["placed", "shipped"]},
        1,
        False,
        "'lost' is not accepted; the NULL is ignored (use not_null for it).",
    ),
    "not_accepted_values": Example(
        "customers",
        Table({"email": "VARCHAR"}, [("ada@example.com",), ("test@example.com",)]),
        {"type": "not_accepted_values", "column": "email", "values": ["test@example.com"]},
        1,
        False,
        "the test address is refused.",
    ),
    "regex_match": Example(
        "products",
        Table({"sku": "VARCHAR"}, [("ABC-1234",), ("abc-1234",), ("XYZ-0001",)]),
        {"type": "regex_match", "column": "sku", "pattern": r"^\p{Lu}{3}-\d{4}$"},
        1,
        False,
        "'abc-1234' is not upper case (RE2 syntax: `\\p{Lu}` is an upper-case letter).",
    ),
    "length_between": Example(
        "customers",
        Table({"country": "VARCHAR"}, [("DE",), ("FRA",), ("NL",)]),
        {"type": "length_between", "column": "country", "min": 2, "max": 2},
        1,
        False,
        "'FRA' has 3 characters.",
    ),
    "parsable_as": Example(
        "raw_orders",
        Table({"amount": "VARCHAR"}, [("12.50",), ("N/A",), ("3",)]),
        {"type": "parsable_as", "column": "amount", "as": "DOUBLE"},
        1,
        False,
        "'N/A' is not a number.",
    ),
    "between": Example(
        "orders",
        Table({"amount": "DECIMAL(10,2)"}, [(12.5,), (-3,), (20000,), (None,)]),
        {"type": "between", "column": "amount", "min": 0, "max": 10000},
        2,
        False,
        "-3 and 20000 are out of bounds; the NULL is ignored.",
    ),
    "aggregate_between": Example(
        "orders",
        Table({"amount": "DOUBLE"}, [(20.0,), (40.0,), (60.0,)]),
        {"type": "aggregate_between", "column": "amount", "agg": "mean", "min": 10, "max": 100},
        0,
        True,
        "the mean, 40, is within [10, 100].",
    ),
    "reference_match": Example(
        "orders",
        Table({"order_id": "BIGINT", "total": "DOUBLE"}, [(1, 10.0), (2, 20.0), (3, 30.0)]),
        {
            "type": "reference_match",
            "column": "total",
            "key": "order_id",
            "to": "invoices",
            "to_column": "amount",
            "tolerance": 0.01,
        },
        1,
        False,
        "order 2 differs from its invoice by 5; order 3 has no invoice and is not checked.",
        {"invoices": Table({"order_id": "BIGINT", "amount": "DOUBLE"}, [(1, 10.0), (2, 25.0)])},
    ),
    "expression": Example(
        "order_lines",
        Table({"price": "DOUBLE", "discount": "DOUBLE"}, [(10.0, 2.0), (5.0, 6.0), (3.0, None)]),
        {"type": "expression", "expr": "discount <= price"},
        1,
        False,
        "a discount of 6 on a price of 5; NULL is unknown, so not failing.",
    ),
    "column_pair": Example(
        "orders",
        Table(
            {"ordered_at": _T, "shipped_at": _T},
            [
                ("2024-05-01 10:00:00", "2024-05-02 09:00:00"),
                ("2024-05-03 10:00:00", "2024-05-01 08:00:00"),
                ("2024-05-04 10:00:00", None),
            ],
        ),
        {"type": "column_pair", "column_a": "shipped_at", "op": ">=", "column_b": "ordered_at"},
        1,
        False,
        "the second order shipped before it was ordered; not shipped yet (NULL) passes.",
    ),
    "relationship": Example(
        "orders",
        Table({"order_id": "BIGINT", "customer_id": "BIGINT"}, [(1, 10), (2, 99), (3, None)]),
        {"type": "relationship", "column": "customer_id", "to": "customers"},
        1,
        False,
        "customer 99 does not exist; a NULL key passes.",
        {"customers": Table({"customer_id": "BIGINT"}, [(10,), (11,)])},
    ),
    "reconcile": Example(
        "orders",
        Table({"amount": "DOUBLE"}, [(100.0,), (250.0,)]),
        {
            "type": "reconcile",
            "to": "payments",
            "metric": "sum",
            "column": "amount",
            "tolerance": "1%",
        },
        0,
        True,
        "350 against 352 paid: 0.57% apart, within 1%.",
        {"payments": Table({"amount": "DOUBLE"}, [(100.0,), (252.0,)])},
    ),
    "freshness": Example(
        "orders",
        Table({"updated_at": _T}, [("2024-05-31 18:00:00",), ("2024-06-01 08:00:00",)]),
        {"type": "freshness", "column": "updated_at", "max_age": "24h"},
        0,
        True,
        f"the newest row is 4 hours old at {EXAMPLE_NOW:%Y-%m-%d %H:%M}.",
    ),
    "lateness": Example(
        "events",
        Table(
            {"event_at": _T, "received_at": _T},
            [
                ("2024-06-01 09:00:00", "2024-06-01 09:05:00"),
                ("2024-06-01 01:00:00", "2024-06-01 09:00:00"),
            ],
        ),
        {"type": "lateness", "column": "event_at", "reference": "received_at", "max_delay": "2h"},
        1,
        False,
        "the second event arrived 8 hours after it happened.",
    ),
    "anomaly": Example(
        "orders",
        Table({"order_id": "BIGINT"}, [(1,), (2,), (3,)]),
        {"type": "anomaly", "metric": "row_count", "min_history": 5},
        1,
        False,
        "the earlier batches held 98 to 103 rows; 3 is far outside the band around their "
        "median (without enough history the check passes while it learns).",
        history=(100.0, 98.0, 103.0, 101.0, 99.0, 102.0, 100.0),
    ),
    "custom_sql": Example(
        "orders",
        Table({"order_id": "BIGINT", "amount": "DOUBLE"}, [(1, 10.0), (2, 12.0), (3, 95.0)]),
        {
            "type": "custom_sql",
            "name": "no_outlier_orders",
            "sql": "SELECT * FROM this WHERE amount > 2 * (SELECT avg(amount) FROM this)",
            "dimension": "accuracy",
        },
        1,
        False,
        "95 is more than twice the mean (39); `this` is the audited dataset (its name works too).",
    ),
}


def example_check(ex: Example) -> BaseCheck:
    """The example's check as a model (raises ValueError when it does not parse)."""
    (check,), problems = parse_checks([ex.check])
    if check is None:
        raise ValueError("; ".join(str(p) for p in problems))
    return check


def create_table(con: Engine, name: str, table: Table) -> None:
    """``CREATE TABLE name (declared columns)`` and insert the rows (cast by the engine)."""
    defs = [
        exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t, dialect="duckdb"))
        for c, t in table.columns.items()
    ]
    create = exp.Create(this=exp.Schema(this=table_ref(name), expressions=defs), kind="TABLE")
    con.execute(create)
    if table.rows:
        marks = exp.Tuple(expressions=[exp.Placeholder() for _ in table.columns])
        insert = exp.insert(exp.Values(expressions=[marks]), table_ref(name))
        con.executemany(insert, table.rows)


def run_example(ex: Example) -> CheckResult:
    """Run the example's check on its table (and references), as a run would audit it."""
    con = DuckDBEngine()
    try:
        create_table(con, ex.dataset, ex.table)
        for name, ref in ex.references.items():
            create_table(con, name, ref)
        result = audit(
            con,
            ex.dataset,
            [example_check(ex)],
            references={name: name for name in ex.references},
            now=EXAMPLE_NOW,
            dataset=ex.dataset,
            history=(lambda _name: ex.history_points()) if ex.history else None,
        )
        (out,) = result.results
        return out
    finally:
        con.close()


def write_parquet(path: Path, table: Table) -> None:
    """Write ``table`` (typed as declared) to a Parquet file."""
    con = DuckDBEngine()
    try:
        create_table(con, "t", table)
        con.execute("COPY t TO ? (FORMAT parquet)", [str(path)])
    finally:
        con.close()


def example_project(root: Path) -> None:
    """A project with one source dataset per example (``ex_<type>``, its check attached,
    gate ``warn`` so everything publishes) plus the reference datasets, data included."""
    import yaml

    (root / "datasets").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "lockgate.yaml").write_text("name: check_examples\ndefaults: {gate: warn}\n")
    datasets: list[dict[str, Any]] = []
    tables: dict[str, Table] = {}
    for t, ex in EXAMPLES.items():
        tables[f"ex_{t}"] = ex.table
        tables.update(ex.references)
    for name, table in tables.items():
        write_parquet(root / "data" / f"{name}.parquet", table)
        spec: dict[str, Any] = {
            "name": name,
            "source": {"type": "file", "path": f"data/{name}.parquet", "columns": table.columns},
            "write": {"mode": "overwrite"},
        }
        if name.startswith("ex_"):
            spec["checks"] = [EXAMPLES[name.removeprefix("ex_")].check]
        if name == "ex_required_columns":
            # with declared columns, `validate` already reports the missing column: the
            # check is for inputs whose columns are not declared
            del spec["source"]["columns"]
        datasets.append(spec)
    text = yaml.safe_dump({"datasets": datasets}, sort_keys=False)
    (root / "datasets" / "examples.yaml").write_text(text)
