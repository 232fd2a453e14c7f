#!/usr/bin/env python3
"""Quality engine micro-benchmarks.

``many``:    100 checks (all row-level kinds + a few aggregates, cycling over the columns) on
             the first 1M rows of the peer bench's orders (a DuckDB table, as staged by a run)
             — count mode and mark mode.
``publish``: the 10M-row peer suite as the run loop does it: stage → audit(mark=True) →
             gate (quarantine) → failing rows (with check names) to ``__quarantine`` +
             passing rows to a Delta table (``DeltaStore.publish_query``) — compared with
             check-only (count mode) on the same input and with the previous path.

Usage: python benchmarks/quality_microbench.py many|publish [--repeats 3]
Data: ../shared/bench/data/quality/ (python ../shared/bench/quality/gen.py).
"""

from __future__ import annotations

import argparse
import json
import os
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
from sqlglot import exp

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
# shared/ is read-only on some machines: LOCKGATE_BENCH_DATA points at a generated copy
DATA = Path(os.environ.get("LOCKGATE_BENCH_DATA", BENCH / "data" / "quality"))
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
    """Interleaved, on fresh connections: ``check`` = count mode on the Parquet file (what
    ``lockgate check`` does); ``publish`` = what the run loop does with the same file: stage it
    into a DuckDB table, audit(mark=True) (sparse marks), gate, failing rows → quarantine
    Delta table, passing rows → ``DeltaStore.publish_query`` (DuckDB-written Parquet, one
    Delta commit); ``before`` = the previous path (full marked copy of a view +
    ``write_deltalake`` of the passing rows streamed through Arrow)."""
    from deltalake import write_deltalake
    from quality_lockgate import translate  # type: ignore[import-not-found]

    from lockgate.project.models import WriteSpec
    from lockgate.storage import DeltaStore

    sys.path.insert(0, str(BENCH / "common"))
    from suite import load_suite  # type: ignore[import-not-found]

    suite = load_suite()
    raw, _refs = translate(suite)
    checks = [ADAPTER.validate_python(c) for c in raw]
    out: dict[str, Any] = {"rows": 10_000_000, "checks": len(checks)}
    times: dict[str, list[float]] = {"check": [], "publish": [], "before": []}
    orders, customers = suite["datasets"]["orders"], suite["datasets"]["customers"]
    for seq in range(1, repeats + 1):
        for mode in times:
            con = duckdb.connect()
            con.execute("SET preserve_insertion_order = false")
            tmp = Path(tempfile.mkdtemp(prefix="lg-pub-"))
            t0 = time.perf_counter()
            con.register("customers", con.read_parquet(customers))
            refs = {"customers": "customers"}
            if mode == "check":
                con.register("orders", con.read_parquet(orders))
                audit(con, "orders", checks, references=refs, mark=False, now=NOW, sample_size=0)
            elif mode == "before":
                con.register("orders", con.read_parquet(orders))
                res = audit(con, "orders", checks, references=refs, mark=True, now=NOW)
                d = gate(res, "quarantine")
                good = con.sql(res.passing_rows_query(None, d).sql("duckdb"))
                write_deltalake(str(tmp / "orders"), good.to_arrow_reader(122_880))
                bad = con.sql(res.failing_rows_query(None, d).sql("duckdb"))
                write_deltalake(str(tmp / "orders__quarantine"), bad.to_arrow_reader(122_880))
            else:
                con.execute("CREATE TABLE orders AS SELECT * FROM read_parquet(?)", [orders])
                t_stage = time.perf_counter() - t0
                res = audit(con, "orders", checks, references=refs, mark=True, now=NOW)
                t_audit = time.perf_counter() - t0 - t_stage
                d = gate(res, "quarantine")
                store = DeltaStore(tmp)
                ids = {"run_id": f"r{seq}", "run_seq": seq, "batch_id": f"b{seq}"}
                con.execute(f"CREATE TABLE q AS {res.failing_rows_query(d).sql('duckdb')}")
                bad = con.sql("SELECT * FROM q")
                store.publish_quarantine("orders", bad.to_arrow_reader(122_880), **ids)
                t_q = time.perf_counter() - t0 - t_stage - t_audit
                good = exp.select(*[exp.column(c, quoted=True) for c in res.columns]).from_(
                    exp.to_identifier(res.marked_table or "orders", quoted=True)
                )
                pub = store.publish_query(
                    "orders",
                    con,
                    good.where(res.passing_predicate(d)),
                    write=WriteSpec(),
                    watermark=None,
                    **ids,
                )
                out["published_rows"] = pub.rows
                out.setdefault("publish_breakdown", []).append(
                    {
                        "stage": round(t_stage, 2),
                        "audit": round(t_audit, 2),
                        "quarantine": round(t_q, 2),
                        "publish": round(time.perf_counter() - t0 - t_stage - t_audit - t_q, 2),
                    }
                )
                out["gate_action"] = d.action
                out["quarantined_checks"] = d.quarantined
            times[mode].append(time.perf_counter() - t0)
            con.close()
            shutil.rmtree(tmp, ignore_errors=True)
    for mode, ts in times.items():
        out[f"{mode}_median_s"] = round(statistics.median(ts), 3)
        out[f"{mode}_runs"] = [round(t, 3) for t in ts]
    out["ratio"] = round(out["publish_median_s"] / out["check_median_s"], 2)
    out["ratio_before"] = round(out["before_median_s"] / out["check_median_s"], 2)
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
