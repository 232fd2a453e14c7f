"""The overview's "datasets at risk": a failing anomaly check (with its band), a volume
anomaly in the published steps, and schema drift say so, with the numbers."""

from __future__ import annotations

from pathlib import Path

import lockgate
from lockgate.state import StateStore
from lockgate.ui import queries as q
from tests.anomaly.test_anomaly_check import _project, _seed
from tests.run.helpers import csv_source, make_project


def test_anomaly_check_and_volume_signal(tmp_path: Path) -> None:
    project = _project(tmp_path, [{"type": "anomaly", "metric": "row_count"}], rows=4)
    _seed(project, "row_count_anomaly", [100, 98, 103, 101, 99, 102, 100, 97, 104, 100, 101])
    assert lockgate.run(project).steps[0].status == "blocked"
    with StateStore.open(project.state_url) as state:
        (risk,) = q.at_risk(project, state, ["events"])
        text = "; ".join(risk.reasons)
        assert "last step blocked" in text
        assert "anomaly: row_count_anomaly 4 outside [" in text
        assert "failing checks" not in text  # said once, as an anomaly
    # the check declared warn now: a batch far below the published history publishes, and
    # the overview's volume signal (rows published) sees it
    checks = [{"type": "anomaly", "metric": "row_count", "severity": "warn"}]
    project = _project(tmp_path, checks, rows=1)
    assert lockgate.run(project).steps[0].status == "success"
    with StateStore.open(project.state_url) as state:
        (risk,) = q.at_risk(project, state, ["events"])
        text = "; ".join(risk.reasons)
        assert "anomaly: row_count 1 (" in text and "sigma from the expected" in text
        # cached per newest step: the same answer without recomputation
        assert q.at_risk(project, state, ["events"])[0].reasons == risk.reasons


def test_schema_drift_names_the_change(tmp_path: Path) -> None:
    project = _project(tmp_path, [], rows=3)
    assert lockgate.run(project).ok
    make_project(
        tmp_path,
        [csv_source("events", "data/events.csv", write={"mode": "overwrite"})],
        files={"data/events.csv": "id,amount,email,extra\n1,1.0,a@x.io,z\n"},
    )
    project = lockgate.load_project(tmp_path)
    assert lockgate.run(project).ok
    with StateStore.open(project.state_url) as state:
        (risk,) = q.at_risk(project, state, ["events"])
    assert "schema drift in the last run: added column 'extra' VARCHAR" in risk.reasons


def test_run_and_dataset_pages_show_the_expected_band(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from lockgate.ui.app import create_app

    project = _project(tmp_path, [{"type": "anomaly", "metric": "row_count"}], rows=4)
    _seed(project, "row_count_anomaly", [100, 98, 103, 101, 99, 102, 100, 97, 104, 100, 101])
    run_id = lockgate.run(project).run_id
    with TestClient(create_app(project, auth_required=False)) as c:
        run_page = c.get(f"/runs/{run_id}").text
        ds_page = c.get("/datasets/events").text
        home = c.get("/").text
    for html in (run_page, ds_page):
        assert "row_count_anomaly" in html and "expected [" in html
    assert "anomaly: row_count_anomaly 4 outside [" in home
