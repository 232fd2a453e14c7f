"""Schema drift as an incident: what changed, in which run, which downstream columns and
checks are affected (column lineage) — in ``lockgate show`` and in the drift alert."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.lineage.drift import drift_incidents
from lockgate.ops.alerts import Alerter
from lockgate.project.ops_models import AlertSpec
from lockgate.state import StateStore
from tests.ops.helpers import receiver
from tests.run.helpers import csv_source, make_project, sql


def _project(root: Path) -> lockgate.Project:
    make_project(
        root,
        [
            csv_source("raw", "data/raw.csv", write={"mode": "overwrite"}),
            sql(
                "clean",
                "select id, amount * 2 as amt, note from raw",
                checks=[{"type": "between", "column": "amt", "min": 0}],
            ),
            sql("top", "select id, amt from clean where amt > 10"),
        ],
        files={"data/raw.csv": "id,amount,note\n1,10,a\n2,20,b\n"},
    )
    return lockgate.load_project(root)


def test_removed_and_retyped_columns_become_an_incident_in_show_and_alerts(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    assert lockgate.run(project).ok
    # the source drops `note` and `amount` turns into text
    (tmp_path / "data/raw.csv").write_text("id,amount\n1,ten\n2,twenty\n")
    with receiver() as rx:
        state = StateStore.open(project.state_url)
        hook = AlertSpec(name="hook", type="webhook", url_env="HOOK")
        alerter = Alerter(
            project.config.name,
            state,
            (hook,),
            env={"HOOK": rx.url},
            sleep=lambda s: None,
            lineage=lambda: lockgate.lineage.project_lineage(project, warehouse=False),
        )
        result = lockgate.run(project, select=["raw"], listeners=[alerter])
        state.close()
    (step,) = result.steps
    assert step.status == "success", step
    (inc,) = drift_incidents(project, "raw")
    assert inc.run_id == result.run_id and inc.version == 2
    assert "removed column 'note' (was VARCHAR)" in inc.changes
    assert any("'amount' changed type" in c for c in inc.changes)
    assert "clean.amt" in inc.affected_columns and "clean.note" in inc.affected_columns
    assert "top.amt" in inc.affected_columns  # two hops down
    assert "clean.amt_between" in inc.affected_checks
    drift_alerts = [b for b in rx.bodies if b.get("event") == "schema_drift"]
    assert len(drift_alerts) == 1
    assert (
        "clean.amt" in drift_alerts[0]["summary"]
        and "removed column 'note'" in (drift_alerts[0]["summary"])
    )
    out = CliRunner().invoke(app, ["show", "raw", "--project", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "schema drift v2" in out.output and "removed column 'note'" in out.output
    assert "clean.amt" in out.output and "check clean.amt_between" in out.output
    js = CliRunner().invoke(app, ["show", "raw", "--project", str(tmp_path), "--json"])
    (d,) = json.loads(js.output)["drift_incidents"]
    assert d["run_id"] == result.run_id and "top.amt" in d["affected_columns"]


def test_no_drift_no_incident(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert lockgate.run(project).ok
    assert drift_incidents(project, "raw") == []
    assert drift_incidents(project, "clean") == []
