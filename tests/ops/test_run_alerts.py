"""Alerts fire from a one-off ``lockgate run`` (not only under ``serve``), once per incident;
a partitioned dataset's bad interval is its own incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lockgate.cli.app import app
from tests.ops.helpers import receiver
from tests.ops.partition_helpers import partitioned_project


@pytest.mark.slow
def test_one_off_run_alerts_once_per_bad_interval(tmp_path: Path) -> None:
    # the run uses the real clock: start three days ago (day 1, 2, 3 = today - 3, -2, -1)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=3)
    root = partitioned_project(tmp_path / "p", {}, start=start.isoformat())
    rows = [(1, start, 1), (2, start + timedelta(days=1), None), (3, start + timedelta(days=2), 3)]
    (root / "data/events.csv").write_text(
        "id,ts,amount\n"
        + "".join(f"{i},{d} 10:00:00,{'' if a is None else a}\n" for i, d, a in rows)
    )
    with receiver() as r:
        cfg = yaml.safe_load((root / "lockgate.yaml").read_text())
        cfg["alerts"] = [
            {"name": "hook", "type": "webhook", "url_env": "LG_HOOK", "events": ["gate_blocked"]}
        ]
        (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
        env = {"LG_HOOK": r.url}
        doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
        doc["datasets"][1]["checks"] = [{"type": "not_null", "column": "amount"}]
        (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))
        first = CliRunner(env=env).invoke(app, ["run", "--project", str(root), "-j", "1"])
        assert first.exit_code == 0, first.output  # good days published: the run succeeds
        blocked = [b for b in r.bodies if b["status"] == "firing"]
        assert [b["dataset"] for b in blocked] == ["daily"]
        assert (start + timedelta(days=1)).isoformat() in blocked[0][
            "summary"
        ] and "T0KEN" not in str(r.bodies)
        again = CliRunner(env=env).invoke(app, ["run", "--project", str(root), "-j", "1"])
        assert again.exit_code == 1  # only the bad day is due: blocked
        assert len([b for b in r.bodies if b["status"] == "firing"]) == 1  # no second alert
