"""Alert reminders (``remind_after``) and routing by the datasets' owners and tags, over real
runs and a real HTTP receiver; time moves by an injected clock, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

import lockgate
from lockgate.errors import ConfigError
from lockgate.ops.alerts import Alerter, routes
from lockgate.project import load_project
from lockgate.project.ops_models import AlertSpec
from lockgate.state import StateStore
from lockgate.state.ops import open_incidents, remind_incident
from tests.ops.helpers import receiver, scheduled_project

BAD = "id,amount\n1,10\n,20\n"
GOOD = "id,amount\n1,10\n2,20\n3,30\n"


def owned(root: Path, owner: str, tags: list[str]) -> None:
    doc = yaml.safe_load((root / "datasets/main.yaml").read_text())
    doc["datasets"][0].update(owner=owner, tags=tags)
    (root / "datasets/main.yaml").write_text(yaml.safe_dump(doc))


def test_a_reminder_after_remind_after_then_one_resolved(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    (root / "data/orders.csv").write_text(BAD)
    now = [datetime(2026, 3, 1, 10, 0, tzinfo=UTC)]
    project = load_project(root)
    state = StateStore.open(project.state_url)
    with receiver() as rx:
        env = {"URL": rx.url}
        nag = AlertSpec(name="nag", type="webhook", url_env="URL", remind_after="4h")
        once = AlertSpec(name="once", type="slack", url_env="URL")
        alerter = Alerter(
            project.config.name,
            state,
            (nag, once),
            env=env,
            sleep=lambda s: None,
            clock=lambda: now[0],
        )

        def go(csv: str) -> None:
            (root / "data/orders.csv").write_text(csv)
            lockgate.run(project, listeners=[alerter])

        go(BAD)  # firing: both targets
        now[0] += timedelta(hours=3)
        go(BAD + "4,40\n")  # 3 h later: still open, not yet a reminder
        assert [b.get("status") for b in rx.bodies if "status" in b] == ["firing"]
        now[0] += timedelta(hours=1, minutes=1)
        go(BAD + "5,50\n")  # 4 h 1 min after the alert: one reminder, webhook only
        go(BAD + "6,60\n")  # the same moment again: no second reminder
        hook = [b for b in rx.bodies if "status" in b]
        assert [(b["status"], b["reminder"]) for b in hook] == [("firing", 0), ("reminder", 1)]
        assert hook[1]["summary"].startswith("still open (reminder 1): error check")
        slack = [b["text"] for b in rx.bodies if "text" in b]
        assert len(slack) == 1 and slack[0].startswith("[firing]")
        now[0] += timedelta(hours=4)
        go(BAD + "7,70\n")  # 4 h after the reminder: the second one
        go(GOOD)
        statuses = [(b["status"], b["reminder"]) for b in rx.bodies if "status" in b]
        assert statuses == [("firing", 0), ("reminder", 1), ("reminder", 2), ("resolved", 0)]
        assert sum(1 for b in rx.bodies if "text" in b) == 2  # slack: firing + resolved
        assert open_incidents(state, project.config.name) == set()
        assert not alerter.failures
    state.close()


def test_two_claims_of_the_same_reminder_send_one(tmp_path: Path) -> None:
    """Two schedulers (or a scheduler and a one-off run) seeing the problem at once."""
    root = scheduled_project(tmp_path / "p")
    project = load_project(root)
    state = StateStore.open(project.state_url)
    from lockgate.state.ops import open_incident

    t0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert open_incident(state, "p", "orders", "gate", "gate_blocked", None, t0)
    assert remind_incident(state, "p", "orders", "gate", 3600, t0 + timedelta(minutes=59)) is None
    later = t0 + timedelta(hours=1)
    assert remind_incident(state, "p", "orders", "gate", 3600, later) == 1
    assert remind_incident(state, "p", "orders", "gate", 3600, later) is None
    assert remind_incident(state, "p", "nothing", "gate", 0.001, later) is None  # not open
    state.close()


def test_targets_route_by_owner_and_tag(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    owned(root, "sales@example.com", ["finance", "daily"])
    (root / "data/orders.csv").write_text(BAD)
    project = load_project(root)
    assert routes(project) == {"orders": ("sales@example.com", ("finance", "daily"))}
    state = StateStore.open(project.state_url)
    with receiver() as rx:
        env = {"URL": rx.url}
        targets = (
            AlertSpec(name="sales", type="webhook", url_env="URL", owners=("sales@example.com",)),
            AlertSpec(name="ops", type="webhook", url_env="URL", owners=("ops@example.com",)),
            AlertSpec(name="fin", type="slack", url_env="URL", tags=("finance",)),
            AlertSpec(name="ml", type="slack", url_env="URL", tags=("ml",)),
        )
        alerter = Alerter(
            project.config.name,
            state,
            targets,
            env=env,
            sleep=lambda s: None,
            routes=routes(project),
        )
        lockgate.run(project, listeners=[alerter])
        assert sorted(name for name, _ in alerter.sent) == ["fin", "sales"]
    state.close()


def test_remind_after_must_be_a_positive_duration(tmp_path: Path) -> None:
    root = scheduled_project(
        tmp_path / "p",
        alerts=[{"name": "a", "type": "webhook", "url_env": "U", "remind_after": "0s"}],
    )
    with pytest.raises(ConfigError, match="remind_after must be positive"):
        load_project(root)


def test_a_freshness_warning_that_becomes_an_error_escalates_once(tmp_path: Path) -> None:
    from lockgate.ops.freshness import Level, evaluate
    from lockgate.runloop.runner import open_backends

    root = scheduled_project(tmp_path / "p")  # freshness: warn after 1h, error after 2h
    project = load_project(root)
    lockgate.run(project)
    state, store = open_backends(project)
    t0 = datetime.now(UTC)
    with receiver() as rx:
        hook = AlertSpec(name="hook", type="webhook", url_env="URL")
        alerter = Alerter(
            project.config.name, state, (hook,), env={"URL": rx.url}, sleep=lambda s: None
        )
        for hours, level in ((1.5, Level.WARN), (1.7, Level.WARN), (2.5, Level.ERROR)):
            [f] = evaluate(project, store, t0 + timedelta(hours=hours))
            assert f.level == level
            alerter.freshness([f])
        alerter.freshness(evaluate(project, store, t0 + timedelta(hours=3)))  # still error
        [f] = evaluate(project, store, t0 + timedelta(hours=1.5))  # back to warn: not news
        alerter.freshness([f])
        alerter.freshness(evaluate(project, store, t0))  # fresh
    got = [(b["status"], b["summary"].split(":")[0]) for b in rx.bodies]
    assert got == [
        ("firing", "freshness warn"),
        ("escalated", "escalated from warn to error"),
        ("resolved", "fresh"),
    ]
    state.close()
