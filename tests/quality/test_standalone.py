"""``lockgate check``: targets (Parquet, CSV, glob, Delta, PostgreSQL), exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from lockgate.cli.app import app
from lockgate.quality import run_standalone

runner = CliRunner()

CHECKS = """
references:
  customers: customers.parquet
checks:
  - type: not_null
    column: id
  - type: unique
    column: id
  - type: between
    column: amount
    min: 0
    max: 100
    severity: warn
  - type: relationship
    column: cust
    to: customers
  - type: freshness
    column: ts
    max_age: 24h
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT range AS id, range % 3 AS cust, range * 10.0 AS amount, "
        "TIMESTAMP '2024-12-31 12:00:00' AS ts FROM range(20)) TO ? (FORMAT parquet)",
        [str(tmp_path / "orders.parquet")],
    )
    con.execute(
        "COPY (SELECT range AS cust FROM range(3)) TO ? (FORMAT parquet)",
        [str(tmp_path / "customers.parquet")],
    )
    con.execute(
        "COPY (SELECT * FROM read_parquet(?)) TO ? (FORMAT csv, HEADER)",
        [str(tmp_path / "orders.parquet"), str(tmp_path / "orders.csv")],
    )
    (tmp_path / "checks.yaml").write_text(CHECKS)
    return tmp_path


def _json(out: str) -> dict:
    return json.loads(out)


