"""A run asks each source for its fingerprint once: the plan's answer, taken moments
before, is the step's (a database source's fingerprint is a query: an unchanged table
costs one query per scheduled run, not two). A plan kept longer asks again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.runloop import runner
from lockgate.runloop.plan import plan
from lockgate.sources.files import FileSource
from tests.run.helpers import csv_source, make_project


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = FileSource.fingerprint

    def counted(self: FileSource) -> Any:
        seen.append("fp")
        return real(self)

    monkeypatch.setattr(FileSource, "fingerprint", counted)
    return seen


def test_a_noop_run_asks_its_source_once(tmp_path: Path, calls: list[str]) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", columns={"id": "INTEGER"})],
        files={"data/a.csv": "id\n1\n"},
    )
    assert lockgate.run(root).ok
    calls.clear()
    res = lockgate.run(root)
    assert str(res.steps[0].status) == "noop"
    assert calls == ["fp"]
    # a changed file is still seen (the plan's answer is the file as it is now)
    (root / "data/a.csv").write_text("id\n1\n2\n")
    calls.clear()
    res = lockgate.run(root)
    assert str(res.steps[0].status) == "success" and res.steps[0].rows_out == 2


def test_a_plan_kept_longer_is_asked_again(tmp_path: Path, calls: list[str]) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("a", "data/a.csv", columns={"id": "INTEGER"})],
        files={"data/a.csv": "id\n1\n"},
    )
    assert lockgate.run(root).ok
    project = lockgate.load_project(root)
    fresh = plan(project)
    calls.clear()
    assert str(runner.execute(fresh).steps[0].status) == "noop"
    assert calls == []  # the plan's answer, moments old
    old = plan(project)
    kept = type(old)(
        project=old.project,
        steps=old.steps,
        created_at=datetime.now(UTC) - timedelta(seconds=runner.PLAN_FINGERPRINT_TTL_S + 5),
    )
    calls.clear()
    assert str(runner.execute(kept).steps[0].status) == "noop"
    assert calls == ["fp"]  # asked again
