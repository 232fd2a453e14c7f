"""PostgreSQL CDC initial snapshot (#9): 1 vs N partitions (connections, one primary-key
range each, all in the slot's exported snapshot), against a private wal_level=logical cluster
started here (initdb + pg_ctl on a free port; removed after).

    .venv/bin/python benchmarks/cdc_snapshot_bench.py [--rows 2000000] [--partitions 1 2]
        [--repeat 2]

Two measurements per partition count, alternated over ``--repeat`` rounds:
- ``copy``: the slot created with an exported snapshot and the table COPYed to CSV files
  (:func:`lockgate.sources._cdc_snapshot.copy_snapshot`) — the part the partitions split;
- ``run``: the whole first ``lockgate run`` of the dataset (slot, copy, DuckDB load, typed
  conversion, audit, Delta commit).
Wall seconds, this process's CPU seconds (``time.process_time``: the client side, all
threads) and the cluster's CPU seconds (postmaster + backends, from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cdc_bench import cluster_cpu, start_cluster, stop_cluster

import lockgate
from lockgate.runloop.follow import drain
from lockgate.sources._cdc_slot import drop_slot, exported_snapshot
from lockgate.sources._cdc_snapshot import copy_snapshot
from lockgate.sources.postgres_cdc import describe, session_setup

DDL = (
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, status text, "
    "amount numeric(12,2), updated_at timestamptz)"
)


def load(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS orders")
        pg.execute(DDL)
        pg.execute(
            "INSERT INTO orders SELECT g, g %% 1000, 'placed', g * 0.01, "
            "'2026-01-01'::timestamptz + g * interval '1 second' "
            "FROM generate_series(1, %s::bigint) g",
            (rows,),
        )
        pg.execute("VACUUM ANALYZE orders")
        pg.execute("SELECT count(*) FROM orders").fetchone()  # warm the buffer cache


def project(root: Path, partitions: int) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    (root / "datasets").mkdir(parents=True)
    (root / "lockgate.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "cdc_snapshot_bench",
                "connections": {"src": {"type": "postgres", "url": "${LG_CDC_URL}"}},
            }
        )
    )
    source = {
        "type": "postgres_cdc",
        "connection": "src",
        "table": "public.orders",
        "slot": f"snapbench_{partitions}",
        "snapshot_partitions": partitions,
    }
    (root / "datasets" / "main.yaml").write_text(
        yaml.safe_dump(
            {
                "datasets": [
                    {"name": "orders", "source": source, "write": {"mode": "merge", "keys": ["id"]}}
                ]
            }
        )
    )
    return root


def measure(fn, data: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    cpu0, srv0, t0 = time.process_time(), cluster_cpu(data), time.perf_counter()
    fn()
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "client_cpu_s": round(time.process_time() - cpu0, 2),
        "server_cpu_s": round(cluster_cpu(data) - srv0, 2),
    }


def bench_copy(url: str, partitions: int, work: Path, data: Path) -> dict[str, float]:
    slot = f"snapcopy_{partitions}"
    with psycopg.connect(url, autocommit=True) as pg:
        session_setup(pg)
        described = describe(pg, "public.orders", ("id",), "orders")
        drop_slot(pg, slot)
        out = Path(tempfile.mkdtemp(dir=work))

        def run() -> None:
            with exported_snapshot(url, slot) as (_, snapshot):
                copy_snapshot(
                    url,
                    snapshot,
                    described,
                    partitions,
                    pg,
                    out,
                    setup=session_setup,
                    mid_snapshot=lambda: None,
                )

        res = measure(run, data)
        res["csv_mb"] = round(sum(f.stat().st_size for f in out.iterdir()) / 1e6, 1)
        shutil.rmtree(out)
        drop_slot(pg, slot)
    return res


def bench_run(url: str, partitions: int, work: Path, data: Path, rows: int) -> dict[str, float]:
    root = project(work / f"p{partitions}", partitions)

    def run() -> None:
        results = drain(lambda refresh: lockgate.run(root, max_workers=1, full_refresh=refresh))
        step = results[0].steps[0]
        assert str(step.status) == "success" and step.rows_out == rows, step

    res = measure(run, data)
    with psycopg.connect(url, autocommit=True) as pg:
        drop_slot(pg, f"snapbench_{partitions}")
    shutil.rmtree(root)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    url, tmp, bindir = start_cluster()
    os.environ["LG_CDC_URL"] = url
    work = Path(tempfile.mkdtemp(prefix="lg_snap_bench_"))
    try:
        load(url, args.rows)
        print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
        for rnd in range(args.repeat):
            for n in args.partitions:
                copy = bench_copy(url, n, work, tmp / "d")
                run = bench_run(url, n, work, tmp / "d", args.rows)
                out = {"round": rnd, "partitions": n, "copy": copy, "run": run}
                print(json.dumps(out), flush=True)
        print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    finally:
        stop_cluster(tmp, bindir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
