#!/usr/bin/env python3
"""Quality engine micro-benchmarks.

``many``:    100 checks (all row-level kinds + a few aggregates, cycling over the columns) on
             the first 1M rows of the peer bench's orders (a DuckDB table, as staged by a run)
             — count mode and mark mode.
``publish``: the 10M-row peer suite as the run loop does it: audit(mark=True) → gate
             (quarantine) → passing rows to a Delta table + failing rows (with check names)
             to ``__quarantine`` — compared with check-only (count mode) on the same input.

Usage: python benchmarks/quality_microbench.py many|publish [--repeats 3]
Data: ../shared/bench/data/quality/ (python ../shared/bench/quality/gen.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import TypeAdapter

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
DATA = BENCH / "data" / "quality"
sys.path.insert(0, str(ROOT / "benchmarks" / "peer"))

from lockgate.quality import audit, gate  # noqa: E402
from lockgate.quality.checks import CheckSpec  # noqa: E402

ADAPTER: TypeAdapter[Any] = TypeAdapter(CheckSpec)
NOW = datetime(2025, 1, 1)


def hundred_checks() -> list[Any]:
    kinds = [
        lambda i: {"type": "not_null", "column": ["order_id", "customer_id", "amount"][i % 3]},
        lambda i: {"type": "between", "column": "amount", "min": -i, "max": 10000 - i},
        lambda i: {
            "type": "accepted_values",
            "column": "status",
            "values": ["placed", "shipped", "delivered", "returned", "cancelled"][: 2 + i % 4],
        },
        lambda i: {"type": "regex_match", "column": "email", "pattern": r"^[^@\s]+@.+\.[a-z]{2,}$"},
        lambda i: {"type": "length_between", "column": "email", "min": 5, "max": 20 + i},
        lambda i: {
            "type": "column_pair",
            "column_a": "shipped_at",
            "op": ">=",
            "column_b": "created_at",
        },
        lambda i: {"type": "expression", "expr": f"amount * 2 < {20000 + i} OR status = 'placed'"},
        lambda i: {"type": "lateness", "column": "created_at", "max_delay": f"{30 + i}d"},
        lambda i: {"type": "aggregate_between", "column": "amount", "agg": "mean", "max": 1e6},
        lambda i: {"type": "not_accepted_values", "column": "country", "values": ["XX", f"Z{i}"]},
    ]
    out = []
    for i in range(100):
        c = kinds[i % len(kinds)](i)
        c["name"] = f"c{i:03d}"
        if i % 7 == 0:
            c["where"] = "country <> 'US'"
        out.append(ADAPTER.validate_python(c))
    return out


def bench_many(repeats: int) -> dict[str, Any]:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM read_parquet(?) LIMIT 1000000",
        [str(DATA / "orders.parquet")],
    )
    checks = hundred_checks()
    out: dict[str, Any] = {"rows": 1_000_000, "checks": len(checks)}
    for mode in ("count", "mark"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            audit(con, "orders", checks, mark=mode == "mark", now=NOW, sample_size=0)
            times.append(time.perf_counter() - t0)
        out[f"{mode}_median_s"] = round(statistics.median(times), 3)
        out[f"{mode}_runs"] = [round(t, 3) for t in times]
    return out


def bench_publish(repeats: int) -> dict[str, Any]:
    from deltalake import write_deltalake
    from quality_lockgate import translate  # type: ignore[import-not-found]

    sys.path.insert(0, str(BENCH / "common"))
    from suite import load_suite  # type: ignore[import-not-found]

    suite = load_suite()
    raw, _refs = translate(suite)
    checks = [ADAPTER.validate_python(c) for c in raw]
    out: dict[str, Any] = {"rows": 10_000_000, "checks": len(checks)}
    check_t, pub_t = [], []
    for _ in range(repeats):
        for mode in ("check", "publish"):
            con = duckdb.connect()
            con.execute("SET preserve_insertion_order = false")
            tmp = Path(tempfile.mkdtemp(prefix="lg-pub-"))
            t0 = time.perf_counter()
            con.register("orders", con.read_parquet(suite["datasets"]["orders"]))
            con.register("customers", con.read_parquet(suite["datasets"]["customers"]))
            refs = {"customers": "customers"}
            if mode == "check":
                audit(con, "orders", checks, references=refs, mark=False, now=NOW, sample_size=0)
                check_t.append(time.perf_counter() - t0)
            else:
                res = audit(con, "orders", checks, references=refs, mark=True, now=NOW)
                d = gate(res, "quarantine")
                good = con.execute(res.passing_rows_query(None, d).sql("duckdb"))
                write_deltalake(str(tmp / "orders"), good.to_arrow_reader(1_000_000))
                bad = con.execute(res.failing_rows_query(None, d).sql("duckdb"))
                write_deltalake(str(tmp / "orders__quarantine"), bad.to_arrow_reader(100_000))
                pub_t.append(time.perf_counter() - t0)
                out["gate_action"] = d.action
                out["quarantined_checks"] = d.quarantined
            con.close()
            shutil.rmtree(tmp, ignore_errors=True)
    out["check_only_median_s"] = round(statistics.median(check_t), 3)
    out["publish_median_s"] = round(statistics.median(pub_t), 3)
    out["ratio"] = round(out["publish_median_s"] / out["check_only_median_s"], 2)
    out["check_runs"] = [round(t, 3) for t in check_t]
    out["publish_runs"] = [round(t, 3) for t in pub_t]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["many", "publish"])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    res = bench_many(a.repeats) if a.what == "many" else bench_publish(a.repeats)
    print(json.dumps({"bench": a.what, **res}))


if __name__ == "__main__":
    main()
