"""Enrichment from a reference dataset and event time (watermark, allowed lateness, late
events to the DLQ or a late table) on a real Redis stream; counts always reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.storage.base import CommitTag, TableWrite
from lockgate.streams.service import run_stream
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def _customers(root: Path, rows: list[tuple[int, str, str]], seq: int = 1) -> None:
    store = store_for("delta", root / "warehouse")
    table = pa.table(
        {
            "user_id": [r[0] for r in rows],
            "country": [r[1] for r in rows],
            "segment": [r[2] for r in rows],
        }
    )
    tag = CommitTag(run_id=f"seed{seq}", run_seq=seq, batch_id=str(seq))
    store.publish("customers", table.to_reader(), write=TableWrite("append"), tag=tag)


def _project(root: Path, stream: str, **over: Any) -> Path:
    return write_project(root, [stream_def({"type": "redis", "stream": stream}, **over)])


def _read(root: Path, name: str) -> pa.Table:
    return store_for("delta", root / "warehouse").read(name)


ENRICH = [{"dataset": "customers", "on": "user_id", "columns": ["country", "segment"]}]


def test_enrich_keeps_misses_with_nulls_and_never_multiplies(
    tmp_path: Path, redis_stream: str
) -> None:
    # user 3 twice in the reference: still one row per event
    _customers(tmp_path, [(i, f"c{i}", "gold") for i in range(10)] + [(3, "dup", "x")])
    publish_redis(redis_stream, [event(i) for i in range(15)])
    root = _project(tmp_path, redis_stream, enrich=ENRICH)
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.read, c.published, c.enrich_missed) == (15, 15, 5)
    rows = _read(root, "events").to_pylist()
    by_user = {r["user_id"]: r for r in rows}
    assert len(rows) == 15
    assert by_user[5]["country"] == "c5" and by_user[5]["segment"] == "gold"
    assert by_user[3]["country"] in ("c3", "dup")
    assert all(by_user[i]["country"] is None for i in range(10, 15))


def test_enrich_missing_to_dlq_and_checks_on_enriched_columns(
    tmp_path: Path, redis_stream: str
) -> None:
    _customers(tmp_path, [(i, "NL" if i % 2 else "", "s") for i in range(10)])
    publish_redis(redis_stream, [event(i) for i in range(12)])
    enrich = [{**ENRICH[0], "missing": "dlq"}]
    checks = [{"type": "accepted_values", "column": "country", "values": ["NL"]}]
    root = _project(tmp_path, redis_stream, enrich=enrich, checks=checks)
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.published, c.dlq) == (5, 7)
    reasons = _read(root, "events__dlq").column("reason").to_pylist()
    assert sum(r.startswith("enrich: no match in customers") for r in reasons) == 2
    assert sum(r.startswith("checks:") for r in reasons) == 5


def test_reference_changes_are_seen_by_the_next_batch(tmp_path: Path, redis_stream: str) -> None:
    _customers(tmp_path, [(1, "FR", "s")])
    publish_redis(redis_stream, [event(1), event(2)])
    root = _project(tmp_path, redis_stream, enrich=ENRICH)
    run_stream(load_project(root), "events", until_idle=True)
    _customers(tmp_path, [(2, "DE", "s")], seq=2)
    publish_redis(redis_stream, [event(3, user_id=2)])
    run_stream(load_project(root), "events", until_idle=True)
    rows = {r["event_id"]: r["country"] for r in _read(root, "events").to_pylist()}
    assert rows == {"e1": "FR", "e2": None, "e3": "DE"}


def _ts(minute: int) -> str:
    return (
        f"2026-01-01T12:{minute:02d}:00" if minute >= 0 else f"2026-01-01T11:{60 + minute:02d}:00"
    )


def test_late_events_go_to_the_dlq_named_and_counted(tmp_path: Path, redis_stream: str) -> None:
    first = [event(i, ts=_ts(30 + i)) for i in range(7)]  # batch 1: newest 12:36
    later = [
        event(10, ts=_ts(28)),  # 8 min behind: within the 10 min allowed
        event(11, ts=_ts(20)),  # 16 min behind: late
        event(12, ts=_ts(-30)),  # an hour behind: late
        event(13, ts=_ts(40)),
        event(14, ts=None),  # no event time: not late
    ]
    publish_redis(redis_stream, first + later)
    et = {"column": "ts", "allowed_lateness": "10m"}
    root = _project(tmp_path, redis_stream, event_time=et)
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.published, c.dlq) == (10, 2)
    dlq = _read(root, "events__dlq").to_pylist()
    assert all(r["reason"].startswith("late: event time before the watermark") for r in dlq)
    assert sorted(r["payload"] for r in dlq) == sorted([later[1], later[2]])


def test_watermark_survives_a_restart(tmp_path: Path, redis_stream: str) -> None:
    publish_redis(redis_stream, [event(i, ts=_ts(30 + i)) for i in range(3)])
    et = {"column": "ts", "allowed_lateness": "5m"}
    root = _project(tmp_path, redis_stream, event_time=et)
    run_stream(load_project(root), "events", until_idle=True)
    # a new process: the watermark (12:32 - 5m) comes back from the sink's last commit
    publish_redis(redis_stream, [event(20, ts=_ts(10))])
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert (c.read, c.dlq, c.published) == (1, 1, 0)


def test_late_events_to_a_late_table_are_checked_and_masked(
    tmp_path: Path, redis_stream: str
) -> None:
    first = [event(i, ts=_ts(30 + i)) for i in range(7)]
    later = [event(20, ts=_ts(0)), event(21, ts=_ts(1), amount=-5.0), event(22, ts=_ts(50))]
    publish_redis(redis_stream, first + later)
    et = {"column": "ts", "allowed_lateness": "1m", "late": "events_late"}
    root = _project(tmp_path, redis_stream, event_time=et)
    c = run_stream(load_project(root), "events", until_idle=True).counts
    assert c.reconciles and (c.published, c.late, c.dlq) == (8, 1, 1)
    late = _read(root, "events_late").to_pylist()
    assert [r["event_id"] for r in late] == ["e20"]
    assert "@" not in late[0]["email"]
    assert "__lg_late" not in _read(root, "events").column_names
