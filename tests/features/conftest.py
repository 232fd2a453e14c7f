"""Fixtures of the feature-store tests: a project whose feature table the test writes
version by version (plain Delta commits), and a Redis key prefix per test."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from tests.conftest import require_service

EVENTS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("day", pa.timestamp("us")),
        ("created", pa.timestamp("us")),
        ("spend", pa.float64()),
    ]
)


def events_project(root: Path, online_store: str = "", ttl: str = "") -> Path:
    """A project with dataset ``events`` (written by the test) and view ``ev``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "lockgate.yaml").write_text(f"name: feat\n{online_store}")
    (root / "datasets").mkdir(exist_ok=True)
    ttl_line = f"    ttl: {ttl}\n" if ttl else ""
    (root / "datasets" / "events.yaml").write_text(
        textwrap.dedent(
            """\
            datasets:
              - name: events
                source:
                  type: file
                  path: events.csv
                  columns: {customer_id: BIGINT, day: TIMESTAMP, created: TIMESTAMP, spend: DOUBLE}
            """
        )
        + "feature_views:\n  - name: ev\n    dataset: events\n    entities: [customer_id]\n"
        "    event_timestamp: day\n    created_timestamp: created\n"
        + ttl_line
        + "    features: [spend]\n"
    )
    return root


Row = tuple[int | None, datetime | None, datetime | None, float | None]


def write_events(root: Path, rows: list[Row], mode: str = "append") -> None:
    """One Delta commit of ``rows`` into the project's ``events`` table."""
    from deltalake import write_deltalake

    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    table = pa.table(
        {f.name: pa.array(list(c), f.type) for f, c in zip(EVENTS_SCHEMA, cols, strict=True)},
        schema=EVENTS_SCHEMA,
    )
    write_deltalake(str(root / "warehouse" / "events"), table, mode=mode)  # type: ignore[arg-type]


def delete_events(root: Path, predicate: str) -> None:
    from deltalake import DeltaTable

    DeltaTable(str(root / "warehouse" / "events")).delete(predicate)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are removed afterwards."""
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    prefix = f"lg-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis()
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()
