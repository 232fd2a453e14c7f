"""Sensors: a step waits for a file fingerprint, an upstream table version or a SQL
condition, up to a deadline; past it the step fails naming the sensor. No sleeps: waiting
is driven by an injected sleep function."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lockgate.errors import ConfigError
from lockgate.ops.sensors import SensorTimeout, wait_for_sensors
from lockgate.project import load_project
from lockgate.runloop.runner import run
from lockgate.storage import store_for
from tests.run.helpers import csv_source, make_project, sql

EVENTS = csv_source("events", "data/events.csv", write={"mode": "overwrite"})


def project(root: Path, sensors: list[dict[str, object]]) -> Path:
    report = sql("report", "SELECT count(*) AS n FROM events", sensors=sensors,
                 write={"mode": "overwrite"})  # fmt: skip
    return make_project(root, [EVENTS, report], files={"data/events.csv": "id\n1\n2\n"})


def status(root: Path, name: str = "report") -> tuple[str, str]:
    s = run(load_project(root), max_workers=1).step(name)
    return str(s.status), s.reason


def test_file_sensor_waits_for_new_files(tmp_path: Path) -> None:
    root = project(tmp_path / "p", [{"type": "file", "path": "landing/*.done", "deadline": "0s"}])
    st, why = status(root)
    assert st == "failed" and "sensor file:landing/*.done not met within 0s" in why
    assert "no file matches" in why
    (root / "landing").mkdir()
    (root / "landing" / "a.done").write_text("x")
    assert status(root)[0] == "success"
    st, why = status(root)  # the same files again: nothing new to wait for
    assert st == "failed" and "unchanged" in why
    (root / "landing" / "b.done").write_text("y")
    assert status(root)[0] in ("success", "noop")


def test_table_sensor_waits_for_a_newer_upstream_version(tmp_path: Path) -> None:
    root = project(tmp_path / "p", [{"type": "table", "dataset": "events", "deadline": 0}])
    assert status(root)[0] == "success"  # events published version 0 in this run
    st, why = status(root)
    assert st == "failed" and "'events' is still at version 0" in why
    (root / "data/events.csv").write_text("id\n1\n2\n3\n")
    assert status(root)[0] == "success"


def test_sql_sensor(tmp_path: Path) -> None:
    check = {"type": "sql", "sql": "SELECT count(*) >= 3 FROM events", "deadline": "0s"}
    root = project(tmp_path / "p", [check])
    assert status(root)[0] == "failed"
    (root / "data/events.csv").write_text("id\n1\n2\n3\n")
    assert status(root)[0] == "success"


def test_wait_polls_until_met_before_the_deadline(tmp_path: Path) -> None:
    root = project(tmp_path / "p", [{"type": "file", "path": "in.csv", "deadline": "1h"}])
    p = load_project(root)
    ctx = SimpleNamespace(
        project=p, store=store_for("delta", p.warehouse_path), lease=None,
        report=lambda d, ph: None,
    )  # fmt: skip
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:  # the file appears while the sensor waits
        slept.append(s)
        now[0] += s
        if len(slept) == 3:
            (root / "in.csv").write_text("x")

    tokens = wait_for_sensors(ctx, p.datasets["report"], {}, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert len(slept) == 3 and slept[0] == 30.0 and tokens["file:in.csv"]
    spec = p.datasets["report"].model_copy(
        update={"sensors": (p.datasets["report"].sensors[0].model_copy(update={"deadline": 90}),)}
    )
    with pytest.raises(SensorTimeout, match="unchanged"):
        wait_for_sensors(ctx, spec, tokens, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]


def test_sensor_config_errors(tmp_path: Path) -> None:
    root = project(tmp_path / "p", [{"type": "table"}])
    with pytest.raises(ConfigError, match="needs 'dataset'"):
        load_project(root)
