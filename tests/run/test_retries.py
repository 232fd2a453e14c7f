"""Transient errors are retried with backoff; terminal ones are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.errors import StorageError
from lockgate.runloop.results import StepStatus
from lockgate.state import StateStore
from lockgate.storage import DeltaStore
from tests.run.helpers import csv_source, make_project


def _project(tmp_path: Path, retries: int) -> Path:
    return make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv")],
        files={"data/a.csv": "x\n1\n2\n"},
        config={"defaults": {"retries": retries, "retry_backoff_seconds": 0.01}},
    )


def _flaky_publish(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    calls: list[int] = []
    real = DeltaStore.publish_query  # the run loop's entry point for a dataset's batch

    def publish(self: DeltaStore, name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            raise StorageError("simulated commit conflict")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(DeltaStore, "publish_query", publish)
    return calls


def test_transient_publish_error_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, retries=2)
    calls = _flaky_publish(monkeypatch, failures=1)
    res = lockgate.run(root)
    a = res.step("a")
    assert a.status == StepStatus.SUCCESS and a.attempts == 2 and len(calls) == 2
    assert lockgate.read(root, "a").num_rows == 2
    p = lockgate.load_project(root)
    run = StateStore.open(p.state_url).get_run(res.run_id)
    attempts = [a for rows in run.attempts.values() for a in rows]
    assert [x.status for x in attempts] == ["error", "success"]
    assert attempts[0].transient is True


def test_retries_exhausted_fails_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, retries=1)
    calls = _flaky_publish(monkeypatch, failures=5)
    a = lockgate.run(root).step("a")
    assert a.status == StepStatus.FAILED and a.attempts == 2 and len(calls) == 2
    assert "simulated commit conflict" in a.reason
    assert not DeltaStore(root / "warehouse").exists("a")


def test_dataset_retry_policy_overrides_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", retry={"retries": 3, "backoff_seconds": 0})],
        files={"data/a.csv": "x\n1\n2\n"},
        config={"defaults": {"retries": 0}},
    )
    calls = _flaky_publish(monkeypatch, failures=3)
    a = lockgate.run(root).step("a")
    assert a.status == StepStatus.SUCCESS and a.attempts == 4 and len(calls) == 4


def test_step_timeout_interrupts_the_query_and_fails_only_that_step(tmp_path: Path) -> None:
    from tests.run.helpers import sql

    # a query that would run for hours; the timeout interrupts it
    endless = "select sum(r.range % 7) as n from range(1000000000000) r"
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv"), sql("slow", endless, timeout="1s")],
        files={"data/a.csv": "x\n1\n2\n"},
    )
    res = lockgate.run(root, max_workers=1)
    slow = res.step("slow")
    assert res.step("a").status == StepStatus.SUCCESS
    assert slow.status == StepStatus.FAILED and slow.attempts == 1
    assert "timed out after 1s" in (slow.error or slow.reason)
