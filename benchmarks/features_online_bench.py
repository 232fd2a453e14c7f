"""Feature store (#13) online path: materialisation (full, then incremental after a 1 %
change) and read latency of ``get_online_features`` for 1 and 100 entities x N features,
SQLite vs Redis (127.0.0.1:6379), with the floors measured in the same run (Redis PING round
trip; the SQLite primary-key lookup alone).

    .venv/bin/python benchmarks/features_online_bench.py --entities 100000 --features 50

Prints one JSON object (latencies in µs: p50/p95/p99 over --reads requests, random keys).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from lockgate.features.materialize import materialize
from lockgate.features.online import OnlineStore, SQLiteOnlineStore, get_online_features
from lockgate.features.online_redis import RedisOnlineStore
from lockgate.project import load_project


def _project(root: Path, n_features: int) -> Path:
    root.mkdir(parents=True)
    (root / "lockgate.yaml").write_text("name: bench\n")
    (root / "datasets").mkdir()
    cols = ", ".join(f"f{i}: DOUBLE" for i in range(n_features))
    (root / "datasets" / "fv.yaml").write_text(
        "datasets:\n  - name: feats\n    source: {type: file, path: x.csv, columns: "
        f"{{customer_id: BIGINT, day: TIMESTAMP, created: TIMESTAMP, {cols}}}}}\n"
        "feature_views:\n  - name: fv\n    dataset: feats\n    entities: [customer_id]\n"
        "    event_timestamp: day\n    created_timestamp: created\n    ttl: 3650d\n"
        f"    features: [{', '.join(f'f{i}' for i in range(n_features))}]\n"
    )
    return root


def _rows(ids: np.ndarray, n_features: int, day: datetime, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = pa.array([day] * len(ids), pa.timestamp("us"))
    data: dict[str, pa.Array] = {"customer_id": pa.array(ids, pa.int64()), "day": ts, "created": ts}
    for i in range(n_features):
        data[f"f{i}"] = pa.array(rng.random(len(ids)))
    return pa.table(data)


def _pct(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e6
    return {
        p: round(float(np.percentile(a, q)), 1) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))
    }


def _time(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(min(200, n)):  # warm-up
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return _pct(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--reads", type=int, default=5_000)
    ap.add_argument(
        "--http-only",
        action="store_true",
        help="only the HTTP serving benchmark (lockgate features serve vs a null ASGI server)",
    )
    args = ap.parse_args()
    if args.http_only:
        http_only(args)
        return
    import redis

    tmp = Path(tempfile.mkdtemp(prefix="lg-online-bench-"))
    root = _project(tmp / "p", args.features)
    table_path = str(root / "warehouse" / "feats")
    ids = np.arange(args.entities, dtype=np.int64)
    write_deltalake(table_path, _rows(ids, args.features, datetime(2026, 1, 1), 1))
    project = load_project(root)
    prefix = f"lg-bench-{uuid.uuid4().hex[:8]}:"
    stores: dict[str, OnlineStore] = {
        "sqlite": SQLiteOnlineStore(tmp / "online.db"),
        "redis": RedisOnlineStore("redis://127.0.0.1:6379/0", prefix),
    }
    report: dict[str, object] = {
        "entities": args.entities,
        "features": args.features,
        "reads": args.reads,
    }
    changed = ids[::100]  # 1 % of the entities get a newer row
    rnd = random.Random(7)
    try:
        for name, store in stores.items():
            t = time.perf_counter()
            r = materialize(project, store=store)["fv"]
            full_s = time.perf_counter() - t
            report[f"{name}_materialize_full_s"] = round(full_s, 2)
            assert r.written == args.entities, r
        write_deltalake(
            table_path, _rows(changed, args.features, datetime(2026, 1, 2), 2), mode="append"
        )
        for name, store in stores.items():
            t = time.perf_counter()
            r = materialize(project, store=store)["fv"]
            report[f"{name}_materialize_incremental_1pct_s"] = round(time.perf_counter() - t, 2)
            assert r.mode == "incremental" and r.written == len(changed), r
        feats = [f"fv:f{i}" for i in range(args.features)]
        for name, store in stores.items():
            for n in (1, 100):

                def call(n: int = n, store: OnlineStore = store) -> object:
                    keys = [rnd.randrange(args.entities) for _ in range(n)]
                    return get_online_features(project, feats, {"customer_id": keys}, store=store)

                report[f"{name}_get_online_features_{n}_entity_us"] = _time(call, args.reads)

                def raw(n: int = n, store: OnlineStore = store) -> object:
                    return store.read("fv", [(rnd.randrange(args.entities),) for _ in range(n)])

                report[f"{name}_store_read_{n}_entity_us"] = _time(raw, args.reads)
        client = redis.Redis()
        report["floor_redis_ping_us"] = _time(client.ping, args.reads)
        import sqlite3

        con = sqlite3.connect(tmp / "online.db")

        def pk() -> object:
            k = json.dumps([rnd.randrange(args.entities)])
            return con.execute('SELECT v FROM "fv_fv" WHERE key = ?', (k,)).fetchone()

        report["floor_sqlite_pk_lookup_us"] = _time(pk, args.reads)
        # Python-side cost of one 50-float vector: JSON decode (both stores pay it)
        sample = json.dumps({f"f{i}": 0.123456789 for i in range(args.features)})
        report["floor_json_decode_vector_us"] = _time(lambda: json.loads(sample), args.reads)
    finally:
        r = redis.Redis()
        for key in r.scan_iter(match=prefix + "*", count=10_000):
            r.delete(key)
    print(json.dumps(report, indent=1))


def http_only(args: argparse.Namespace) -> None:
    """Serving over HTTP, with the null server's floor in the same run (see
    ``features_serve_http``): 1 entity x ``--features`` per request, random keys."""
    import os
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from features_serve_http import run

    tmp = Path(tempfile.mkdtemp(prefix="lg-serve-bench-"))
    root = _project(tmp / "p", args.features)
    ids = np.arange(args.entities, dtype=np.int64)
    write_deltalake(
        str(root / "warehouse" / "feats"), _rows(ids, args.features, datetime(2026, 1, 1), 1)
    )
    r = materialize(load_project(root))["fv"]
    assert r.written == args.entities, r
    report: dict[str, object] = {
        "entities": args.entities,
        "features": args.features,
        "reads": args.reads,
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
    }
    report.update(run(root, tmp, args.entities, args.features, args.reads))
    report["uptime_after"] = subprocess.run(
        ["uptime"], capture_output=True, text=True
    ).stdout.strip()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
