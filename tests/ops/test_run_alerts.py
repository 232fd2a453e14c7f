"""Alerts fire from a one-off ``lockgate run`` (not only under ``serve``), once per incident;
a partitioned dataset's bad interval is its own incident."""

from __future__ import annotations

import yaml
from pathlib import Path

from typer.testing import CliRunner

from lockgate.cli.app import app
from tests.ops.helpers import receiver
from tests.ops.partition_helpers import partitioned_project


def test_one_off_run_alerts_once_per_bad_interval(tmp_path: Path, monkeypatch: object) -> None:
    root = partitioned_project(tmp_path / "p", {1: [1], 2: [None], 3: [3]}, start="2024-01-01")
    with receiver() as r:
        cfg = yaml.safe_load((root / "lockgate.yaml").read_text())
        cfg["alerts"] = [
            {"name": "hook", "type": "webhook", "url_env": "LG_HOOK", "events": ["gate_blocked"]}
        ]
        (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
        env = {"LG_HOOK": r.url}
        # the clock is real: every day since 2024-01-04 is due and empty (row_count blocks)
        # — so end the window: start after today is impossible; limit with lag instead
        doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
        doc["datasets"][1]["checks"] = [{"type": "not_null", "column": "amount"}]
        (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
        first = CliRunner(env=env).invoke(app, ["run", "--project", str(root), "-j", "1"])
        assert first.exit_code == 0, first.output  # good days published: the run succeeds
        blocked = [b for b in r.bodies if b["status"] == "firing"]
        assert [b["dataset"] for b in blocked] == ["daily"]
        assert "2024-01-02" in blocked[0]["summary"] and "T0KEN" not in str(r.bodies)
        again = CliRunner(env=env).invoke(app, ["run", "--project", str(root), "-j", "1"])
        assert again.exit_code == 1  # only the bad day is due: blocked
        assert len([b for b in r.bodies if b["status"] == "firing"]) == 1  # no second alert
