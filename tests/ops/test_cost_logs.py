"""Per-step cost (CPU seconds, peak memory, bytes read/written) in results and the state
store, and ``--log-format json``: one JSON object per line with run id, dataset, phase,
duration and cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockgate.cli.app import app
from lockgate.project import load_project
from lockgate.state import StateStore
from tests.run.helpers import csv_source, make_project, sql

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cost_is_measured_logged_as_json_and_recorded(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("raw", "data/raw.csv"), sql("agg", "SELECT count(*) AS n FROM raw")],
        files={"data/raw.csv": "id\n" + "".join(f"{i}\n" for i in range(1000))},
    )
    cmd = [sys.executable, "-m", "lockgate", "run", "--log-format", "json", "--json"]
    out = subprocess.run(
        [*cmd, "--project", str(root)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stderr.splitlines() if x.startswith("{")]
    phases = [x for x in lines if x.get("event") == "StepPhase"]
    assert phases and all(x["run_id"] and x["dataset"] and x["phase"] for x in phases)
    done = {x["dataset"]: x for x in lines if x.get("event") == "StepFinished"}
    agg = done["agg"]
    assert agg["duration_s"] >= 0 and agg["cpu_s"] >= 0 and agg["peak_rss_bytes"] > 0
    assert agg["bytes_read"] > 0 and agg["bytes_written"] > 0
    result = json.loads(out.stdout)
    project = load_project(root)
    state = StateStore.open(project.state_url)
    detail = state.get_run(result["run_id"])
    state.close()
    assert detail is not None
    cost = {s.dataset: s.cost for s in detail.steps}
    assert cost["agg"] and cost["agg"]["bytes_written"] == agg["bytes_written"]


def test_unknown_log_format_is_a_usage_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["validate", "--log-format", "xml", "--project", str(tmp_path)])
    assert out.exit_code == 2
