"""A table-level check on a personal column must not record that column's value: ``max`` of
a salary or the newest birth date is one person's value, and the state store, ``lockgate
runs`` and alert payloads never hold personal values (:mod:`lockgate.pii`)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from tests.run.helpers import csv_source, make_project

SALARY = "987654.25"
BIRTH = "1961-07-13"
CSV = f"id,salary,born,amount\n1,{SALARY},{BIRTH} 00:00:00,3.5\n2,1000.5,1950-01-02 00:00:00,4\n"


def test_table_level_checks_on_personal_columns_record_no_value(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "people",
                "data/p.csv",
                columns={
                    "id": "INTEGER",
                    "salary": "DOUBLE",
                    "born": "TIMESTAMP",
                    "amount": "DOUBLE",
                },
                pii=["salary", "born"],
                checks=[
                    {
                        "type": "aggregate_between",
                        "column": "salary",
                        "agg": "max",
                        "max": 10,
                        "severity": "warn",
                    },
                    {
                        "type": "freshness",
                        "column": "born",
                        "max_age": "1d",
                        "severity": "warn",
                    },
                    {
                        "type": "aggregate_between",
                        "column": "amount",
                        "agg": "max",
                        "max": 1,
                        "severity": "warn",
                    },
                ],
            )
        ],
        files={"data/p.csv": CSV},
    )
    res = lockgate.run(root)
    assert res.ok
    text = json.dumps(res.to_dict() if hasattr(res, "to_dict") else repr(res), default=str)
    assert "987654.2" not in text and "1961-07-13" not in text, text
    out = CliRunner().invoke(app, ["runs", "--json", "-p", str(root)])
    assert out.exit_code == 0, out.output
    assert "987654.2" not in out.output and "1961-07-13" not in out.output, out.output
    for args in (["runs", res.run_id, "--json"], ["show", "people", "--json"]):
        out = CliRunner().invoke(app, [*args, "-p", str(root)])
        assert out.exit_code == 0, out.output
        assert "salary_max_between" in out.output, out.output  # the check is there
        assert "987654.2" not in out.output and "1961-07-13" not in out.output, out.output
    # a column that is not personal keeps its value and message
    assert "4.0" in text or "= 4" in text, text


def test_a_personal_value_quoted_in_another_column_is_masked_there(tmp_path: Path) -> None:
    from lockgate import api
    from lockgate.pii import MASK, PiiColumns, mask_row

    csv = (
        "id,email,note,ssn\n"
        "1,ann@example.org,mail ann@example.org now,-123456789\n"
        "2,bob@example.org,ok 5,5\n"
    )
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "c",
                "data/c.csv",
                columns={"id": "INTEGER", "email": "VARCHAR", "note": "VARCHAR", "ssn": "BIGINT"},
                pii=["email", "ssn"],
                checks=[{"type": "between", "column": "ssn", "min": 0}],
            )
        ],
        files={"data/c.csv": csv},
    )
    assert lockgate.run(root).ok
    for rows in (
        api.quarantine(root, "c", limit=10).rows,
        api.dataset_info(root, "c", sample_rows=5)["sample"],
    ):
        text = json.dumps(rows, default=str)
        assert "ann@example.org" not in text and "123456789" not in text, text
    sample = {r["id"]: r for r in api.dataset_info(root, "c", sample_rows=5)["sample"]}
    assert sample[2]["note"] == "ok 5"  # a one-character personal value masks no text
    pii = PiiColumns(["email"])
    assert mask_row({"email": "ann@x.io", "note": "to ann@x.io", "n": 3}, pii) == {
        "email": MASK,
        "note": f"to {MASK}",
        "n": 3,
    }


def test_pii_names_and_the_pii_tag_are_case_insensitive(tmp_path: Path) -> None:
    from lockgate import api

    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "c",
                "data/c.csv",
                columns={"id": "INTEGER", "email": "VARCHAR"},
                pii=["EMail"],  # the column is 'email'
            ),
            csv_source("t", "data/c.csv", tags=["PII"]),
        ],
        files={"data/c.csv": "id,email\n1,ann@example.org\n"},
    )
    assert lockgate.run(root).ok
    for name in ("c", "t"):
        text = json.dumps(api.dataset_info(root, name, sample_rows=5)["sample"])
        assert "ann@example.org" not in text and "***" in text, (name, text)


def test_a_gate_blocked_by_a_personal_columns_check_does_not_quote_its_value(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "people",
                "data/p.csv",
                columns={"id": "INTEGER", "salary": "DOUBLE", "born": "TIMESTAMP"},
                pii=["salary", "born"],
                checks=[
                    {"type": "aggregate_between", "column": "salary", "agg": "max", "max": 10},
                    {"type": "freshness", "column": "born", "max_age": "1d"},
                ],
            )
        ],
        files={"data/p.csv": f"id,salary,born\n1,{SALARY},{BIRTH} 00:00:00\n"},
    )
    res = lockgate.run(root)
    step = res.steps[0]
    assert str(step.status) == "blocked" and "salary_max_between" in step.reason
    text = json.dumps(res.to_dict(), default=str)
    out = CliRunner().invoke(app, ["runs", res.run_id, "-p", str(root)])
    for leak in ("987654.2", "1961-07-13"):
        assert leak not in text and leak not in out.output, (text, out.output)
