"""Window aggregates against a brute-force oracle: the same messages (duplicates, late and
invalid events, out of order) replayed batch by batch in plain Python, every window
enumerated by its definition, compared with the aggregate tables — also after a crash
between the sink commit and the aggregate commit."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from lockgate.engine import engine_for
from lockgate.errors import ConfigError
from lockgate.project.loader import load_project
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import StreamRunner
from tests.streams.conftest import COLUMNS, event, write_project
from tests.streams.test_restart import ListConsumer

T0 = dt.datetime(2026, 1, 1, 12, 0)
LATENESS = dt.timedelta(minutes=3)
TUMBLING: dict[str, Any] = {
    "dataset": "per_10m",
    "size": "10m",
    "measures": {"n": "count", "total": "sum(amount)"},
}
HOPPING: dict[str, Any] = {
    "dataset": "per_user_hop",
    "size": "10m",
    "slide": "5m",
    "group_by": ["user_id"],
    "measures": {"n": "count", "top": "max(amount)", "users": "count_distinct(event_id)"},
}


def _spec(aggregates: list[dict[str, Any]], prefetch: bool = True) -> StreamSpec:
    return StreamSpec.model_validate(
        {
            "name": "events",
            "source": {"type": "redis", "stream": "unused"},
            "columns": COLUMNS,
            "dedup": {"key": ["event_id"]},
            "checks": [{"type": "between", "column": "amount", "min": 0}],
            "event_time": {"column": "ts", "allowed_lateness": "3m"},
            "aggregates": aggregates,
            "sink": {"dataset": "events"},
            "batch": {"prefetch": prefetch},
        }
    )


def workload(seed: int) -> list[bytes]:
    """Events drifting forward in time with jitter (out of order), some far behind (late),
    duplicates of earlier ones, malformed ones and check failures."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(160):
        minute = i * 0.4 + rng.uniform(-2.5, 2.5)
        if rng.random() < 0.06:
            minute -= rng.uniform(5, 30)  # far behind: late once the watermark is past it
        ts = (T0 + dt.timedelta(minutes=max(minute, 0))).isoformat()
        out.append(event(i, ts=ts, user_id=i % 3, amount=float(rng.randrange(-3, 50))))
        if rng.random() < 0.1:
            out.append(out[rng.randrange(len(out))])  # a duplicate
        if rng.random() < 0.03:
            out.append(b"{not json")
    return out


def oracle(
    messages: list[bytes], sizes: list[int], aggregates: list[dict[str, Any]]
) -> tuple[dict[str, set[tuple[Any, ...]]], int]:
    """Per aggregate table, its expected rows; and the number of late events. ``sizes``:
    the committed batches, in order."""
    seen: set[str] = set()
    newest: dt.datetime | None = None
    published: list[dict[str, Any]] = []
    late = pos = 0
    for size in sizes:
        wm = None if newest is None else newest - LATENESS
        batch_pub = []
        for raw in messages[pos : pos + size]:
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if e["event_id"] in seen:
                continue
            e["ts"] = dt.datetime.fromisoformat(e["ts"])
            if wm is not None and e["ts"] < wm:
                late += 1
            elif e["amount"] >= 0:  # only a published event claims its key
                seen.add(e["event_id"])
                batch_pub.append(e)
        pos += size
        published += batch_pub
        if batch_pub:
            top = max(e["ts"] for e in batch_pub)
            newest = top if newest is None else max(newest, top)
    assert newest is not None
    wm_us = _us(newest - LATENESS)
    out: dict[str, set[tuple[Any, ...]]] = {}
    for agg in aggregates:
        size_us = _dur_us(agg["size"])
        slide_us = _dur_us(agg.get("slide", agg["size"]))
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for e in published:
            t = _us(e["ts"])
            # brute force: every window start on the slide grid near t, by the definition
            for start in range(t - size_us - slide_us, t + slide_us, slide_us):
                start = start // slide_us * slide_us
                if start <= t < start + size_us and start + size_us <= wm_us:
                    key = (start, *(e[c] for c in agg.get("group_by", [])))
                    if e not in groups[key]:
                        groups[key].append(e)
        rows = set()
        for key, evs in groups.items():
            vals: list[Any] = []
            for m in agg["measures"].values():
                if m == "count":
                    vals.append(len(evs))
                elif m == "sum(amount)":
                    vals.append(sum(e["amount"] for e in evs))
                elif m == "max(amount)":
                    vals.append(max(e["amount"] for e in evs))
                elif m == "count_distinct(event_id)":
                    vals.append(len({e["event_id"] for e in evs}))
            rows.add((key[0], key[0] + size_us, *key[1:], *vals))
        out[agg["dataset"]] = rows
    return out, late


def table_rows(path: Path, agg: dict[str, Any]) -> set[tuple[Any, ...]]:
    store = store_for("delta", path)
    if not store.exists(agg["dataset"]):
        return set()
    t = store.read(agg["dataset"])
    cols = ["window_start", "window_end", *agg.get("group_by", []), *agg["measures"]]
    rows = [tuple(r[c] for c in cols) for r in t.to_pylist()]
    assert len(rows) == len(set(rows)), "a window was written twice"
    return {(_us(r[0]), _us(r[1]), *r[2:]) for r in rows}


