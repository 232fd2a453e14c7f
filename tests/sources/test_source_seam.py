"""The source seam, used from outside the package: a toy adapter with its own config model,
a resume token that advances and a capability flag off, run through ``lockgate.run``.

This is what "how to add a source" in docs/internals.md promises: one module, no edit to
lockgate (not project/models.py, not sources/__init__.py, not the run loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pytest
from pydantic import Field
from sqlglot import exp

import lockgate
from lockgate.engine.session import Session, table_ref
from lockgate.errors import ConfigError
from lockgate.project import json_schema, load_project, validate_project
from lockgate.sources import (
    ResumeToken,
    Source,
    SourceConfig,
    StagedSource,
    register_source,
    registered_types,
)
from lockgate.sources.base import create_rejects_table
from lockgate.state import StateStore
from tests.run.helpers import make_project


class CounterConfig(SourceConfig):
    """A counter: each run reads the next ``batch`` integers."""

    type: Literal["counter"] = "counter"
    batch: int = Field(ge=1, description="how many numbers one run reads")


@register_source
class CounterSource(Source):
    TYPE: ClassVar[str] = "counter"
    CONFIG: ClassVar[type[SourceConfig]] = CounterConfig
    SUPPORTS_INCREMENTAL: ClassVar[bool] = True
    SUPPORTS_FINGERPRINT: ClassVar[bool] = False  # off: every run reads the source
    staged_with: ClassVar[list[ResumeToken]] = []  # what the run loop handed back

    def stage(self, session: Session, table: str, *, resume: ResumeToken = None) -> StagedSource:
        assert isinstance(self.config, CounterConfig)
        type(self).staged_with.append(resume)
        start = int(resume["next"]) if isinstance(resume, dict) else 0  # type: ignore[arg-type]
        end = start + self.config.batch
        numbers = exp.func("range", exp.Literal.number(start), exp.Literal.number(end))
        query = exp.select(exp.alias_(exp.column("range"), "n")).from_(numbers)
        session.execute(exp.Create(this=table_ref(table), kind="TABLE", expression=query))
        create_rejects_table(session.con, table)
        return StagedSource(
            rows=end - start, rejected=0, fingerprint=None, files=[], resume={"next": end}
        )


def _project(root: Path, **dataset: object) -> Path:
    source = {"name": "numbers", "source": {"type": "counter", "batch": 3}, **dataset}
    return make_project(root, [source])


def test_registered_from_outside() -> None:
    assert "counter" in registered_types()
    schema = json_schema("datasets")
    defs = schema["$defs"]
    assert defs["CounterConfig"]["properties"]["batch"]["description"]
    assert "type" in defs["CounterConfig"]["required"]
    mapping = defs["DatasetSpec"]["properties"]["source"]["anyOf"][0]["discriminator"]["mapping"]
    assert mapping["counter"] == "#/$defs/CounterConfig"


def test_resume_token_advances_through_the_run_loop(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", incremental={"cursor": "n"})
    CounterSource.staged_with.clear()
    first = lockgate.run(root)
    second = lockgate.run(root)
    assert first.ok and second.ok
    # the adapter's own token, stored by the run loop and handed back unread
    assert CounterSource.staged_with == [None, {"next": 3}]
    assert [s.inputs["resume"] for s in (*first.steps, *second.steps)] == [
        {"next": 3},
        {"next": 6},
    ]
    # no fingerprint: the second run was not a no-op, it read the next batch
    assert second.steps[0].status == "success" and second.steps[0].rows_out == 3
    assert sorted(lockgate.read(root, "numbers").column("n").to_pylist()) == list(range(6))
    project = load_project(root)
    with StateStore.open(project.state_url) as state:
        steps = state.dataset_steps(project.name, "numbers", limit=5)
    assert steps[0].input_versions["resume"] == {"next": 6}


def test_full_refresh_reads_from_scratch(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", incremental={"cursor": "n"})
    CounterSource.staged_with.clear()
    lockgate.run(root)
    lockgate.run(root, full_refresh=True)
    assert CounterSource.staged_with == [None, None]


def test_config_errors_come_from_the_adapter_model(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p", [{"name": "numbers", "source": {"type": "counter", "bach": 3}}]
    )
    problems = validate_project(root)
    assert any(
        "unknown key 'bach'" in p.message and p.hint == "did you mean 'batch'?" for p in problems
    )
    assert all(p.file == "datasets/main.yaml" and p.line for p in problems)
    with pytest.raises(ConfigError):
        load_project(root)
