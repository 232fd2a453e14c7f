"""The online read path, lean: a request's feature refs are resolved once into a
:class:`ServingPlan` (the server keeps them by refs), then each request is one store read
per view and a response built per entity, not per cell.

:func:`serve` answers in the shape of Feast's feature server (``/get-online-features``):
``{"metadata": {"feature_names": [...]}, "results": [{"values", "statuses",
"event_timestamps"}, ...]}``, entity columns first. The TTL is enforced at read time: a
vector with ``not event_ts > now - ttl`` is ``OUTSIDE_MAX_AGE`` (NULL values); a key the
store does not hold is ``NOT_FOUND``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lockgate.errors import UsageError
from lockgate.features.definitions import FeatureDefinitions, resolve_features
from lockgate.features.online import OnlineStore, Scalar, Vector, utc

EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class ViewRead:
    """What a plan reads from one view."""

    view: str
    entities: tuple[str, ...]
    features: tuple[str, ...]
    ttl: timedelta | None


@dataclass(frozen=True)
class ServingPlan:
    """The views to read and the response's feature names, for one list of refs."""

    reads: tuple[ViewRead, ...]
    names: tuple[str, ...]  # one per feature, in response order
    names_json: str = ""  # the names as JSON list items (no brackets), written once


def serving_plan(defs: FeatureDefinitions, features: str | Sequence[str]) -> ServingPlan:
    """Resolve ``features`` (a service, or views / ``view:feature`` refs) once."""
    chosen = resolve_features(defs, features)
    reads = tuple(ViewRead(v.name, v.entities, feats, v.ttl_delta) for v, feats in chosen)
    many = len(chosen) > 1
    names = tuple(f"{r.view}__{f}" if many else f for r in reads for f in r.features)
    return ServingPlan(reads, names, json.dumps(list(names))[1:-1])


def _columns(entities: Mapping[str, Sequence[object]]) -> int:
    """The number of entity rows (every column a list of one length), else UsageError."""
    lengths = {k: len(v) for k, v in entities.items() if isinstance(v, list | tuple)}
    if len(lengths) != len(entities) or len(set(lengths.values())) > 1:
        got = ", ".join(f"{k}: {lengths.get(k, type(v).__name__)}" for k, v in entities.items())
        raise UsageError(
            "'entities' must map each entity column to a list of values, all of one length "
            f"(got {got})"
        )
    return next(iter(lengths.values()), 0)


@dataclass
class _Answer:
    """One view's part of a response: per entity the served values, status, event time."""

    read: ViewRead
    live: list[Mapping[str, Scalar] | None]
    statuses: list[str]
    stamps: list[str]


def _answers(
    plan: ServingPlan,
    store: OnlineStore,
    entities: Mapping[str, Sequence[object]],
    now: datetime | None,
) -> list[_Answer]:
    n = _columns(entities)
    at = utc(now) if now is not None else datetime.now(UTC)
    out = []
    for read in plan.reads:
        missing = [k for k in read.entities if k not in entities]
        if missing:
            raise UsageError(
                f"feature view '{read.view}' needs entity column(s) {', '.join(missing)}"
            )
        cols = [entities[k] for k in read.entities]
        keys = [tuple(c[i] for c in cols) for i in range(n)]
        heads = [_head(vec, at, read.ttl) for vec in store.read(read.view, keys)]
        out.append(
            _Answer(read, [h[0] for h in heads], [h[1] for h in heads], [h[2] for h in heads])
        )
    return out


def serve(
    plan: ServingPlan,
    store: OnlineStore,
    entities: Mapping[str, Sequence[object]],
    *,
    now: datetime | None = None,
) -> dict[str, object]:
    """Feast's response for ``entities`` (column → values) under ``plan``."""
    answers = _answers(plan, store, entities, now)
    n = _columns(entities)
    results: list[dict[str, list[Any]]] = [
        {"values": list(vals), "statuses": ["PRESENT"] * n, "event_timestamps": [EPOCH] * n}
        for vals in entities.values()
    ]
    for a in answers:
        for f in a.read.features:
            values = [None if v is None else v.get(f) for v in a.live]
            results.append(  # own lists: a caller may change one feature's without the rest
                {"values": values, "statuses": list(a.statuses), "event_timestamps": list(a.stamps)}
            )
    names = [*entities, *plan.names]
    return {"metadata": {"feature_names": names}, "results": results}


def serve_json(
    plan: ServingPlan,
    store: OnlineStore,
    entities: Mapping[str, Sequence[object]],
    *,
    now: datetime | None = None,
) -> bytes:
    """:func:`serve`'s response as JSON text, written directly: the statuses and event times
    of a view are encoded once for all its features, each value once (the generic encoder
    costs most of a request otherwise)."""
    answers = _answers(plan, store, entities, now)
    n = _columns(entities)
    dumps = json.dumps
    head = ',"statuses":' + _words(["PRESENT"] * n) + ',"event_timestamps":' + _words([EPOCH] * n)
    names = "[" + ",".join(x for x in (dumps(list(entities))[1:-1], plan.names_json) if x) + "]"
    parts = ['{"metadata":{"feature_names":', names, '},"results":[']
    parts.append(",".join('{"values":' + dumps(list(v)) + head + "}" for v in entities.values()))
    for a in answers:
        tail = '],"statuses":' + _words(a.statuses) + ',"event_timestamps":' + _words(a.stamps)
        tail += "}"
        feats = a.read.features
        texts = [_texts(v, feats) for v in a.live]  # per entity: one JSON text per feature
        if n == 1:
            parts.extend([',{"values":[' + t + tail for t in texts[0]])
        else:
            cols = zip(*texts, strict=True) if texts else ((),) * len(feats)
            parts.extend([',{"values":[' + ",".join(c) + tail for c in cols])
    parts.append("]}")
    return "".join(parts).encode()


def _words(words: list[str]) -> str:
    """A JSON list of strings that need no escaping (statuses, ISO times)."""
    return '["' + '","'.join(words) + '"]' if words else "[]"


def _texts(values: Mapping[str, Scalar] | None, features: tuple[str, ...]) -> list[str]:
    """The JSON text of each feature's value, as ``json.dumps`` writes it. Without strings
    or lists (the usual vector: numbers, booleans, NULLs) one encoder call writes them all and
    its ``", "`` separators split them (no number, ``true``/``false``/``null`` or ``NaN``
    holds one); otherwise value by value."""
    if values is None:
        return ["null"] * len(features)
    row = [values.get(f) for f in features]
    if {type(v) for v in row} <= _PLAIN:
        return json.dumps(row)[1:-1].split(", ") if row else []
    return [json.dumps(v, default=str) for v in row]


#: value types whose JSON text never holds ", " (strings, lists, objects may)
_PLAIN = frozenset({float, int, bool, type(None)})


def _head(
    vec: Vector | None, at: datetime, ttl: timedelta | None
) -> tuple[Mapping[str, Scalar] | None, str, str]:
    """(values if served, Feast status, event time) of one entity's vector."""
    if vec is None:
        return None, "NOT_FOUND", EPOCH
    stamp = vec.event_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if ttl is not None and not vec.event_ts > at - ttl:
        return None, "OUTSIDE_MAX_AGE", stamp
    return vec.values, "PRESENT", stamp
