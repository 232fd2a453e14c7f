"""The lean serving path: the JSON the server writes by hand equals the generic encoder's
answer for any values (hypothesis: floats incl. NaN/inf/-0.0, huge ints, booleans, NULLs,
strings holding ``", "``/quotes/unicode, lists), any number of entities and missing keys;
plans are cached per refs; malformed requests are 422, never 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.features.definitions import FeatureDefinitions, FeatureViewSpec
from lockgate.features.online import Key, Mark, OnlineStore, Vector
from lockgate.features.serve import FeatureServer
from lockgate.features.serving import serve, serve_json, serving_plan

NOW = datetime(2026, 1, 10, tzinfo=UTC)


class MemoryStore(OnlineStore):
    """Vectors in a dict (reads only)."""

    name = "memory"

    def __init__(self, data: dict[tuple[str, Key], Vector]) -> None:
        self.data = data
        self.reads = 0

    def _writer(self, view: str, *, replace: bool, ttl: timedelta | None) -> Any:
        raise NotImplementedError

    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        self.reads += 1
        return [self.data.get((view, k)) for k in keys]

    def mark(self, view: str) -> Mark | None:
        return None


def _defs(features: Sequence[str], second: bool = False) -> FeatureDefinitions:
    views = {
        "a": FeatureViewSpec(
            name="a",
            dataset="d",
            entities=("id",),
            event_timestamp="ts",
            ttl="2d",
            features=tuple({"name": f} for f in features),  # type: ignore[misc]
        )
    }
    if second:
        views["b"] = FeatureViewSpec(
            name="b", dataset="d", entities=("id", "kind"), event_timestamp="ts", features=("x",)
        )
    return FeatureDefinitions(views=views)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(-0.0),
    st.text(max_size=8),
    st.sampled_from([", ", '"q", "r"', "[1, 2]", "é\u2028\x00"]),
    st.lists(st.floats(allow_nan=False, width=32), max_size=3),
)


def _same(fast: bytes, slow: dict[str, object]) -> None:
    # NaN != NaN: compare the texts re-written by one encoder
    assert json.dumps(json.loads(fast)) == json.dumps(json.loads(json.dumps(slow, default=str)))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.one_of(
            st.none(),  # the store holds no vector
            st.tuples(st.integers(0, 5), st.lists(scalars, min_size=3, max_size=3)),
        ),
        max_size=4,
    ),
    second=st.booleans(),
)
def test_the_hand_written_json_equals_the_generic_encoder(
    rows: list[tuple[int, list[object]] | None], second: bool
) -> None:
    feats = ["f0", "f1", "f2"]
    data: dict[tuple[str, Key], Vector] = {}
    ids: list[object] = []
    for i, row in enumerate(rows):
        ids.append(i)
        if row is not None:
            age, values = row
            vec = Vector(NOW - timedelta(days=age), dict(zip(feats, values, strict=True)))
            data[("a", (i,))] = vec  # ages 2..5 are outside the 2-day TTL
            data[("b", (i, "k"))] = Vector(NOW, {"x": values[0]})
    entities: dict[str, list[object]] = {"id": ids}
    refs: list[str] = ["a:f2", "a:f0", "a:f1", "a:f0"]
    if second:
        refs.append("b")
        entities["kind"] = ["k"] * len(ids)
    plan = serving_plan(_defs(feats, second), refs)
    store = MemoryStore(data)
    _same(serve_json(plan, store, entities, now=NOW), serve(plan, store, entities, now=NOW))


def _call(app: FeatureServer, body: bytes, parts: int = 1) -> tuple[int, Any]:
    sent: list[dict[str, object]] = []
    size = max(1, -(-len(body) // parts))
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    msgs = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, object]:
        return msgs.pop(0)

    async def send(msg: dict[str, object]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "path": "/get-online-features"}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return int(sent[0]["status"]), json.loads(bytes(sent[1]["body"]))  # type: ignore[call-overload]


class _Project:
    def __init__(self, defs: FeatureDefinitions) -> None:
        self.features = defs


def test_the_server_caches_plans_and_refuses_malformed_requests() -> None:
    fresh = datetime.now(UTC).replace(microsecond=0)  # the server reads at the real now
    store = MemoryStore({("a", (1,)): Vector(fresh, {"f0": 1.5, "f1": "x", "f2": None})})
    app = FeatureServer(_Project(_defs(["f0", "f1", "f2"])), store)  # type: ignore[arg-type]
    req = {"features": ["a:f0", "a:f1"], "entities": {"id": [1, 2]}}
    body = json.dumps(req).encode()
    status, out = _call(app, body, parts=7)  # a body in parts
    assert status == 200
    assert out["results"][1] == {
        "values": [1.5, None],
        "statuses": ["PRESENT", "NOT_FOUND"],
        "event_timestamps": [fresh.strftime("%Y-%m-%dT%H:%M:%SZ"), "1970-01-01T00:00:00Z"],
    }
    assert _call(app, body) == (200, out) and len(app._plans) == 1
    for bad in (
        b"",  # no body
        b"[1, 2]",  # not an object
        b"{",  # malformed
        b'{"features": [1], "entities": {"id": [1]}}',  # refs must be strings
        b'{"features": {"a": 1}, "entities": {"id": [1]}}',
        b'{"features": ["a:f0"], "entities": {"id": 1}}',  # values must be lists
        b'{"features": ["a:f0"], "entities": {"id": [1], "x": [1, 2]}}',  # lengths differ
        b'{"features": ["a:nope"], "entities": {"id": [1]}}',
        b'{"features": ["a:f0"], "entities": {"other": [1]}}',  # the view's key is missing
        b'{"features": ["a:f0"], "entities": []}',
        b"\xff\xfe",  # not UTF-8
    ):
        status, out = _call(app, bad)
        assert status == 422 and out["detail"], bad
    assert app.errors == 11
    many = {"features": [f"a:f{i % 3}" for i in range(50)], "entities": {"id": [1]}}
    status, out = _call(app, json.dumps(many).encode())
    assert status == 200 and out["metadata"]["feature_names"] == ["id", "f0", "f1", "f2"]
