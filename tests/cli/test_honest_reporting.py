"""What the read commands show is what happened: table-level checks show their observed
value, warn failures say warn, quarantined rows are never cut and say why with the value,
superseded rows are history, scores say what they are."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lockgate.cli.common import check_cells
from tests.cli.helpers import cli
from tests.run.helpers import csv_source, make_project

LONG = "status_is_one_of_the_accepted_lifecycle_states_of_an_order_placed_shipped_delivered"
ORDERS = """\
order_id,customer_id,status,amount
1,10,placed,10.5
2,11,shipped,-14.39
3,,bogus_status_value_from_a_legacy_system,5.0
4,12,placed,30.25
5,10,delivered,30.0
"""
WIDTHS = ("60", "80", "140")


def _project(root: Path, mode: str = "overwrite") -> Path:
    checks: list[dict[str, Any]] = [
        {"type": "between", "column": "amount", "min": 0, "max": 100000},
        {
            "type": "accepted_values",
            "column": "status",
            "name": LONG,
            "values": ["placed", "shipped", "delivered"],
        },
        {"type": "not_null", "column": "customer_id"},
        {"type": "aggregate_between", "column": "amount", "agg": "mean", "min": 0, "max": 1000},
        {"type": "row_count", "min": 1000, "severity": "warn"},
    ]
    return make_project(
        root,
        [csv_source("orders", "data/orders.csv", checks=checks, write={"mode": mode})],
        files={"data/orders.csv": ORDERS},
    )


def _run(root: Path) -> str:
    r = cli("run", "-p", str(root), "--json")
    assert r.exit_code == 0, r.output
    return str(json.loads(r.stdout)["run_id"])


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, str]:
    root = _project(tmp_path / "p")
    return root, _run(root)


def test_table_level_checks_show_observed_and_warn(
    ran: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, run_id = ran
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", width)
        for args in (("show", "orders"), ("runs", run_id[:8])):
            r = cli(*args, "-p", str(root))
            assert r.exit_code == 0, r.output
            out = r.stdout
            # a table-level check shows what it observed, not "0.0000% pass"
            assert re.search(r"pass amount_mean_between \(error, accuracy\): .*12\.272", out)
            # a failed warn-severity check says warn, not fail
            assert "  warn row_count (warn, completeness): 5 rows, expected [1000, None]" in out
            assert "  FAIL amount_between (error, accuracy): 1 of 5 rows fail" in out
            assert "0.0000%" not in out and not re.search(r"\bfail\s*$", out, re.M)
            assert "…" not in out
    detail = json.loads(cli("runs", run_id, "-p", str(root), "--json").stdout)
    checks = {c["check_name"]: c for s in detail["steps"] for c in s["checks"]}
    assert checks["amount_mean_between"]["observed"] == pytest.approx(12.272)


def test_check_cells_label_by_severity_and_kind() -> None:
    table_pass = {
        "check_name": "dup",
        "severity": "error",
        "passed": True,
        "fraction": None,
        "observed": 0.00214,
        "failing_rows": 0,
        "message": None,
    }
    cells = check_cells(table_pass)
    assert cells[2] == "[green]pass[/]" and cells[4] == "" and "0.00214" in cells[5]
    warn = {**table_pass, "severity": "warn", "passed": False, "failing_rows": 1}
    assert check_cells(warn)[2] == "[yellow]warn[/]"
    row_fail = {
        "check_name": "nn",
        "severity": "error",
        "passed": False,
        "fraction": 0.25,
        "observed": None,
        "failing_rows": 3,
        "message": "3 of 12 rows fail",
    }
    cells = check_cells(row_fail)
    assert cells[2] == "[red]FAIL[/]" and cells[3] == "3" and cells[4] == "25.000%"


def test_quarantine_is_never_truncated_and_says_why(
    ran: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = ran
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", width)
        r = cli("quarantine", "orders", "-p", str(root))
        assert r.exit_code == 0, r.output
        out = r.stdout
        assert LONG in out
        assert "amount=-14.39 not in [0, 100000]" in out
        assert "status='bogus_status_value_from_a_legacy_system' not in accepted values" in out
        assert "customer_id is NULL" in out
        assert "…" not in out
    q = json.loads(cli("quarantine", "orders", "-p", str(root), "--json").stdout)
    why = {w["check"]: w["reason"] for r in q["rows"] for w in r["_lg_why"]}
    assert why["amount_between"] == "amount=-14.39 not in [0, 100000]"
    assert why["customer_id_not_null"] == "customer_id is NULL"


def test_unknown_check_is_an_error(ran: tuple[Path, str]) -> None:
    root, _ = ran
    for extra in ([], ["--json"]):
        r = cli("quarantine", "orders", "--check", "amount_betwen", "-p", str(root), *extra)
        assert r.exit_code == 2
        assert r.stdout == ""
        assert (
            "no check 'amount_betwen'" in r.stderr and "did you mean 'amount_between'" in r.stderr
        )
    ok = cli("quarantine", "orders", "--check", LONG, "-p", str(root), "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["total"] == 1
    # a check with no quarantined rows yet is known: an empty answer, not an error
    none = cli("quarantine", "orders", "--check", "amount_mean_between", "-p", str(root), "--json")
    assert none.exit_code == 0 and json.loads(none.stdout)["total"] == 0


def test_quarantine_defaults_to_current_data(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", mode="overwrite")
    first = _run(root)
    (root / "data" / "orders.csv").write_text(
        "order_id,customer_id,status,amount\n1,10,placed,10.5\n2,11,shipped,-1\n"
    )
    second = _run(root)
    cur = json.loads(cli("quarantine", "orders", "-p", str(root), "--json").stdout)
    assert cur["scope"] == "current"
    assert {r["_lg_run_id"] for r in cur["rows"]} == {second}
    assert cur["total"] == 1 and cur["superseded_rows_hidden"] == 2
    everything = json.loads(cli("quarantine", "orders", "-p", str(root), "--all", "--json").stdout)
    assert everything["total"] == 3
    assert {r["_lg_run_id"] for r in everything["rows"]} == {first, second}
    text = cli("quarantine", "orders", "-p", str(root)).stdout
    assert "1 quarantined rows (current data)" in text and "--all" in text


def test_append_keeps_every_batch_current_until_a_full_refresh(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", mode="append")
    _run(root)
    (root / "data" / "orders2.csv").write_text(
        "order_id,customer_id,status,amount\n9,10,placed,-2\n"
    )
    ds = root / "datasets" / "main.yaml"
    ds.write_text(ds.read_text().replace("data/orders.csv", "data/orders*.csv"))
    _run(root)  # the changed glob reads orders.csv again: its 2 bad rows are appended again
    q = json.loads(cli("quarantine", "orders", "-p", str(root), "--json").stdout)
    assert q["superseded_rows_hidden"] == 0 and q["total"] == 5
    r = cli("run", "-p", str(root), "--full-refresh", "--json")
    assert r.exit_code == 0, r.output
    last = json.loads(r.stdout)["run_id"]
    q = json.loads(cli("quarantine", "orders", "-p", str(root), "--all", "--json").stdout)
    assert q["total"] == 3 and {x["_lg_run_id"] for x in q["rows"]} == {last}


def test_scores_are_defined_where_shown(ran: tuple[Path, str]) -> None:
    root, _ = ran
    for args in (("quality", "orders"), ("show", "orders")):
        r = cli(*args, "-p", str(root))
        assert r.exit_code == 0, r.output
        assert "docs/checks.md#quality-score" in r.stdout
        assert "quality score = mean over the quality dimensions" in r.stdout
        j = json.loads(cli(*args, "-p", str(root), "--json").stdout)
        scored = j if args[0] == "quality" else j["score"]
        assert scored["docs"] == "docs/checks.md#quality-score"
    show = json.loads(cli("show", "orders", "-p", str(root), "--json").stdout)
    assert 0 < show["score"]["scores"]["overall"] < 1


def test_check_output_is_never_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS)
    cf = tmp_path / "c.yaml"
    cf.write_text(
        f"checks:\n  - type: accepted_values\n    column: status\n    name: {LONG}\n"
        "    values: [placed, shipped, delivered]\n"
        "  - type: row_count\n    min: 1000\n    severity: warn\n"
    )
    for width in WIDTHS:
        monkeypatch.setenv("COLUMNS", width)
        r = cli("check", str(tmp_path / "orders.csv"), "-c", str(cf))
        assert r.exit_code == 1
        assert f"  FAIL {LONG} (error, validity): 1 of 5 rows fail" in r.stdout
        assert "  warn row_count (warn, completeness): 5 rows, expected [1000, None]" in r.stdout
        assert "…" not in r.stdout