def test_passing_file_exits_0_with_json(files: Path) -> None:
    r = runner.invoke(
        app,
        [
            "check",
            str(files / "orders.parquet"),
            "--checks",
            str(files / "checks.yaml"),
            "--json",
            "--now",
            "2025-01-01T00:00:00",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = _json(r.stdout)
    by = {c["name"]: c for c in doc["checks"]}
    assert doc["total_rows"] == 20
    assert by["amount_between"]["failing_rows"] == 9  # 110..190, warn only
    assert by["amount_between"]["passed"] is False
    assert by["amount_between"]["dimension"] == "accuracy"
    assert by["cust_relationship"]["failing_rows"] == 0
    assert {
        "name",
        "dimension",
        "severity",
        "failing_rows",
        "fraction",
        "passed",
        "observed",
        "samples",
    } <= set(by["id_unique"])


def test_error_check_failing_exits_1(files: Path) -> None:
    # freshness against a later clock fails (error severity)
    r = runner.invoke(
        app,
        [
            "check",
            str(files / "orders.csv"),
            "--checks",
            str(files / "checks.yaml"),
            "--json",
            "--now",
            "2025-02-01",
        ],
    )
    assert r.exit_code == 1, r.output
    by = {c["name"]: c for c in _json(r.stdout)["checks"]}
    assert by["ts_freshness"]["passed"] is False
    assert by["ts_freshness"]["failing_rows"] == 1


def test_ref_option_and_rich_output(files: Path, tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("COPY (SELECT 0 AS cust) TO ? (FORMAT parquet)", [str(tmp_path / "few.parquet")])
    r = runner.invoke(
        app,
        [
            "check",
            str(files / "*.parquet").replace("*", "orders*"),
            "--checks",
            str(files / "checks.yaml"),
            "--now",
            "2025-01-01",
            "--ref",
            f"customers={tmp_path / 'few.parquet'}",
        ],
    )
    assert r.exit_code == 1, r.output
    assert "cust_relationship" in r.stdout and "FAIL" in r.stdout


def test_config_errors_exit_2_before_reading(files: Path) -> None:
    bad = files / "bad.yaml"
    bad.write_text(
        "checks:\n  - type: not_nul\n    column: id\n  - type: between\n    column: idd\n"
        "    min: 0\n"
    )
    r = runner.invoke(app, ["check", str(files / "orders.parquet"), "--checks", str(bad)])
    assert r.exit_code == 2
    assert "bad.yaml:2" in r.stderr and "did you mean 'not_null'" in r.stderr
    assert "bad.yaml:4" in r.stderr and "unknown column 'idd'" in r.stderr


def test_usage_and_input_errors_exit_2(files: Path) -> None:
    args = ["--checks", str(files / "checks.yaml")]
    assert runner.invoke(app, ["check", str(files / "missing.parquet"), *args]).exit_code == 2
    assert runner.invoke(app, ["check", str(files / "orders.xyz"), *args]).exit_code == 2
    r = runner.invoke(app, ["check", str(files / "orders.parquet"), *args, "--ref", "oops"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["check", str(files / "orders.parquet"), *args, "--now", "later"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["check", str(files / "orders.parquet"), "--checks", "nope.yaml"])
    assert r.exit_code == 2


def test_delta_target(files: Path, tmp_path: Path) -> None:
    from deltalake import write_deltalake

    tbl = pa.table(
        {
            "id": [1, 2, 2, None],
            "cust": [0, 1, 5, 1],
            "amount": [1.0, 2.0, 3.0, 4.0],
            "ts": pa.array([None] * 4, pa.timestamp("us")),
        }
    )
    write_deltalake(str(tmp_path / "delta_orders"), tbl)
    res = run_standalone(str(tmp_path / "delta_orders"), files / "checks.yaml")
    got = {r.name: r.failing_rows for r in res.results}
    assert got["id_not_null"] == 1 and got["id_unique"] == 2 and got["cust_relationship"] == 1
    assert not res.passed


def test_real_subprocess_exit_code(files: Path) -> None:
    exe = Path(sys.executable).parent / "lockgate"
    cmd = [
        str(exe),
        "check",
        str(files / "orders.parquet"),
        "--checks",
        str(files / "checks.yaml"),
        "--json",
        "--now",
        "2025-01-01T00:00:00+00:00",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["passed"] is True


@pytest.mark.postgres
def test_postgres_target(pg_url: str, files: Path) -> None:
    import psycopg

    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA shop")
        pg.execute(
            "CREATE TABLE shop.orders (id bigint, cust integer, amount numeric(10,2), "
            "note text, ok boolean, ts timestamptz)"
        )
        pg.execute(
            "INSERT INTO shop.orders VALUES (1, 0, 5.5, '', true, '2024-12-31 12:00+00'), "
            "(2, 1, 150, NULL, false, '2024-12-31 13:00+00'), (2, 9, NULL, 'x,\"y\"', NULL, NULL)"
        )
    res = run_standalone(
        f"{pg_url}?table=shop.orders",
        files / "checks.yaml",
        now=__import__("datetime").datetime(2025, 1, 1),
    )
    got = {r.name: r.failing_rows for r in res.results}
    assert res.total_rows == 3
    assert got == {
        "id_not_null": 0,
        "id_unique": 2,
        "amount_between": 1,
        "cust_relationship": 1,
        "ts_freshness": 0,
    }
    # empty string and NULL stay distinct through COPY → CSV → DuckDB
    extra = files / "pg.yaml"
    extra.write_text(
        "checks:\n  - type: not_null\n    column: note\n  - type: not_null\n    column: ok\n"
    )
    res = run_standalone(f"{pg_url}?table=shop.orders", extra)
    assert [r.failing_rows for r in res.results] == [1, 1]


def test_csv_with_a_ragged_line_is_read_by_header(tmp_path: Path) -> None:
    # one ragged line made DuckDB's sniffer read the header as ONE column 'id,name,amount'
    # ("unknown column 'id'" for every check); it is now skipped and reported
    (tmp_path / "rag.csv").write_text("id,name,amount\n1,a,1.5\n2,b,2.5\n3,c,3.5,oops\n4,,4.5\n")
    cf = tmp_path / "c.yaml"
    cf.write_text("checks:\n  - type: not_null\n    column: name\n")
    result = run_standalone(str(tmp_path / "rag.csv"), cf)
    assert result.total_rows == 3
    assert result.result("name_not_null").failing_rows == 1
    assert result.rejected is not None and result.rejected.rejected == 1
    assert [(r.line, r.reason) for r in result.rejected.sample] == [
        (4, "expected 3 columns, found 4")
    ]
    assert not result.passed
