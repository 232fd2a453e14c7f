"""Inputs the other stream tests do not use: every message ends in the table or in the DLQ
with a reason (never lost, never twice), and a first batch wholly rejected still starts
the sink."""

from __future__ import annotations

import json
from pathlib import Path

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.runner import StreamRunner
from tests.streams.conftest import event
from tests.streams.test_dedup_semantics import _spec
from tests.streams.test_restart import ListConsumer


def _run(
    tmp_path: Path, msgs: list[bytes], sizes: list[int]
) -> tuple[dict[str, object], list[str]]:
    store = store_for("delta", tmp_path)
    with engine_for() as con:
        c = StreamRunner(_spec(), ListConsumer(msgs, sizes), store, con).run(until_idle=True).counts
    assert c.reconciles and c.read == len(msgs)
    t = store.read("events")
    rows = {
        e: ts
        for e, ts in zip(t.column("event_id").to_pylist(), t.column("ts").to_pylist(), strict=True)
    }
    reasons = store.read("events__dlq").sort_by("seq").column("reason").to_pylist() if store.exists(
        "events__dlq"
    ) else []  # fmt: skip
    assert len(rows) + len(reasons) == len(msgs)
    return rows, reasons


def test_a_first_batch_wholly_rejected_by_the_checks_starts_the_sink(tmp_path: Path) -> None:
    """Before: creating the sink from an empty batch failed (DuckDB's "Etc/UTC" zone is not
    a Delta type) — on every restart: the stream could never start."""
    rows, reasons = _run(tmp_path, [event(1, amount=-1.0), event(2)], [1, 1])
    assert list(rows) == ["e2"] and reasons == ["checks: amount_between"]


def test_odd_messages_go_to_the_dlq_with_a_reason(tmp_path: Path) -> None:
    e5 = json.loads(event(5))
    msgs = [
        event(1),
        b"",  # 0 bytes
        b"[1, 2]",  # a JSON array
        json.dumps([e5]).encode(),  # an array holding an object
        json.dumps({**e5, "event_id": {"a": 1}}).encode(),  # key column: a nested object
        b'{"event_id": "big", "p": "' + b"x" * 5_000_000 + b'"}',  # 5 MB
        event(6, ts=1767225600),  # epoch seconds for a TIMESTAMP
        event(2),
    ]
    rows, reasons = _run(tmp_path, msgs, [8])
    assert sorted(rows) == ["e1", "e2"]
    assert reasons[0] == "empty message"
    assert reasons[1:3] == ["parse: not a JSON object"] * 2
    assert "event_id" in reasons[3] and "object" in reasons[3]
    assert reasons[4].startswith("too large")
    assert "/ts" in reasons[5]


def test_event_times_with_offsets_are_stored_in_utc(tmp_path: Path) -> None:
    msgs = [
        event(1, ts="2026-01-01T02:00:00+02:00"),
        event(2, ts="2026-01-01T00:00:00Z"),
        event(3, ts="2026-01-01 00:00:00"),
        event(4, ts="2025-12-31T19:00:00-05:00"),
    ]
    rows, reasons = _run(tmp_path, msgs, [4])
    assert reasons == [] and len(set(rows.values())) == 1  # the same instant, four spellings
