"""Between batches a stream compacts its tables every ``sink.compact_every`` batches and
alerts on its DLQ ratio / lag once per incident (real Redis, real HTTP receiver)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from lockgate.project.loader import load_project
from lockgate.state import StateStore
from lockgate.state.ops import open_incidents
from lockgate.storage import DeltaStore
from lockgate.streams.service import run_stream
from tests.ops.helpers import receiver
from tests.streams.conftest import event, publish_redis, stream_def, write_project


def _alerting(root: Path) -> None:
    cfg = yaml.safe_load((root / "lockgate.yaml").read_text())
    cfg["alerts"] = [{"name": "hook", "type": "webhook", "url_env": "HOOK_URL"}]
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))


def test_compaction_every_n_batches_keeps_rows_and_positions(
    tmp_path: Path, redis_stream: str
) -> None:
    # 7 events per batch: 49 events = 7 batches; compaction after the 3rd and 6th
    publish_redis(redis_stream, [b"{bad"] + [event(i) for i in range(49)])
    d = stream_def({"type": "redis", "stream": redis_stream})
    d["sink"] = {"dataset": "events", "compact_every": 3}
    root = write_project(tmp_path, [d])
    project = load_project(root)
    report = run_stream(project, "events", until_idle=True)
    assert report.counts.read == 50 and report.counts.published == 49
    store = DeltaStore(project.warehouse_path)
    history = [h["operation"] for h in store.history("events", limit=None)]
    assert history.count("OPTIMIZE") == 2, history
    # files: one compacted + the batches after the last compaction (not one per batch)
    assert len(store.open_table("events").file_uris()) < 7
    ids = store.arrow_dataset("events").to_table().column("event_id").to_pylist()
    assert sorted(ids) == sorted(f"e{i}" for i in range(49))
    # the position survived the compaction commits: a restart reads nothing again
    again = run_stream(project, "events", until_idle=True)
    assert again.counts.read == again.counts.already_committed
    store.forget("events")
    assert store.arrow_dataset("events").to_table().num_rows == 49


def test_dlq_ratio_alerts_once_then_resolves(
    tmp_path: Path, redis_stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = stream_def(
        {"type": "redis", "stream": redis_stream},
        alerts={"dlq_ratio_above": 0.2, "window_batches": 2},
        sink={"dataset": "events", "compact_every": 0},
    )
    root = write_project(tmp_path, [d])
    _alerting(root)
    project = load_project(root)
    with receiver() as rx:
        monkeypatch.setenv("HOOK_URL", rx.url)
        # 3 of 7 bad, twice: over 20% -> one alert, not two
        bad = [b"{bad", b"nope", event(99, amount=-1.0)]
        publish_redis(redis_stream, [event(i) for i in range(4)] + bad)
        publish_redis(redis_stream, [event(i) for i in range(4, 8)] + bad)
        run_stream(project, "events", until_idle=True)
        # then clean batches: the ratio over the last 2 batches drops to 0 -> one resolved
        publish_redis(redis_stream, [event(i) for i in range(100, 114)])
        run_stream(project, "events", until_idle=True)
    got = [(b["event"], b["status"], b["dataset"]) for b in rx.bodies]
    assert got == [
        ("stream_dlq", "firing", "stream:events"),
        ("stream_dlq", "resolved", "stream:events"),
    ], got
    assert "went to the DLQ" in rx.bodies[0]["summary"]
    with StateStore.open(project.state_url) as state:
        assert open_incidents(state, project.config.name) == set()


def test_a_failing_compaction_is_logged_counted_and_the_stream_goes_on(
    tmp_path: Path, redis_stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compact_every 2, 7 batches: the first compaction (after batch 2) fails on the sink,
    the stream publishes every batch anyway and compacts at the next interval."""
    from prometheus_client import CollectorRegistry

    import lockgate.optimize as optimize
    from lockgate.streams.record import StreamMetrics

    real = optimize.compact_table
    calls: list[str] = []

    def flaky(store: DeltaStore, name: str, **kw: object) -> optimize.Compaction:
        calls.append(name)
        if len(calls) == 1:
            raise OSError("disk full (injected)")
        return real(store, name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(optimize, "compact_table", flaky)
    publish_redis(redis_stream, [b"{bad"] + [event(i) for i in range(48)])
    d = stream_def({"type": "redis", "stream": redis_stream})
    d["sink"] = {"dataset": "events", "compact_every": 2}
    root = write_project(tmp_path, [d])
    project = load_project(root)
    registry = CollectorRegistry()
    metrics = StreamMetrics(registry)
    report = run_stream(project, "events", until_idle=True, metrics=metrics)
    c = report.counts
    assert c.reconciles and (c.read, c.published, c.dlq) == (49, 48, 1)
    assert report.batches == 7 and report.compaction_errors == 1
    assert calls[0] == "events" and calls.count("events") == 3  # after batches 2, 4, 6
    errors = registry.get_sample_value(
        "lockgate_stream_compaction_errors_total", {"stream": "events"}
    )
    assert errors == 1.0
    store = DeltaStore(project.warehouse_path)
    history = [h["operation"] for h in store.history("events", limit=None)]
    assert history.count("OPTIMIZE") == 2, history  # the failed one retried at the next interval
    ids = store.arrow_dataset("events").to_table().column("event_id").to_pylist()
    assert sorted(ids) == sorted(f"e{i}" for i in range(48))
    assert run_stream(project, "events", until_idle=True).counts.read == 0


def test_window_aggregate_tables_are_compacted_by_upkeep_and_optimize(
    tmp_path: Path, redis_stream: str
) -> None:
    """The aggregates' dataset is one of the stream's tables: upkeep and ``lockgate
    optimize`` compact it like the sink."""
    from lockgate.optimize import optimize, project_tables

    t0 = dt.datetime(2026, 1, 1, 12)
    ts = [(t0 + dt.timedelta(minutes=m)).isoformat() for m in range(0, 64, 2)]  # 2 a batch
    publish_redis(redis_stream, [event(i, ts=t) for i, t in enumerate(ts)])
    d = stream_def(
        {"type": "redis", "stream": redis_stream},
        event_time={"column": "ts", "allowed_lateness": "1m"},
        aggregates=[{"dataset": "per_4m", "size": "4m", "measures": {"n": "count"}}],
        batch={"max_events": 2, "max_latency": 0.2},
    )
    d["sink"] = {"dataset": "events", "compact_every": 5}
    root = write_project(tmp_path, [d])
    project = load_project(root)
    assert "per_4m" in project_tables(project)
    report = run_stream(project, "events", until_idle=True)
    assert report.counts.published == 32 and report.batches == 16
    store = DeltaStore(project.warehouse_path)
    ops = [h["operation"] for h in store.history("per_4m", limit=None)]
    assert ops.count("OPTIMIZE") >= 2, ops
    rows = store.arrow_dataset("per_4m").to_table()
    assert sum(rows.column("n").to_pylist()) == rows.num_rows * 2  # 2 events per 4m window
    # and by `lockgate optimize`: the files written after the last upkeep compaction
    before = len(store.open_table("per_4m").file_uris())
    assert before > 1
    done = optimize(project, min_files=2)
    assert "per_4m" in [c.table for c in done if c.version is not None]
    store.forget("per_4m")
    assert len(store.open_table("per_4m").file_uris()) == 1
    assert store.arrow_dataset("per_4m").to_table().sort_by("window_start") == rows.sort_by(
        "window_start"
    )
