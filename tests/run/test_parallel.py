"""A frozen plan, executed with independent steps at the same time.

Concurrency is proven with a barrier, never with timing: two transforms that each wait for
the other at a ``threading.Barrier(2)`` can only both pass when they run at once (run one
after the other, the first one's wait times out, fails its step and breaks the barrier)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.engine.session import Session
from lockgate.runloop import events as ev
from lockgate.runloop import runner
from lockgate.runloop.plan import Action, Cause, plan
from lockgate.runloop.results import StepStatus
from tests.run.helpers import csv_source, make_project, sql

SRC = "id,v\n1,10\n2,20\n3,30\n"

BARRIER_PY = """
import threading
from lockgate import transform

# both transforms must be inside their step at the same time to pass (the timeout is only
# the safety net that turns a sequential run into a failure instead of a hang)
MEET = threading.Barrier(2, timeout=60)

@transform
def left(src):
    MEET.wait()
    return src

@transform
def right(src):
    MEET.wait()
    return src
"""

FAILING_PY = """
from lockgate import transform

@transform
def bad(src):
    raise ValueError("this branch breaks")
"""


def _python(name: str, **extra: object) -> dict[str, Any]:
    return {"name": name, "transform": {"python": name}, "write": {"mode": "overwrite"}, **extra}


def _build(tmp_path: Path, datasets: list[dict[str, Any]], py: str | None = None) -> Path:
    """A project whose datasets read ``data/src.csv``; ``py``: its transforms module."""
    files = {"data/src.csv": SRC, **({"datasets/transforms.py": py} if py else {})}
    return make_project(tmp_path / "p", datasets, files=files)


def _story(seen: list[ev.RunEvent]) -> list[tuple[str, str]]:
    return [
        (type(e).__name__, e.dataset)
        for e in seen
        if isinstance(e, ev.StepStarted | ev.StepFinished)
    ]


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    root = _build(
        tmp_path,
        [csv_source("src", "data/src.csv"), _python("left"), _python("right")],
        py=BARRIER_PY,
    )
    res = lockgate.run(root, max_workers=2)
    assert [(s.dataset, str(s.status)) for s in res.steps] == [
        ("src", "success"),
        ("left", "success"),
        ("right", "success"),
    ], [s.reason for s in res.steps]
    assert res.step("left").rows_out == res.step("right").rows_out == 3


def test_downstream_starts_after_its_upstream_steps(tmp_path: Path) -> None:
    root = _build(
        tmp_path,
        [
            csv_source("src", "data/src.csv"),
            sql("a", "select id, v from src where v < 25"),
            sql("b", "select id, v * 2 as w from src"),
            sql("c", "select a.id, a.v, b.w from a join b using (id)"),
        ],
    )
    seen: list[ev.RunEvent] = []
    res = lockgate.run(root, listeners=[seen.append], max_workers=2)
    assert res.ok and [s.dataset for s in res.steps] == ["src", "a", "b", "c"]
    story = _story(seen)
    for up, down in (("src", "a"), ("src", "b"), ("a", "c"), ("b", "c")):
        assert story.index(("StepFinished", up)) < story.index(("StepStarted", down)), story
    assert res.step("c").rows_out == 2  # it read what a and b published in this run
    assert res.step("c").inputs["a"] == res.step("a").output_version


def test_a_failed_branch_skips_only_its_own_downstream(tmp_path: Path) -> None:
    root = _build(
        tmp_path,
        [
            csv_source("src", "data/src.csv"),
            _python("bad"),
            sql("bad_down", "select * from bad"),
            sql("good", "select * from src"),
            sql("good_down", "select count(*) as n from good"),
        ],
        py=FAILING_PY,
    )
    res = lockgate.run(root, max_workers=2)
    status = {s.dataset: str(s.status) for s in res.steps}
    assert status == {
        "src": "success",
        "bad": "failed",
        "bad_down": "upstream_failed",
        "good": "success",
        "good_down": "success",
    }
    assert res.step("bad_down").reason == "upstream 'bad' failed"
    assert [s.dataset for s in res.steps] == lockgate.plan(root).names  # plan order
    assert str(res.status) == "partial"


def test_one_worker_runs_the_plan_in_order_in_the_calling_thread(tmp_path: Path) -> None:
    root = _build(
        tmp_path,
        [
            csv_source("src", "data/src.csv"),
            csv_source("other", "data/src.csv"),
            sql("a", "select * from src"),
            sql("b", "select * from other"),
        ],
    )
    threads: set[str] = set()
    seen: list[ev.RunEvent] = []

    def listen(e: ev.RunEvent) -> None:
        if isinstance(e, ev.StepStarted | ev.StepPhase):
            threads.add(threading.current_thread().name)
        seen.append(e)

    p = lockgate.plan(root)
    res = runner.execute(p, listeners=[listen], max_workers=1)
    assert res.ok
    expected = [(kind, name) for name in p.names for kind in ("StepStarted", "StepFinished")]
    assert _story(seen) == expected  # each step ends before the next one starts
    assert threads == {threading.current_thread().name}


def test_the_plan_is_a_frozen_value_and_execute_does_not_plan_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _build(
        tmp_path,
        [csv_source("src", "data/src.csv"), sql("agg", "select count(*) as n from src")],
    )
    project = lockgate.load_project(root)
    p = plan(project)
    assert [(s.dataset, s.action, s.cause) for s in p.steps] == [
        ("src", Action.RUN, Cause.NEW),
        ("agg", Action.RUN, Cause.UPSTREAM),
    ]
    agg = p.step("agg")
    assert agg.depends_on == ("src",) and agg.predicted == ("src",) and agg.kind == "sql"
    assert p.step("src").inputs["source"]["files"]  # the source files' fingerprint
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.full_refresh = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        agg.action = Action.SKIP  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.step("src").inputs["source"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        p.step("src").inputs["source"]["files"][0]["size"] = 0  # type: ignore[index]
    assert isinstance(p.steps, tuple)

    def no_planning(*args: object, **kwargs: object) -> None:
        raise AssertionError("execute planned again")

    monkeypatch.setattr("lockgate.runloop.plan.plan", no_planning)
    monkeypatch.setattr(runner, "plan", no_planning)
    monkeypatch.setattr(type(project), "select", no_planning)
    res = runner.execute(p)
    assert res.ok and [s.dataset for s in res.steps] == ["src", "agg"]
    monkeypatch.undo()

    again = plan(project)
    assert {s.dataset: (s.action, s.cause) for s in again.steps} == {
        "src": (Action.SKIP, Cause.UP_TO_DATE),
        "agg": (Action.SKIP, Cause.UP_TO_DATE),
    }
    assert again.step("agg").inputs == {"src": res.step("src").output_version}
    assert again.step("agg").batch_id == res.step("agg").batch_id
    assert again.step("agg").predicted == ()


def test_plan_causes_name_what_changed(tmp_path: Path) -> None:
    root = _build(
        tmp_path,
        [csv_source("src", "data/src.csv"), sql("agg", "select count(*) as n from src")],
    )
    assert lockgate.run(root).ok
    (root / "data" / "src.csv").write_text(SRC + "4,40\n")
    p = lockgate.plan(root)
    assert (p.step("src").cause, p.step("agg").cause) == (Cause.INPUTS, Cause.UPSTREAM)
    assert lockgate.run(root).ok
    yaml_file = root / "datasets" / "main.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("count(*) as n", "count(*) as rows_n"))
    p = lockgate.plan(root)
    assert (p.step("src").action, p.step("agg").cause) == (Action.SKIP, Cause.DEFINITION)
    assert lockgate.plan(root, full_refresh=True).step("src").cause == Cause.FULL_REFRESH
    assert p.to_dict()["steps"][1]["cause"] == "definition"


def test_worker_sessions_keep_their_objects_apart(tmp_path: Path) -> None:
    """Two steps at once may both register an input under the same name (a dataset's SQL
    reads it by name): each worker's cursor session sees only its own."""
    main = Session(tmp_path / "work", "r1")
    try:
        one, two = main.cursor("lg_w1"), main.cursor("lg_w2")
        one.execute("create view orders as select 1 as a")
        two.execute("create view orders as select 'x' as b, 2 as c")
        two.execute("create table staged as select * from main.orders")  # `main.` too
        assert one.columns("orders") == {"a": "INTEGER"}
        assert two.columns("orders") == {"b": "VARCHAR", "c": "INTEGER"}
        assert two.count("staged") == 1
        one.close()
        two.close()
        assert not list((tmp_path / "work").glob("r1.lg_w*"))
    finally:
        main.close()


def test_cli_max_workers(tmp_path: Path) -> None:
    from tests.cli.helpers import cli

    root = _build(
        tmp_path,
        [csv_source("src", "data/src.csv"), sql("agg", "select count(*) as n from src")],
    )
    r = cli("run", "--max-workers", "1", "-p", str(root))
    assert r.exit_code == 0, r.output
    assert cli("run", "--max-workers", "0", "-p", str(root)).exit_code == 2
    with pytest.raises(lockgate.errors.UsageError):
        lockgate.run(root, max_workers=0)
    res = lockgate.run(root, max_workers=4)
    assert [s.status for s in res.steps] == [StepStatus.NOOP, StepStatus.NOOP]
