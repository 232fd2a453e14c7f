"""The read API behind `lockgate quarantine`: the same answer for the CLI and a notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.errors import UsageError
from tests.run.helpers import csv_source, make_project


def test_quarantine_view_counts_explains_and_filters(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "o",
                "data/o.csv",
                columns={"id": "BIGINT", "amount": "DOUBLE"},
                checks=[
                    {"type": "between", "column": "amount", "min": 0, "max": 100},
                    {"type": "not_null", "column": "amount"},
                ],
            )
        ],
        files={"data/o.csv": "id,amount\n1,5\n2,-14.39\n3,\n4,500\nx,1\n"},
    )
    res = lockgate.run(root)
    assert res.step("o").rows_quarantined == 4
    view = lockgate.quarantine(root, "o")
    assert (view.exists, view.total, view.scope) == (True, 4, "current")
    assert view.by_check == {"amount_between": 2, "amount_not_null": 1, "parse_error": 1}
    why = {r["id"]: r["_lg_why"] for r in view.rows if r.get("id") is not None}
    assert why[2] == [{"check": "amount_between", "reason": "amount=-14.39 not in [0, 100]"}]
    only = lockgate.quarantine(root, "o", check="amount_not_null")
    assert only.total == 1 and only.rows[0]["id"] == 3
    assert lockgate.quarantine(root, "o", run=res.run_id[:8], limit=1).total == 4
    assert len(lockgate.quarantine(root, "o", limit=1).rows) == 1
    assert lockgate.quarantine(root, "o", run="ffffffff").total == 0
    with pytest.raises(UsageError, match="did you mean"):
        lockgate.quarantine(root, "o", check="amount_betwen")
    with pytest.raises(UsageError, match="unknown dataset"):
        lockgate.quarantine(root, "oo")


def test_dataset_info_is_what_show_renders(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("o", "data/o.csv", columns={"id": "BIGINT", "amount": "DOUBLE"})],
        files={"data/o.csv": "id,amount\n1,5\n2,7\n"},
    )
    before = lockgate.api.dataset_info(root, "o")
    assert (before["version"], before["schema"], before["sample"]) == (None, None, [])
    res = lockgate.run(root)
    info = lockgate.api.dataset_info(root, "o", sample_rows=1)
    assert info["version"] == 0 and info["upstream"] == []
    assert info["schema"] == [{"name": "id", "type": "int64"}, {"name": "amount", "type": "double"}]
    assert len(info["sample"]) == 1 and set(info["sample"][0]) == {"id", "amount"}
    assert [s.run_id for s in info["last_steps"]] == [res.run_id]
    assert info["score"] is None or info["score"]["docs"].endswith("#quality-score")
    with pytest.raises(UsageError, match="unknown dataset"):
        lockgate.api.dataset_info(root, "x")
