"""`lockgate check` on a CSV with one unconvertible record far beyond the sniffer's sample:
the record is counted in total_rows and reported as rejected (text and --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.attack._util import cli

CHECKS = [
    {"type": "not_null", "column": "id"},
    {"type": "between", "column": "qty", "min": 0, "max": 100},
    {"type": "not_null", "column": "day"},
]


def _csv(path: Path, n: int, bad_row: int, bad_line: str) -> int:
    """n data rows; data row ``bad_row`` (1-based) replaced; returns its physical line."""
    lines = ["id,qty,day"] + [f"{i},{i % 50},2024-01-{i % 28 + 1:02d}" for i in range(1, n + 1)]
    lines[bad_row] = bad_line.format(i=bad_row)
    path.write_text("\n".join(lines) + "\n")
    return bad_row + 1


CASES = [
    ("qty_not_a_number_row_30001", 40_000, 30_001, "{i},many,2024-01-01", "many"),
    ("bad_date_row_99990", 100_000, 99_990, "{i},7,2024-13-45", "2024-13-45"),
    ("ragged_row_31000", 40_000, 31_000, "{i},7,2024-01-01,surplus", "surplus"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_check_counts_and_reports_a_deep_rejected_record(tmp_path: Path, case: tuple) -> None:
    _, n, bad_row, bad_line, marker = case
    data = tmp_path / "deep.csv"
    line = _csv(data, n, bad_row, bad_line)
    checks = tmp_path / "c.yaml"
    checks.write_text(yaml.safe_dump({"checks": CHECKS}))
    r = cli("check", str(data), "-c", str(checks), "--json")
    assert r.exit_code in (0, 1), r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["total_rows"] == n, (
        f"total_rows {out['total_rows']} != {n} records in the file: the unconvertible record "
        f"on line {line} was silently left out"
    )
    rejected = {k: v for k, v in out.items() if "reject" in k.lower()}
    assert rejected, f"--json must report rejected records; keys: {sorted(out)}"
    text = json.dumps(rejected)
    assert str(line) in text or marker in text, (
        f"the rejected record (line {line}) is not identified: {text[:500]}"
    )
    human = cli("check", str(data), "-c", str(checks))
    assert "reject" in (human.stdout + human.stderr).lower(), (
        "the text report must say that a record was rejected: " + human.stdout[-800:]
    )


def test_check_total_does_not_depend_on_which_columns_are_checked(tmp_path: Path) -> None:
    data = tmp_path / "deep.csv"
    _csv(data, 40_000, 30_001, "{i},many,2024-01-01")
    totals = {}
    for cols in (["id"], ["qty"], ["id", "qty", "day"]):
        checks = tmp_path / f"c_{'_'.join(cols)}.yaml"
        checks.write_text(
            yaml.safe_dump({"checks": [{"type": "not_null", "column": c} for c in cols]})
        )
        r = cli("check", str(data), "-c", str(checks), "--json")
        totals[",".join(cols)] = json.loads(r.stdout)["total_rows"]
    assert set(totals.values()) == {40_000}, f"total_rows depends on the checked columns: {totals}"
