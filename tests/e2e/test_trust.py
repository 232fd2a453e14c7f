"""The CLI's side of trusting the warehouse over the state store: a name clash exits 2 and
says how to fix it; a damaged table fails its dataset (exit 1, the run is in the history,
the hint names the repair) and `--full-refresh` repairs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli
from tests.run.helpers import csv_source, make_project

pytestmark = pytest.mark.slow


def _project(root: Path, state: str, rows: int) -> Path:
    data = "ts,v\n" + "".join(f"{i},{i}\n" for i in range(1, rows + 1))
    return make_project(
        root,
        [
            csv_source("ev", "data/*.csv", incremental={"cursor": "ts"}),
            csv_source("other", "o.csv"),
        ],
        files={"data/1.csv": data, "o.csv": "k\n1\n"},
        config={"name": "shop", "state": state},
    )


def test_same_name_in_one_state_store_exits_2(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'shared' / 'state.db'}"
    a = _project(tmp_path / "a", state, rows=100)
    b = _project(tmp_path / "b", state, rows=200)
    r = run_cli(a, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli(b, "run")
    assert r.returncode == 2, r.stdout + r.stderr
    err = " ".join(r.stderr.split())
    assert "already used" in err and str(tmp_path / "a" / "warehouse") in err
    assert "hint:" in err and "name:" in err
    assert not (b / "warehouse" / "ev").exists()


def test_deleted_log_fails_the_dataset_and_full_refresh_repairs(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "sqlite:///.lockgate/state.db", rows=10)
    assert run_cli(root, "run").returncode == 0
    (root / "data" / "2.csv").write_text("ts,v\n11,11\n12,12\n")
    assert run_cli(root, "run").returncode == 0
    sorted((root / "warehouse" / "ev" / "_delta_log").glob("*.json"))[-1].unlink()
    (root / "data" / "3.csv").write_text("ts,v\n13,13\n")

    r = run_cli(root, "run", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    result = json.loads(r.stdout)
    steps = {s["dataset"]: s for s in result["steps"]}
    assert steps["ev"]["status"] == "failed" and "commits were lost" in steps["ev"]["reason"]
    assert steps["other"]["status"] in ("noop", "success")
    assert "lockgate run --select ev --full-refresh" in " ".join(r.stderr.split())
    runs = json.loads(run_cli(root, "runs", "--json").stdout)
    assert runs[0]["run_id"] == result["run_id"]  # the failed run is in the history
    assert runs[0]["status"] == result["status"] == "failed"

    r = run_cli(root, "run", "--select", "ev", "--full-refresh", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["steps"][0]["rows_out"] == 13
