"""Stream tests: a real Redis / NATS (skipped when unreachable unless
LOCKGATE_REQUIRE_SERVICES=1), a unique stream name per test, and a project writing it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_service

COLUMNS = {
    "event_id": "VARCHAR",
    "user_id": "BIGINT",
    "email": "VARCHAR",
    "amount": "DOUBLE",
    "ts": "TIMESTAMP",
}
MASK_KEY = "test-mask-key"


@pytest.fixture
def redis_stream() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    name = "lg-test-" + uuid.uuid4().hex[:12]
    yield name
    client = redis.Redis()
    for key in client.scan_iter(match=name + "*"):  # the test's derived streams too
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _mask_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCKGATE_MASK_KEY", MASK_KEY)


def event(i: int, **over: Any) -> bytes:
    e = {
        "event_id": f"e{i}",
        "user_id": i,
        "email": f"user{i}@example.com",
        "amount": float(i % 100),
        "ts": "2026-01-01T00:00:00",
        "extra": "ignored",
    }
    e.update(over)
    return json.dumps(e).encode()


def stream_def(source: dict[str, Any], **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "events",
        "source": source,
        "columns": COLUMNS,
        "dedup": {"key": ["event_id"], "window": "10m"},
        "mask": {"email": "hash"},
        "checks": [{"type": "between", "column": "amount", "min": 0}],
        "sink": {"dataset": "events"},
        "batch": {"max_events": 7, "max_latency": 0.2},
    }
    d.update(over)
    return d


def write_project(root: Path, streams: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lockgate.yaml").write_text(yaml.safe_dump({"name": "streams_test"}))
    (root / "datasets").mkdir(exist_ok=True)
    (root / "datasets" / "streams.yaml").write_text(
        yaml.safe_dump({"streams": streams}, sort_keys=False)
    )
    return root


def publish_redis(stream: str, payloads: list[bytes]) -> None:
    import redis

    client = redis.Redis()
    pipe = client.pipeline(transaction=False)
    for p in payloads:
        pipe.xadd(stream, {"data": p})
    pipe.execute()
    client.close()


def dlq_rows(store: Any, table: str = "events__dlq") -> int:
    """Rows in the stream's DLQ table (a consumer creates it, empty, when it claims the
    stream's fencing token: "nothing committed to the DLQ yet" is 0 rows)."""
    return store.read(table).num_rows if store.exists(table) else 0


def distinct_points(points: list[str], window: int) -> list[int]:
    """Crash points (1-based) of the first ``window``: each label's first occurrence (the
    first batch: no table yet) and its second (a later batch, on top of a commit), and the
    window's last point."""
    seen: dict[str, int] = {}
    picks = {min(window, len(points))}
    for n, label in enumerate(points[:window], 1):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= 2:
            picks.add(n)
    return sorted(picks)
