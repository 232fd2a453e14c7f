"""Alerts (real HTTP receiver, once per incident, redacted, failures recorded) and the
metrics listener over real runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.ops.alerts import Alerter
from lockgate.ops.freshness import Level, evaluate
from lockgate.ops.metrics import RunMetrics
from lockgate.project import load_project
from lockgate.project.ops_models import AlertSpec
from lockgate.runloop.runner import open_backends
from lockgate.state import StateStore
from lockgate.state.ops import open_incidents
from tests.ops.helpers import receiver, scheduled_project

BAD = "id,amount\n1,10\n,20\n"
GOOD = "id,amount\n1,10\n2,20\n3,30\n"


def _alerter(root: Path, url_env: str, env: dict[str, str]) -> tuple[Alerter, StateStore]:
    project = load_project(root)
    state = StateStore.open(project.state_url)
    hook = AlertSpec(name="hook", type="webhook", url_env=url_env)
    slack = AlertSpec(name="chat", type="slack", url_env=url_env, events=("error_check_failed",))
    return Alerter(project.config.name, state, (hook, slack), env=env, sleep=lambda s: None), state


def test_check_failure_alerts_once_per_incident_then_resolves(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    (root / "data/orders.csv").write_text(BAD)
    with receiver() as rx:
        alerter, state = _alerter(root, "HOOK_URL", {"HOOK_URL": rx.url})
        project = load_project(root)
        lockgate.run(project, listeners=[alerter])
        (root / "data/orders.csv").write_text(BAD + "4,40\n")  # still failing, new batch
        lockgate.run(project, listeners=[alerter])
        firing = [b for b in rx.bodies if b.get("status") == "firing"]
        slack = [b for b in rx.bodies if "text" in b]
        assert len(firing) == 1 and len(slack) == 1  # two failing runs, one alert each target
        assert firing[0]["event"] == "error_check_failed" and firing[0]["dataset"] == "orders"
        # the command the alert suggests works as written
        command = firing[0]["command"]
        assert command == f"lockgate runs {firing[0]['run_id']}"
        ran = CliRunner().invoke(app, [*command.split()[1:], "-p", str(root)])
        assert ran.exit_code == 0 and "id_not_null" in ran.output, ran.output
        assert open_incidents(state, project.config.name) == {("orders", "check id_not_null")}
        (root / "data/orders.csv").write_text(GOOD)
        lockgate.run(project, listeners=[alerter])
        resolved = [b for b in rx.bodies if b.get("status") == "resolved"]
        assert [b["problem"] for b in resolved] == ["check id_not_null"]
        assert open_incidents(state, project.config.name) == set()
        assert not alerter.failures


def test_failed_delivery_is_recorded_redacted_and_never_fails_the_run(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    (root / "data/orders.csv").write_text(BAD)
    with receiver() as rx:
        rx.status = 500
        alerter, _ = _alerter(root, "HOOK_URL", {"HOOK_URL": rx.url})
        result = lockgate.run(load_project(root), listeners=[alerter])
    assert result.step("orders").rows_quarantined == 1  # the run went on
    assert len(alerter.failures) == 2 and len(rx.bodies) == 6  # 3 attempts x 2 targets
    assert all("T0KEN-s3cr3t-path" not in f for f in alerter.failures)
    assert all("500" in f for f in alerter.failures)


def test_freshness_breach_alerts_once_and_recovers(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    project = load_project(root)
    lockgate.run(project)
    _, store = open_backends(project)
    now = datetime.now(UTC)
    assert [f.level for f in evaluate(project, store, now)] == [Level.OK]
    late = now + timedelta(hours=3)
    [f] = evaluate(project, store, late)
    assert f.level == Level.ERROR and f.age_s is not None and f.age_s > 2 * 3600
    with receiver() as rx:
        alerter, _ = _alerter(root, "HOOK_URL", {"HOOK_URL": rx.url})
        alerter.freshness(evaluate(project, store, late))
        alerter.freshness(evaluate(project, store, late + timedelta(minutes=5)))
        alerter.freshness(evaluate(project, store, now))
    assert [(b["event"], b["status"]) for b in rx.bodies] == [
        ("freshness_breached", "firing"),
        ("freshness_breached", "resolved"),
    ]


def test_metrics_listener_counts_runs_steps_rows_and_check_failures(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    (root / "data/orders.csv").write_text(BAD)
    metrics = RunMetrics()
    project = load_project(root)
    lockgate.run(project, listeners=[metrics])
    lockgate.run(project, listeners=[metrics])  # unchanged: noop
    text = metrics.exposition().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    name = project.config.name
    assert samples[("lockgate_runs_total", (("project", name), ("status", "success")))] == 2
    assert samples[("lockgate_steps_total", (("dataset", "orders"), ("status", "success")))] == 1
    assert samples[("lockgate_steps_total", (("dataset", "orders"), ("status", "noop")))] == 1
    rows = {k: samples[("lockgate_rows_total", (("dataset", "orders"), ("kind", k)))]
            for k in ("read", "published", "quarantined")}  # fmt: skip
    assert rows == {"read": 2, "published": 1, "quarantined": 1}
    key = ("lockgate_check_failures_total", (("dataset", "orders"), ("severity", "error")))
    assert samples[key] == 1
    assert ("lockgate_step_duration_seconds_count", (("dataset", "orders"),)) in samples
    assert "run_id" not in text  # no high-cardinality labels


def test_freshness_command_shows_levels_and_exits_1_on_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lockgate.cli.app import app
    from lockgate.ops.clock import FAKE_NOW_ENV

    root = scheduled_project(tmp_path / "p")
    cli = CliRunner()
    never = cli.invoke(app, ["freshness", "--project", str(root), "--json"])
    assert never.exit_code == 1 and '"level": "never"' in never.output
    lockgate.run(load_project(root))
    ok = cli.invoke(app, ["freshness", "--project", str(root)])
    assert ok.exit_code == 0 and "ok" in ok.output
    clock = tmp_path / "now"
    clock.write_text((datetime.now(UTC) + timedelta(hours=90)).isoformat())
    late = cli.invoke(app, ["freshness", "--project", str(root)], env={FAKE_NOW_ENV: str(clock)})
    assert late.exit_code == 1 and "error" in late.output


def test_metrics_text_passes_promtool(tmp_path: Path) -> None:
    import shutil
    import subprocess

    import pytest

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    root = scheduled_project(tmp_path / "p")
    (root / "data/orders.csv").write_text(BAD)
    metrics = RunMetrics()
    lockgate.run(load_project(root), listeners=[metrics])
    out = subprocess.run(
        [promtool, "check", "metrics"], input=metrics.exposition(), capture_output=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == b"" and out.stderr.strip() == b""  # no lint warnings either