def _us(t: dt.datetime) -> int:
    return (t.replace(tzinfo=dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
        microseconds=1
    )


def _dur_us(text: str) -> int:
    return int(text.rstrip("m")) * 60_000_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_window_aggregates_equal_a_brute_force_oracle(tmp_path: Path, seed: int) -> None:
    messages = workload(seed)
    rng = random.Random(seed)
    sizes: list[int] = []
    while sum(sizes) < len(messages):
        sizes.append(rng.randrange(1, 25))
    aggs = [TUMBLING, HOPPING]
    store = store_for("delta", tmp_path / "wh")
    with engine_for() as con:
        spec = _spec(aggs, prefetch=seed != 1)  # seed 1: fetched after each batch
        report = StreamRunner(spec, ListConsumer(messages, sizes), store, con).run(until_idle=True)
    expected, late = oracle(messages, sizes, aggs)
    assert report.counts.reconciles
    dlq = store.read("events__dlq").column("reason").to_pylist()
    assert late > 0 and sum(r.startswith("late") for r in dlq) == late  # counted, in the DLQ
    for agg in aggs:
        got = table_rows(tmp_path / "wh", agg)
        assert got == expected[agg["dataset"]], agg["dataset"]
        assert got  # windows did close


def test_windows_after_a_crash_between_sink_and_aggregate_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink commit of a batch happened, its aggregate commit did not: the restarted
    stream computes those windows from the sink, once; later windows as usual."""
    messages = workload(9)
    first = [20, 20, 20, 20, 20]
    rest = [15] * ((len(messages) - sum(first)) // 15 + 1)
    aggs = [TUMBLING, HOPPING]
    store = store_for("delta", tmp_path / "wh")
    real = store.publish
    calls = {"n": 0}

    def failing(name: str, *a: Any, **k: Any) -> Any:
        if name == "per_user_hop":
            calls["n"] += 1
            if calls["n"] == 3:  # the third aggregate commit: the sink already has the batch
                raise RuntimeError("crash before the aggregate commit")
        return real(name, *a, **k)

    with engine_for() as con:
        monkeypatch.setattr(store, "publish", failing)
        with pytest.raises(RuntimeError, match="crash before the aggregate commit"):
            StreamRunner(_spec(aggs), ListConsumer(messages, first), store, con).run(
                until_idle=True
            )
        monkeypatch.setattr(store, "publish", real)
        done = store.snapshot("events")
        assert done is not None and done.txn_version is not None
        committed = [s for i, s in enumerate(first) if sum(first[: i + 1]) <= done.txn_version]
        assert sum(committed) == done.txn_version  # whole batches only
        StreamRunner(_spec(aggs), ListConsumer(messages, rest), store, con).run(until_idle=True)
    sizes = committed + rest
    expected, _ = oracle(messages, sizes, aggs)
    for agg in aggs:
        assert table_rows(tmp_path / "wh", agg) == expected[agg["dataset"]], agg["dataset"]


@pytest.mark.parametrize(
    ("agg", "extra", "message"),
    [
        (TUMBLING, {"event_time": None}, "aggregates need event_time"),
        ({**HOPPING, "slide": "3m"}, {}, "must be a positive multiple of slide"),
        ({**TUMBLING, "group_by": ["nope"]}, {}, "unknown column 'nope'"),
        ({**TUMBLING, "measures": {"x": "sum(nope)"}}, {}, "unknown column 'nope'"),
        ({**TUMBLING, "dataset": "events"}, {}, "write table 'events' twice"),
        # sum/avg of what is not a number would fail at the first window close, after
        # the sink commit, and again after every restart
        ({**TUMBLING, "measures": {"x": "sum(event_id)"}}, {}, "'event_id' is VARCHAR, not a"),
        ({**TUMBLING, "measures": {"x": "avg(ts)"}}, {}, "'ts' is TIMESTAMP, not a number"),
        (TUMBLING, {"mask": {"amount": "redact"}}, "'amount' is masked text, not a number"),
    ],
)
def test_aggregate_definitions_are_checked(
    tmp_path: Path, agg: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    d: dict[str, Any] = {
        "name": "events",
        "source": {"type": "redis", "stream": "x"},
        "columns": COLUMNS,
        "event_time": {"column": "ts"},
        "aggregates": [agg],
        "sink": {"dataset": "events"},
    }
    d.update(extra)
    d = {k: v for k, v in d.items() if v is not None}
    root = write_project(tmp_path, [d])
    with pytest.raises(ConfigError, match=message):
        load_project(root)


def test_a_bad_measure_is_refused() -> None:
    with pytest.raises(ValueError, match="expected count or one of"):
        _spec([{**TUMBLING, "measures": {"x": "median(amount)"}}])
