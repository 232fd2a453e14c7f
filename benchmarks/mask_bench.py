"""Masking throughput per method (values per CPU-second), through the engine as the run loop
and streams use it: ``masked_query`` over an Arrow table of N values.

    .venv/bin/python benchmarks/mask_bench.py --values 1000000 [--distinct 1000000]
"""

from __future__ import annotations

import argparse
import os
import time

import pyarrow as pa
from sqlglot import exp

from lockgate.engine.session import DuckDBEngine
from lockgate.masking import MaskRule, masked_query, register_masking

RULES = {
    "hash": MaskRule(method="hash"),
    "redact (whole)": MaskRule(method="redact"),
    "redact (pattern)": MaskRule(method="redact", pattern=r"\d{3}-\d{4}"),
    "partial": MaskRule(method="partial"),
    "tokenize (FF1)": MaskRule(method="tokenize"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=None, help="distinct values (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("LOCKGATE_MASK_KEY", "bench-key-0123456789abcdef")
    d = a.distinct or a.values
    values = pa.array([f"4111-{i % d:04d}-555-{i % 10_000:04d}" for i in range(a.values)])
    con = DuckDBEngine(threads=a.threads)
    con.register_arrow("t", pa.table({"v": values}))
    print(f"{a.values:,} values ({d:,} distinct), DuckDB threads={a.threads}")
    print("| method | CPU s | wall s | values per CPU-second |")
    print("|---|---|---|---|")
    for name, rule in RULES.items():
        register_masking(con, "LOCKGATE_MASK_KEY", {"v": rule})
        q = masked_query(exp.select("v").from_("t"), ["v"], {"v": rule})
        agg = exp.select(exp.Count(this=exp.Star()), exp.func("max", exp.column("v"))).from_(
            q.subquery("m")
        )
        c0, w0 = time.process_time(), time.perf_counter()
        con.execute(agg).fetchone()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {a.values / cpu:,.0f} |")
    con.close()


if __name__ == "__main__":
    main()
