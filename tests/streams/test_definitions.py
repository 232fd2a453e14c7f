"""``streams:`` in dataset files: loaded into Project.streams, errors located file:line."""

from __future__ import annotations

from pathlib import Path

from lockgate.project import validate_project
from lockgate.project.loader import load_project
from tests.streams.conftest import stream_def, write_project

REDIS = {"type": "redis", "stream": "s"}


def test_stream_definition_loads(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path, [stream_def(REDIS)]))
    spec = project.streams["events"]
    assert spec.dedup is not None and spec.dedup.key == ("event_id",)
    assert spec.mask_rule("email").method == "hash"
    assert spec.defined_in == "datasets/streams.yaml"


def test_unknown_key_and_bad_source_are_located(tmp_path: Path) -> None:
    bad = stream_def({"type": "redis", "stream": "s", "grup": "x"}, windw="1m")
    problems = validate_project(write_project(tmp_path, [bad]))
    text = [f"{p.file}:{p.line} {p.message}" for p in problems]
    assert any("windw" in t and t.startswith("datasets/streams.yaml:") for t in text), text
    assert any("grup" in t for t in text), text
    assert all(p.line for p in problems)


def test_columns_used_must_be_declared(tmp_path: Path) -> None:
    bad = stream_def(
        REDIS,
        dedup={"key": ["nope"]},
        mask={"mail": "redact"},
        checks=[{"type": "not_null", "column": "missing"}],
    )
    problems = validate_project(write_project(tmp_path, [bad]))
    messages = " | ".join(p.message for p in problems)
    assert "dedup: unknown column 'nope'" in messages
    assert "mask: unknown column 'mail'" in messages
    assert "missing" in messages
    assert all(p.file == "datasets/streams.yaml" and p.line for p in problems)


def test_bad_duration_is_a_problem(tmp_path: Path) -> None:
    bad = stream_def(REDIS, batch={"max_latency": "soon"})
    problems = validate_project(write_project(tmp_path, [bad]))
    assert any("max_latency" in p.message or "duration" in p.message for p in problems)


def test_enrich_and_event_time_are_validated(tmp_path: Path) -> None:
    bad = stream_def(
        REDIS,
        enrich=[{"dataset": "customers", "on": "nope", "columns": ["email", "tier"]}],
        event_time={"column": "amount", "late": "bad name!"},
    )
    problems = validate_project(write_project(tmp_path, [bad]))
    messages = " | ".join(p.message for p in problems)
    assert "late" in messages  # not a dataset name
    good_late = stream_def(
        REDIS,
        enrich=[{"dataset": "customers", "on": "nope", "columns": ["email", "tier"]}],
        event_time={"column": "amount"},
        checks=[{"type": "between", "column": "tier", "min": 1}],
    )
    problems = validate_project(write_project(tmp_path / "b", [good_late]))
    messages = " | ".join(p.message for p in problems)
    assert "enrich: unknown column 'nope'" in messages
    assert "column 'email' from customers is already a column" in messages
    assert "event_time: column 'amount' is DOUBLE, not a TIMESTAMP" in messages
    assert "tier" in messages  # VARCHAR unless typed: between needs a number


def test_typed_enriched_columns_can_be_checked(tmp_path: Path) -> None:
    ok = stream_def(
        REDIS,
        enrich=[{"dataset": "customers", "on": "user_id", "columns": {"tier": "INTEGER"}}],
        checks=[{"type": "between", "column": "tier", "min": 1}],
        event_time={"column": "ts", "allowed_lateness": "5m", "late": "events_late"},
    )
    assert validate_project(write_project(tmp_path, [ok])) == []


def test_a_stream_may_not_write_a_dataset_or_another_streams_table(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        [
            stream_def(REDIS),
            stream_def(REDIS, name="other", event_time={"column": "ts", "late": "events"}),
        ],
    )
    (root / "datasets" / "events_src.yaml").write_text(
        "datasets:\n  - name: other__dlq\n    transform: {sql: select 1 as x}\n"
    )
    messages = " | ".join(p.message for p in validate_project(root))
    assert "stream 'other': writes table 'other__dlq', which is also a dataset" in messages
    assert "stream 'other': writes table 'events', as stream 'events' does" in messages
