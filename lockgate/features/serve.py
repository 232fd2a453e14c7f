"""A raw ASGI app compatible with Feast's feature server (no framework: the lean stack the
issue measured — uvicorn + raw ASGI — adds ~35 µs over a null app).

- ``POST /get-online-features`` ``{"features": [...] | "feature_service": "...",
  "entities": {"customer_id": [...]}}`` → Feast's response shape
  (:func:`lockgate.features.online.get_online_features`);
- ``GET /health`` → ``{"status": "ok"}``; ``GET /metrics`` → Prometheus text (request and
  error counts).

Run it with ``lockgate features serve`` (needs ``uvicorn``: ``pip install lockgate[serve]``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING

from lockgate.errors import LockgateError
from lockgate.features.online import OnlineStore
from lockgate.features.serving import ServingPlan, serve_json, serving_plan

if TYPE_CHECKING:
    from lockgate.project import Project

Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FeatureServer:
    """The ASGI callable: ``FeatureServer(project, store)``."""

    #: distinct feature lists whose resolution is kept (a client sends a handful)
    PLANS = 1024

    def __init__(self, project: Project, store: OnlineStore) -> None:
        self.project = project
        self.store = store
        self.requests = 0
        self.errors = 0
        self._plans: dict[str | tuple[str, ...], ServingPlan] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.requests += 1
        if path == "/get-online-features" and scope["method"] == "POST":
            await self._features(receive, send)
        elif path == "/health":
            await _respond(send, 200, {"status": "ok"})
        elif path == "/metrics":
            text = (
                f"lockgate_feature_requests_total {self.requests}\n"
                f"lockgate_feature_errors_total {self.errors}\n"
            )
            await _respond(send, 200, text.encode(), content_type=b"text/plain; version=0.0.4")
        else:
            await _respond(send, 404, {"detail": "not found"})

    def plan(self, features: object) -> ServingPlan:
        """The resolved plan of ``features`` (a service name or a list of refs), cached."""
        if isinstance(features, str):
            key: str | tuple[str, ...] = features
        elif isinstance(features, list):
            try:
                key = tuple(features)
                plan = self._plans.get(key)  # a known list: its refs were checked
            except TypeError:  # an unhashable item (a list, an object)
                plan = None
            if plan is not None:
                return plan
            if not all(isinstance(f, str) for f in features):
                raise ValueError("'features' must be a list of 'view:feature' refs")
        else:
            raise ValueError("'features' must be a list of 'view:feature' refs")
        plan = self._plans.get(key)
        if plan is None:
            plan = serving_plan(self.project.features, key)
            if len(self._plans) >= self.PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    async def _features(self, receive: Receive, send: Send) -> None:
        msg = await receive()
        first = msg.get("body", b"")
        body = first if isinstance(first, bytes) else b""
        if msg.get("more_body"):  # a large body in parts
            parts = [body]
            while msg.get("more_body"):
                msg = await receive()
                chunk = msg.get("body", b"")
                parts.append(chunk if isinstance(chunk, bytes) else b"")
            body = b"".join(parts)
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("the request body must be a JSON object")
            features = req.get("feature_service") or req.get("features")
            entities = req.get("entities")
            if not features or not isinstance(entities, dict):
                raise ValueError("give 'features' (or 'feature_service') and 'entities'")
            out = serve_json(self.plan(features), self.store, entities)
        except (ValueError, LockgateError) as e:
            self.errors += 1
            await _respond(send, 422, {"detail": str(e)})
            return
        await _respond(send, 200, out)


async def _respond(
    send: Send, status: int, body: object, content_type: bytes = b"application/json"
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(data))],
        }
    )
    await send({"type": "http.response.body", "body": data})
