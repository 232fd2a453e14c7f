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
    assert "987654" not in text and "1961" not in text, text
    out = CliRunner().invoke(app, ["runs", "--json", "-p", str(root)])
    assert out.exit_code == 0, out.output
    assert "987654" not in out.output and "1961" not in out.output, out.output
    for args in (["runs", res.run_id, "--json"], ["show", "people", "--json"]):
        out = CliRunner().invoke(app, [*args, "-p", str(root)])
        assert out.exit_code == 0, out.output
        assert "salary_max_between" in out.output, out.output  # the check is there
        assert "987654" not in out.output and "1961" not in out.output, out.output
    # a column that is not personal keeps its value and message
    assert "4.0" in text or "= 4" in text, text
