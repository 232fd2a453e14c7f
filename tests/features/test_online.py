"""Online store: materialise the latest known vectors, read them in Feast's response shape
(TTL enforced at read time), over the raw ASGI app; online agrees with offline at "now"."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

import lockgate
from lockgate.features import training_set
from lockgate.features.materialize import materialize
from lockgate.features.online import SQLiteOnlineStore, get_online_features
from lockgate.features.serve import FeatureServer
from lockgate.project import load_project
from tests.features.test_project_features import FEATURES_YAML, _project

NOW = datetime(2024, 1, 8, tzinfo=UTC)
VIEW = FEATURES_YAML.replace(
    "    event_timestamp: day\n", "    event_timestamp: day\n    created_timestamp: day\n"
)


def _materialized(tmp_path: Path) -> tuple[object, SQLiteOnlineStore]:
    root = _project(tmp_path / "p", VIEW)
    assert lockgate.run(root).ok
    project = load_project(root)
    store = SQLiteOnlineStore(tmp_path / "online.db")
    done = materialize(project, store=store, now=NOW)
    assert done["spend"].mode == "full" and done["spend"].written == 2
    return project, store


def test_latest_vectors_in_feasts_shape(tmp_path: Path) -> None:
    project, store = _materialized(tmp_path)
    out = get_online_features(
        project,
        "churn",
        {"customer_id": [1, 2, 7]},
        store=store,
        now=NOW,  # type: ignore[arg-type]
    )
    assert out["metadata"] == {"feature_names": ["customer_id", "spend", "visits"]}
    ids, spend, visits = out["results"]  # type: ignore[misc]
    assert ids["values"] == [1, 2, 7]
    assert spend["values"] == [20.0, 5.0, None] and visits["values"] == [2, 1, None]
    assert spend["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert spend["event_timestamps"][0] == "2024-01-05T00:00:00Z"


def test_ttl_is_enforced_at_read_time(tmp_path: Path) -> None:
    project, store = _materialized(tmp_path)
    later = datetime(2024, 1, 10, tzinfo=UTC)  # 2024-01-03 + 7d = 01-10: expired (exclusive)
    out = get_online_features(
        project, ["spend:spend"], {"customer_id": [1, 2]}, store=store, now=later
    )  # type: ignore[arg-type]
    spend = out["results"][1]  # type: ignore[index]
    assert spend["values"] == [20.0, None]
    assert spend["statuses"] == ["PRESENT", "OUTSIDE_MAX_AGE"]


def test_online_matches_offline_at_the_same_time(tmp_path: Path) -> None:
    project, store = _materialized(tmp_path)
    ids = [1, 2, 3]
    online = get_online_features(project, "spend", {"customer_id": ids}, store=store, now=NOW)  # type: ignore[arg-type]
    labels = pa.table({"customer_id": ids, "event_timestamp": [NOW.replace(tzinfo=None)] * 3})
    offline = training_set(project, "spend", labels)  # type: ignore[arg-type]
    assert online["results"][1]["values"] == offline.column("spend").to_pylist()  # type: ignore[index]


def _call(app: FeatureServer, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg: dict[str, object]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": method, "path": path}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return int(sent[0]["status"]), bytes(sent[1]["body"])  # type: ignore[call-overload]


def test_asgi_app_speaks_feasts_protocol(tmp_path: Path) -> None:
    project, store = _materialized(tmp_path)
    app = FeatureServer(project, store)  # type: ignore[arg-type]
    req = {"features": ["spend:spend"], "entities": {"customer_id": [2]}}
    status, body = _call(app, "POST", "/get-online-features", json.dumps(req).encode())
    assert status == 200
    res = json.loads(body)
    assert res["metadata"]["feature_names"] == ["customer_id", "spend"]
    # served at the real "now": the 7-day TTL of January 2024's rows has long expired
    assert res["results"][1] == {
        "values": [None],
        "statuses": ["OUTSIDE_MAX_AGE"],
        "event_timestamps": ["2024-01-03T00:00:00Z"],
    }
    assert _call(app, "GET", "/health") == (200, b'{"status": "ok"}')
    status, body = _call(app, "POST", "/get-online-features", b'{"features": ["nope"]}')
    assert status == 422
    status, body = _call(app, "GET", "/metrics")
    assert b"lockgate_feature_errors_total 1" in body
